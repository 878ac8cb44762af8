//! Next-token selection: greedy, temperature, top-k and top-p (nucleus),
//! after an optional repetition penalty.
//!
//! Order of the filters follows transformers' logits processors: the
//! repetition penalty ([`apply_repetition_penalty`], greedy decoding
//! included) comes first; then the logits are divided by the temperature, then restricted to the `top_k` largest
//! (ties at the k-th value kept), then to the smallest prefix of the remaining
//! tokens, by decreasing probability, whose mass reaches `top_p` (the token
//! that crosses `top_p` is kept). One uniform draw per sampled token.

use std::cmp::Ordering;
use std::path::Path;

use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::rng::Rng;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Always take the most likely token (first index on ties).
    pub greedy: bool,
    /// Softmax temperature (> 0; 0 means greedy).
    pub temperature: f64,
    /// Nucleus mass in (0, 1]; 1 disables the filter.
    pub top_p: f64,
    /// Keep only the k most likely tokens; 0 disables the filter.
    pub top_k: usize,
    /// transformers' `repetition_penalty` (> 0; 1 disables it): before any
    /// other step, greedy decoding included, the logit of every token id
    /// already in the sequence (prompt and completion so far) is divided
    /// by it when positive and multiplied by it otherwise
    /// ([`apply_repetition_penalty`]). Applied by [`crate::generate()`],
    /// which knows the sequence; [`sample_token`] alone does not.
    pub repetition_penalty: f64,
}

impl Default for SamplingParams {
    /// Plain sampling from the model distribution: temperature 1, no top-k/top-p.
    fn default() -> Self {
        SamplingParams {
            greedy: false,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        SamplingParams {
            greedy: true,
            ..Self::default()
        }
    }

    /// Whether these parameters select the argmax (greedy flag or temperature 0).
    pub fn is_greedy(&self) -> bool {
        self.greedy || self.temperature == 0.0
    }

    /// What Hugging Face transformers' `generate()` samples with by
    /// default for a model: its `generation_config.json`'s `do_sample`,
    /// `temperature`, `top_p`, `top_k` and `repetition_penalty` (`gen`,
    /// read from `path`), each absent or null key at transformers' own
    /// default (`do_sample` false, so greedy; temperature 1, top_p 1,
    /// top_k 50, no penalty). Qwen2.5-Instruct's file samples at
    /// temperature 0.7, top_p 0.8, top_k 20 with a repetition penalty of
    /// 1.05. A value of the wrong type or range is an error naming the
    /// file and the key.
    /// What the file sets that this sampler does not apply is
    /// [`unapplied_generation_settings`].
    ///
    /// ```
    /// use serde_json::json;
    /// use toolgym_model::SamplingParams;
    /// let path = std::path::Path::new("generation_config.json");
    /// let qwen = json!({"do_sample": true, "temperature": 0.7, "top_p": 0.8, "top_k": 20,
    ///                   "repetition_penalty": 1.05});
    /// let p = SamplingParams::from_generation_config(Some(&qwen), path).unwrap();
    /// assert_eq!((p.greedy, p.temperature, p.top_p, p.top_k), (false, 0.7, 0.8, 20));
    /// assert_eq!(p.repetition_penalty, 1.05);
    /// assert!(SamplingParams::from_generation_config(None, path).unwrap().greedy);
    /// let e = SamplingParams::from_generation_config(Some(&json!({"top_k": -1})), path).unwrap_err();
    /// assert!(e.to_string().contains("top_k -1"), "{e}");
    /// ```
    pub fn from_generation_config(gen: Option<&Value>, path: &Path) -> Result<SamplingParams> {
        let get = |key: &str| gen.and_then(|g| g.get(key)).filter(|v| !v.is_null());
        let bad = |reason: String| ModelError::InvalidConfig {
            location: Some(path.to_path_buf()),
            reason,
        };
        let wrong = |key: &str, v: &Value, want: &str| bad(format!("{key} {v} must be {want}"));
        let do_sample = match get("do_sample") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => return Err(wrong("do_sample", v, "true or false")),
        };
        let number = |key: &str, default: f64| match get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| wrong(key, v, "a number")),
        };
        let top_k = match get("top_k") {
            None => 50,
            Some(v) => v
                .as_u64()
                .and_then(|k| usize::try_from(k).ok())
                .ok_or_else(|| wrong("top_k", v, "a whole number >= 0"))?,
        };
        let params = SamplingParams {
            greedy: !do_sample,
            temperature: number("temperature", 1.0)?,
            top_p: number("top_p", 1.0)?,
            top_k,
            repetition_penalty: Self::repetition_penalty_of(gen, path)?,
        };
        params.validate().map_err(|e| bad(e.to_string()))?;
        if do_sample && params.temperature == 0.0 {
            // Greedy here; transformers refuses it.
            return Err(bad(
                "temperature 0 with do_sample true (set do_sample false to decode greedily)".into(),
            ));
        }
        Ok(params)
    }

    /// The `repetition_penalty` of a `generation_config.json` (`gen`, read
    /// from `path`): 1 (none) when absent or null; a value that is not a
    /// positive number is an error naming the file. transformers applies
    /// it in greedy decoding too, so a caller that reads none of the
    /// file's sampling values still reads this one.
    pub fn repetition_penalty_of(gen: Option<&Value>, path: &Path) -> Result<f64> {
        match gen.and_then(|g| g.get("repetition_penalty")) {
            None | Some(Value::Null) => Ok(1.0),
            Some(v) => v
                .as_f64()
                .filter(|p| p.is_finite() && *p > 0.0)
                .ok_or_else(|| ModelError::InvalidConfig {
                    location: Some(path.to_path_buf()),
                    reason: format!("repetition_penalty {v} must be a number above 0"),
                }),
        }
    }

    /// Rejects negative / non-finite temperatures, `top_p` outside (0, 1]
    /// and a repetition penalty that is not a positive number.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(ModelError::input(format!(
                "temperature must be finite and >= 0, got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ModelError::input(format!(
                "top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        let penalty = self.repetition_penalty;
        if !(penalty.is_finite() && penalty > 0.0) {
            return Err(ModelError::input(format!(
                "repetition_penalty must be a number above 0, got {penalty}"
            )));
        }
        Ok(())
    }
}

/// transformers' `RepetitionPenaltyLogitsProcessor`: the logit of each id
/// in `seen` (the sequence so far, prompt included; an id that occurs
/// several times is penalised once) is divided by `penalty` when it is
/// positive and multiplied by it otherwise, in `f32` as transformers does
/// with the float32 logits it samples from. Ids past the end of `logits`
/// are ignored. A penalty above 1 makes a token already seen less likely.
///
/// ```
/// use toolgym_model::sampling::apply_repetition_penalty;
/// let mut logits = [2.0, -2.0, 0.0, 1.0];
/// apply_repetition_penalty(&mut logits, &[0, 1, 2, 0, 9], 2.0);
/// assert_eq!(logits, [1.0, -4.0, 0.0, 1.0]);
/// ```
pub fn apply_repetition_penalty(logits: &mut [f32], seen: &[u32], penalty: f64) {
    let mut ids: Vec<u32> = seen.to_vec();
    ids.sort_unstable();
    ids.dedup();
    penalise_distinct(logits, &ids, penalty);
}

/// [`apply_repetition_penalty`] over `ids` known to be distinct.
pub(crate) fn penalise_distinct(logits: &mut [f32], ids: &[u32], penalty: f64) {
    let penalty = penalty as f32;
    for &id in ids {
        if let Some(l) = logits.get_mut(id as usize) {
            *l = if *l < 0.0 { *l * penalty } else { *l / penalty };
        }
    }
}

/// Settings of a `generation_config.json` (`gen`) that change what
/// transformers' `generate()` picks but that this crate's sampler does not
/// apply, each as `key value` (for a warning): in either mode the
/// penalties (`encoder_repetition_penalty`,
/// `no_repeat_ngram_size`, `exponential_decay_length_penalty`,
/// `sequence_bias`), the token bans and forcings (`bad_words_ids`,
/// `suppress_tokens`, `begin_suppress_tokens`, `forced_bos_token_id`,
/// `forced_eos_token_id`), the minimum lengths (`min_length`,
/// `min_new_tokens`) and the searches (`num_beams`, `penalty_alpha`);
/// when `sampling`, the filters `min_p`, `typical_p`, `epsilon_cutoff`
/// and `eta_cutoff`. A key at its neutral value (a penalty of 1, a cutoff
/// or minimum of 0, one beam, an empty list) or null is not listed.
///
/// ```
/// use serde_json::json;
/// use toolgym_model::sampling::unapplied_generation_settings;
/// let gen = json!({"no_repeat_ngram_size": 3, "min_p": 0.1, "typical_p": 1.0,
///                  "repetition_penalty": 1.05});
/// assert_eq!(unapplied_generation_settings(Some(&gen), true), ["no_repeat_ngram_size 3", "min_p 0.1"]);
/// assert_eq!(unapplied_generation_settings(Some(&gen), false), ["no_repeat_ngram_size 3"]);
/// ```
pub fn unapplied_generation_settings(gen: Option<&Value>, sampling: bool) -> Vec<String> {
    // (key, neutral number (a list, object or text has none: only an
    // empty one is neutral), applies only when sampling)
    const KEYS: [(&str, f64, bool); 18] = [
        ("encoder_repetition_penalty", 1.0, false),
        ("no_repeat_ngram_size", 0.0, false),
        ("exponential_decay_length_penalty", f64::NAN, false),
        ("sequence_bias", f64::NAN, false),
        ("bad_words_ids", f64::NAN, false),
        ("suppress_tokens", f64::NAN, false),
        ("begin_suppress_tokens", f64::NAN, false),
        ("forced_bos_token_id", f64::NAN, false),
        ("forced_eos_token_id", f64::NAN, false),
        ("min_length", 0.0, false),
        ("min_new_tokens", 0.0, false),
        ("num_beams", 1.0, false),
        ("penalty_alpha", 0.0, false),
        ("min_p", 0.0, true),
        ("typical_p", 1.0, true),
        ("epsilon_cutoff", 0.0, true),
        ("eta_cutoff", 0.0, true),
        ("top_h", f64::NAN, true),
    ];
    let neutral = |v: &Value, number: f64| match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        v => v.as_f64() == Some(number),
    };
    KEYS.iter()
        .filter(|(_, _, only_sampling)| sampling || !only_sampling)
        .filter_map(|&(key, number, _)| {
            let v = gen?.get(key)?;
            (!neutral(v, number)).then(|| format!("{key} {v}"))
        })
        .collect()
}

/// Index of the largest logit (first on ties; NaNs ignored).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best_v = v;
            best = i;
        }
    }
    best as u32
}

/// `log(sum(exp(logits)))`: f32 exponentials of the max-shifted logits,
/// summed in f64. NaN when any logit is NaN: a row with one logit that is
/// not a number comes from broken weights or an overflow, and its
/// normaliser is not known (transformers' sampling fails on such a row).
///
/// ```
/// use toolgym_model::sampling::log_sum_exp;
/// assert!((log_sum_exp(&[0.0, 0.0]) - 2f64.ln()).abs() < 1e-12);
/// assert!(log_sum_exp(&[0.0, f32::NAN, 1.0]).is_nan());
/// assert_eq!(log_sum_exp(&[f32::NEG_INFINITY; 2]), f64::NEG_INFINITY);
/// ```
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let mut max = f32::NEG_INFINITY;
    for &v in logits {
        if v.is_nan() {
            return f64::NAN;
        }
        max = max.max(v);
    }
    if !max.is_finite() {
        return f64::from(max);
    }
    let s: f64 = logits.iter().map(|&v| f64::from((v - max).exp())).sum();
    f64::from(max) + s.ln()
}

/// Log-probability of `token` under `softmax(logits)` (temperature 1):
/// NaN when any logit is NaN ([`log_sum_exp`]).
pub fn token_logprob(logits: &[f32], token: u32) -> f32 {
    (f64::from(logits[token as usize]) - log_sum_exp(logits)) as f32
}

/// Descending by weight, ascending by id: a total order, so selection is
/// deterministic.
fn by_weight_desc(a: &(u32, f64), b: &(u32, f64)) -> Ordering {
    b.1.partial_cmp(&a.1)
        .unwrap_or(Ordering::Equal)
        .then(a.0.cmp(&b.0))
}

/// Chooses the next token from one row of logits.
pub fn sample_token(logits: &[f32], params: &SamplingParams, rng: &mut Rng) -> u32 {
    sample_token_by(logits, params, || rng.next_f64())
}

/// [`sample_token`] with the uniform draw in `[0, 1)` supplied by `draw`,
/// which is called at most once (never for greedy selection, a one-token
/// vocabulary or a row with no finite logit).
pub fn sample_token_by(logits: &[f32], params: &SamplingParams, draw: impl FnOnce() -> f64) -> u32 {
    if params.is_greedy() || logits.len() <= 1 {
        return argmax(logits);
    }
    let inv_t = (1.0 / params.temperature) as f32;
    let max = logits[argmax(logits) as usize];
    let mut cands: Vec<(u32, f64)> = Vec::with_capacity(logits.len());
    let threshold = if params.top_k > 0 && params.top_k < logits.len() {
        let mut vals: Vec<f32> = logits
            .iter()
            .map(|&v| if v.is_nan() { f32::NEG_INFINITY } else { v })
            .collect();
        let k = params.top_k - 1;
        let (_, kth, _) =
            vals.select_nth_unstable_by(k, |a, b| b.partial_cmp(a).unwrap_or(Ordering::Equal));
        *kth
    } else {
        f32::NEG_INFINITY
    };
    for (i, &v) in logits.iter().enumerate() {
        if v >= threshold && !v.is_nan() {
            let w = f64::from(((v - max) * inv_t).exp());
            if w > 0.0 {
                cands.push((i as u32, w));
            }
        }
    }
    if cands.is_empty() {
        return argmax(logits);
    }
    let total: f64 = cands.iter().map(|c| c.1).sum();
    let kept: &[(u32, f64)] = if params.top_p < 1.0 {
        let target = params.top_p * total;
        let len = cands.len();
        let mut m = 64.min(len);
        loop {
            if m < len {
                cands.select_nth_unstable_by(m - 1, by_weight_desc);
            }
            cands[..m].sort_unstable_by(by_weight_desc);
            let mut cum = 0.0;
            let mut keep = None;
            for (i, c) in cands[..m].iter().enumerate() {
                if cum >= target {
                    keep = Some(i);
                    break;
                }
                cum += c.1;
            }
            match keep {
                Some(n) => break &cands[..n],
                None if m == len => break &cands[..],
                None => m = (m * 4).min(len),
            }
        }
    } else {
        &cands
    };
    let mass: f64 = kept.iter().map(|c| c.1).sum();
    let mut u = draw() * mass;
    for c in kept {
        if u < c.1 {
            return c.0;
        }
        u -= c.1;
    }
    kept[kept.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprob_is_normalised() {
        let logits = [1.0f32, 2.0, 3.0];
        let total: f64 = (0..3)
            .map(|i| f64::from(token_logprob(&logits, i)).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6);
    }
}
