//! Left-padded batches of token ids.

use crate::error::{ModelError, Result};

/// A batch of token sequences laid out as a `[batch, seq_len]` grid.
///
/// Row `b` starts with `pad_left[b]` padding slots; every later slot holds a
/// real token. Position ids are counted from the first real token (0, 1, ...),
/// as Hugging Face derives them from the attention mask, and padding slots are
/// masked out of attention. Right padding (after the last real token) needs no
/// bookkeeping: causal attention never lets a real token see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// Row-major ids, `batch * seq_len` of them (padding slots included).
    pub ids: Vec<u32>,
    /// Number of rows.
    pub batch: usize,
    /// Number of slots per row.
    pub seq_len: usize,
    /// Number of leading padding slots of each row.
    pub pad_left: Vec<usize>,
}

impl TokenBatch {
    /// Checks the dimensions and builds a batch.
    pub fn new(ids: Vec<u32>, batch: usize, seq_len: usize, pad_left: Vec<usize>) -> Result<Self> {
        if batch == 0 || seq_len == 0 {
            return Err(ModelError::input(
                "a token batch needs at least one row and one slot",
            ));
        }
        if ids.len() != batch * seq_len {
            return Err(ModelError::input(format!(
                "{} ids do not fill a {batch} x {seq_len} batch",
                ids.len()
            )));
        }
        if pad_left.len() != batch {
            return Err(ModelError::input(format!(
                "{} padding counts for {batch} rows",
                pad_left.len()
            )));
        }
        Ok(TokenBatch {
            ids,
            batch,
            seq_len,
            pad_left,
        })
    }

    /// Left-pads `seqs` with `pad_id` to the longest one. Every sequence must
    /// hold at least one token.
    pub fn left_padded<S: AsRef<[u32]>>(seqs: &[S], pad_id: u32) -> Result<Self> {
        if seqs.is_empty() {
            return Err(ModelError::input("empty batch"));
        }
        if let Some(i) = seqs.iter().position(|s| s.as_ref().is_empty()) {
            return Err(ModelError::input(format!("sequence {i} is empty")));
        }
        let seq_len = seqs.iter().map(|s| s.as_ref().len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(seqs.len() * seq_len);
        let mut pad_left = Vec::with_capacity(seqs.len());
        for s in seqs {
            let s = s.as_ref();
            let pad = seq_len - s.len();
            ids.extend(std::iter::repeat_n(pad_id, pad));
            ids.extend_from_slice(s);
            pad_left.push(pad);
        }
        Self::new(ids, seqs.len(), seq_len, pad_left)
    }

    /// A single unpadded row.
    pub fn single(ids: &[u32]) -> Result<Self> {
        Self::left_padded(&[ids], 0)
    }

    /// Whether any row has padding.
    pub fn has_padding(&self) -> bool {
        self.pad_left.iter().any(|&p| p > 0)
    }

    /// Row `b`'s slots (padding included).
    pub fn row(&self, b: usize) -> &[u32] {
        &self.ids[b * self.seq_len..(b + 1) * self.seq_len]
    }
}
