//! Preallocated key/value cache for incremental decoding.
//!
//! Each layer owns two buffers of shape `[batch, kv_heads, capacity, head_dim]`
//! allocated once; a forward pass writes its new keys/values in place at slot
//! `len()` and attends over the first `len() + t` slots (a strided view, no
//! copy). All rows share the slot index: rows of different prompt lengths are
//! left-padded and the padding slots are masked out by the model.

use candle_core::{DType, Device, Tensor};

use crate::config::Qwen2Config;
use crate::error::{ModelError, Result};

/// Key/value cache of every layer for one batch of sequences.
#[derive(Debug, Clone)]
pub struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    len: usize,
    capacity: usize,
    batch: usize,
}

impl KvCache {
    /// Allocates an empty cache for `batch` rows of up to `capacity` tokens.
    pub fn new(
        config: &Qwen2Config,
        batch: usize,
        capacity: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        if batch == 0 || capacity == 0 {
            return Err(ModelError::input(
                "a KV cache needs batch > 0 and capacity > 0",
            ));
        }
        let shape = (batch, config.num_key_value_heads, capacity, config.head_dim);
        let mut k = Vec::with_capacity(config.num_hidden_layers);
        let mut v = Vec::with_capacity(config.num_hidden_layers);
        for _ in 0..config.num_hidden_layers {
            k.push(Tensor::zeros(shape, dtype, device)?);
            v.push(Tensor::zeros(shape, dtype, device)?);
        }
        Ok(KvCache {
            k,
            v,
            len: 0,
            capacity,
            batch,
        })
    }

    /// Number of slots already filled (the same for every row).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of slots.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of rows (sequences).
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.k.len()
    }

    /// Forgets the content (the buffers are reused).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// A new cache whose row `i` is a copy of row `rows[i]` of this one.
    ///
    /// Repeating an index expands a prefilled prompt into several samples that
    /// share its prefix; leaving rows out compacts away finished sequences.
    pub fn select_rows(&self, rows: &[usize]) -> Result<Self> {
        if rows.is_empty() {
            return Err(ModelError::input("select_rows needs at least one row"));
        }
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.batch) {
            return Err(ModelError::input(format!(
                "row {bad} out of range for a KV cache of {} rows",
                self.batch
            )));
        }
        let device = self
            .k
            .first()
            .map(|t| t.device().clone())
            .unwrap_or(Device::Cpu);
        let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let idx = Tensor::from_vec(idx, rows.len(), &device)?;
        let pick = |ts: &[Tensor]| -> Result<Vec<Tensor>> {
            ts.iter().map(|t| Ok(t.index_select(&idx, 0)?)).collect()
        };
        Ok(KvCache {
            k: pick(&self.k)?,
            v: pick(&self.v)?,
            len: self.len,
            capacity: self.capacity,
            batch: rows.len(),
        })
    }

    /// Checks that `t` more slots fit for a batch of `batch` rows.
    pub(crate) fn check_room(&self, batch: usize, t: usize) -> Result<()> {
        if batch != self.batch {
            return Err(ModelError::input(format!(
                "batch of {batch} rows does not match the KV cache's {} rows",
                self.batch
            )));
        }
        if self.len + t > self.capacity {
            return Err(ModelError::input(format!(
                "KV cache full: {} + {t} tokens exceed its capacity of {}",
                self.len, self.capacity
            )));
        }
        Ok(())
    }

    /// Writes layer `layer`'s new keys/values (`[batch, kv_heads, t, head_dim]`,
    /// contiguous) at slot `len()` and returns views of all filled slots.
    pub(crate) fn append(&self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let (kb, vb) = (&self.k[layer], &self.v[layer]);
        kb.slice_set(k, 2, self.len)?;
        vb.slice_set(v, 2, self.len)?;
        let n = self.len + t;
        Ok((kb.narrow(2, 0, n)?, vb.narrow(2, 0, n)?))
    }

    /// Marks `t` more slots as filled (after every layer appended).
    pub(crate) fn advance(&mut self, t: usize) {
        self.len += t;
    }
}
