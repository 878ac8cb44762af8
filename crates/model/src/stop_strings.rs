//! Stop strings found in a completion as it grows, one token at a time,
//! without decoding the whole completion at every token (which made a
//! long completion's stop check quadratic in its length).
//!
//! The text is built as vLLM's and Hugging Face's incremental
//! detokenizers build it: each new token's text is what decoding a short
//! window of recent tokens adds to decoding the window without it; a
//! piece that ends inside a character (a byte-level token holding part of
//! one) is searched as the whole decode reads it then (a replacement
//! character at its end) and kept only once the tokens that complete it
//! are in. For decoders whose text of a sequence is made from its tokens'
//! pieces one after another (byte-level BPE, as Qwen2's: the pieces' bytes
//! read as UTF-8, invalid bytes as replacement characters; SentencePiece's
//! `▁` pieces) this is the whole decode, byte for byte. A match is
//! confirmed on the whole decode before it stops a completion, so the
//! offset handed back is always one into `decode(tokens)`, the text a
//! completion's `text` is cut from.
//!
//! A run of tokens whose text ends in replacement characters (bytes that
//! are no UTF-8, say a long run of lone continuation bytes) is decoded
//! again at each token until a token ends on a whole character, as in
//! vLLM: quadratic in the run's length, not the completion's.

use crate::tokenizer::Tokenizer;

/// The incremental text of one completion (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct StopScan {
    /// Decoded text of `tokens[..read]`.
    text: String,
    /// Start of the window decoded with each new token.
    prefix: usize,
    /// Tokens whose text is in `text`.
    read: usize,
    /// Times the whole completion was decoded (a match confirmed, or a
    /// decoder that rewrote text across tokens).
    #[cfg(test)]
    whole_decodes: usize,
}

impl StopScan {
    /// After `tokens` grew (by one or more ids): the earliest of `stops`
    /// that `decode(tokens)` holds, as its byte offset there and its index
    /// in `stops` (the first listed among those starting at one offset), or
    /// `None`. `tokens` must extend the ids of the previous call.
    ///
    /// A decode that fails finds nothing, as before this scan existed.
    pub(crate) fn push(
        &mut self,
        tk: &Tokenizer,
        tokens: &[u32],
        stops: &[String],
    ) -> Option<(usize, usize)> {
        let before = tk.decode(&tokens[self.prefix..self.read], false).ok()?;
        let now = tk.decode(&tokens[self.prefix..], false).ok()?;
        let Some(added) = now.strip_prefix(before.as_str()) else {
            // A decoder that rewrites text across tokens: start again from
            // the whole decode (rare, and never for byte-level BPE).
            return self.restart(tk, tokens, stops);
        };
        if added.is_empty() {
            return None;
        }
        let checked = self.text.len();
        self.text.push_str(added);
        // A match not found before ends in the added text, so it starts at
        // most `longest - 1` bytes before it.
        let longest = stops.iter().map(String::len).max().unwrap_or(0);
        let from = self
            .text
            .floor_char_boundary(checked.saturating_sub(longest.saturating_sub(1)));
        if earliest(&self.text, from, stops).is_some() {
            // Confirmed on the whole decode, whose offsets the caller cuts
            // by (the text as it was, should that decode fail).
            self.text.truncate(checked);
            return self.restart(tk, tokens, stops);
        }
        if added.ends_with('\u{FFFD}') {
            // The last piece ends inside a character: searched as the
            // whole decode now reads, kept only once the tokens that
            // complete it are in.
            self.text.truncate(checked);
        } else {
            (self.prefix, self.read) = (self.read, tokens.len());
        }
        None
    }

    /// Takes the whole decode of `tokens` as the text and searches all of
    /// it.
    fn restart(
        &mut self,
        tk: &Tokenizer,
        tokens: &[u32],
        stops: &[String],
    ) -> Option<(usize, usize)> {
        #[cfg(test)]
        {
            self.whole_decodes += 1;
        }
        self.text = tk.decode(tokens, false).ok()?;
        (self.prefix, self.read) = (tokens.len().saturating_sub(1), tokens.len());
        earliest(&self.text, 0, stops)
    }
}

/// The earliest of `stops` in `text[from..]`: its offset in `text` and its
/// index (the first listed among those at one offset).
fn earliest(text: &str, from: usize, stops: &[String]) -> Option<(usize, usize)> {
    stops
        .iter()
        .enumerate()
        .filter_map(|(i, s)| text[from..].find(s.as_str()).map(|p| (from + p, i)))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpe::train_bpe_tokenizer;
    use crate::rng::Rng;

    /// The check before this scan: the whole decode at every token.
    fn whole(tk: &Tokenizer, tokens: &[u32], stops: &[String]) -> Option<(usize, usize)> {
        earliest(&tk.decode(tokens, false).unwrap(), 0, stops)
    }

    #[test]
    fn the_scan_stops_where_the_whole_decode_first_holds_a_stop_string() {
        let corpus: Vec<String> = (0..120)
            .map(|i| {
                format!(
                    "<tool_call>{{\"city\": \"Zürich {i}\", \"note\": \"日本語 ok\"}}</tool_call> \
                     naïve café {i}"
                )
            })
            .collect();
        let tk = train_bpe_tokenizer(&corpus, 320, &[]).unwrap();
        let vocab = tk.vocab_size() as u64;
        let mut rng = Rng::new(7);
        let (mut stopped, mut ran_out) = (0, 0);
        for case in 0..300 {
            let len = 1 + (rng.next_u64() % 60) as usize;
            let tokens: Vec<u32> = (0..len).map(|_| (rng.next_u64() % vocab) as u32).collect();
            // Stop strings cut from the sequence's own text (some across a
            // character's bytes are skipped: not on a char boundary), plus
            // one that never appears.
            let text = tk.decode(&tokens, false).unwrap();
            // Sometimes with a longer one that never appears, so that the
            // window's overlap is set by the cut ones in the other cases.
            let mut stops = Vec::new();
            if case % 2 == 0 {
                stops.push("\u{1}never".to_string());
            }
            for _ in 0..2 {
                let a = (rng.next_u64() % (text.len() as u64 + 1)) as usize;
                let b = (a + 1 + (rng.next_u64() % 6) as usize).min(text.len());
                if let Some(s) = text.get(a..b).filter(|s| !s.is_empty()) {
                    stops.push(s.to_string());
                }
            }
            let mut scan = StopScan::default();
            let mut found = None;
            for n in 1..=len {
                let got = scan.push(&tk, &tokens[..n], &stops);
                let want = whole(&tk, &tokens[..n], &stops);
                if want.is_some() || got.is_some() {
                    assert_eq!(got, want, "case {case}, {n} tokens, stops {stops:?}");
                    found = got;
                    break;
                }
            }
            // The whole completion is decoded only to confirm a match:
            // byte-level BPE never rewrites text across tokens.
            assert_eq!(
                scan.whole_decodes,
                usize::from(found.is_some()),
                "case {case}"
            );
            if found.is_some() {
                stopped += 1;
            } else {
                assert_eq!(whole(&tk, &tokens, &stops), None, "case {case}");
                ran_out += 1;
            }
        }
        assert!(
            stopped > 150 && ran_out > 10,
            "{stopped} stopped, {ran_out} ran out"
        );
    }

    #[test]
    fn a_character_split_across_tokens_is_matched_once_whole() {
        let tk = train_bpe_tokenizer(&["ab"], 270, &[]).unwrap();
        // Without merges for it, "é" is two byte-level tokens.
        let tokens = tk.encode("xé").unwrap();
        assert_eq!(tokens.len(), 3, "{tokens:?}");
        let stops = vec!["é".to_string()];
        let mut scan = StopScan::default();
        assert_eq!(scan.push(&tk, &tokens[..1], &stops), None);
        assert_eq!(scan.push(&tk, &tokens[..2], &stops), None);
        // The half character is not kept: its token waits for the next.
        assert_eq!((scan.text.as_str(), scan.read), ("x", 1));
        assert_eq!(scan.push(&tk, &tokens, &stops), Some((1, 0)));
        // The half character was waited for, not mended by a whole decode:
        // the one whole decode confirmed the match.
        assert_eq!(scan.whole_decodes, 1);
    }
}
