//! Batched generation for rollouts: left-padded prompts, KV cache, several
//! samples per prompt sharing one prefill, per-request seeds, stop conditions.
//!
//! * **Log-probs**: `Completion::logprobs[i]` is `log softmax(logits)[token_i]`
//!   at temperature 1, whatever the sampling temperature / top-k / top-p: the
//!   model's own distribution (for logs and checks). GRPO does not use them:
//!   its old, reference and current log-probs are recomputed by
//!   [`crate::scoring::score`] at the rollout temperature, as verl does.
//! * **Seeds**: sample `s` of a request draws from the stream
//!   `Rng::with_stream(request.seed, s)`, one uniform per token, so a
//!   completion depends only on its request, never on what else is in the
//!   batch (up to float rounding of differently shaped matmuls).
//! * **Stop strings** are matched on the decoded completion (its text is
//!   kept up to date token by token, not decoded whole at each). The returned
//!   `token_ids` / `logprobs` hold every sampled token up to and including the
//!   one that completed the stop string; `text` is cut *before* the stop
//!   string unless `include_stop_str_in_output` (vLLM's convention).
//! * **EOS**: the eos token is the last entry of `token_ids` / `logprobs`
//!   (training must see it) and is not part of `text`.
//! * **Where tokens are chosen**: on an accelerator, greedy selection and
//!   plain temperature sampling run on the device
//!   ([`crate::device_sampling`]): the same draws from the same streams,
//!   with f32 instead of f64 sums. On the CPU, and for top-k / top-p, the
//!   host sampler sees every logit. [`GenerationConfig::sampling_place`]
//!   overrides the choice.
//! * No autograd graph is built: a trainable model is used through
//!   [`Qwen2ForCausalLM::detached`].

use candle_core::{DType, Tensor};
use rayon::prelude::*;
use serde::Serialize;

use crate::batch::TokenBatch;
use crate::device_sampling::{pick_tokens, Pick, SamplingPlace};
use crate::error::{ModelError, Result};
use crate::kv_cache::KvCache;
use crate::qwen2::Qwen2ForCausalLM;
use crate::rng::Rng;
use crate::sampling::{penalise_distinct, sample_token_by, token_logprob, SamplingParams};
use crate::stop_strings::StopScan;
use crate::tokenizer::Tokenizer;

/// Settings shared by every request of a [`generate`] call.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Maximum number of generated tokens per completion.
    pub max_new_tokens: usize,
    /// Token selection.
    pub sampling: SamplingParams,
    /// Generation stops after sampling any of these ids.
    pub eos_token_ids: Vec<u32>,
    /// Generation stops when the decoded completion contains any of these
    /// (needs a tokenizer).
    pub stop_strings: Vec<String>,
    /// Keep the matched stop string at the end of `text`.
    pub include_stop_str_in_output: bool,
    /// Most sequences decoded together (0: all requests in one batch).
    /// Requests are never split across batches: a request of more samples
    /// (`n`) than this is decoded as one batch of `n` rows.
    pub max_batch_size: usize,
    /// Host or device token selection (see the module documentation).
    pub sampling_place: SamplingPlace,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: 256,
            sampling: SamplingParams::default(),
            eos_token_ids: vec![],
            stop_strings: vec![],
            include_stop_str_in_output: false,
            max_batch_size: 0,
            sampling_place: SamplingPlace::Auto,
        }
    }
}

/// One prompt to complete `n` times.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// Prompt token ids (non-empty).
    pub prompt_ids: Vec<u32>,
    /// Number of completions (samples) to draw; they share one prefill.
    pub n: usize,
    /// Seed of this request's sampling streams.
    pub seed: u64,
    /// A tighter token limit for this request's completions than the
    /// config's `max_new_tokens` (e.g. what is left of an episode's budget).
    pub max_new_tokens: Option<usize>,
}

impl GenerateRequest {
    /// `n` samples of `prompt_ids` seeded with `seed`.
    pub fn new(prompt_ids: Vec<u32>, n: usize, seed: u64) -> Self {
        GenerateRequest {
            prompt_ids,
            n,
            seed,
            max_new_tokens: None,
        }
    }

    /// Limits this request's completions to `limit` tokens (never more
    /// than the config's `max_new_tokens`).
    pub fn with_max_new_tokens(mut self, limit: usize) -> Self {
        self.max_new_tokens = Some(limit);
        self
    }

    /// The token limit of this request under `config`.
    pub fn limit(&self, config: &GenerationConfig) -> usize {
        self.max_new_tokens
            .map_or(config.max_new_tokens, |l| l.min(config.max_new_tokens))
    }
}

/// Why a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// An eos id or a stop string.
    Stop,
    /// `max_new_tokens` reached.
    Length,
}

/// What triggered [`FinishReason::Stop`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// This eos id was sampled.
    Eos(u32),
    /// This stop string appeared in the text.
    StopString(String),
}

/// One generated completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    /// Sampled ids (eos / stop-completing token included).
    pub token_ids: Vec<u32>,
    /// Temperature-1 log-probability of each sampled id.
    pub logprobs: Vec<f32>,
    /// Decoded completion, when a tokenizer was given (see module docs).
    pub text: Option<String>,
    /// Stop or length.
    pub finish_reason: FinishReason,
    /// The eos id or stop string, for [`FinishReason::Stop`].
    pub stop_cause: Option<StopCause>,
}

/// Decoding state of one sequence.
struct Row {
    request: usize,
    limit: usize,
    rng: Rng,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    done: Option<(FinishReason, Option<StopCause>)>,
    /// Byte offset where a stop string begins in the decoded text.
    stop_at: Option<(usize, usize)>,
    /// The text so far, for stop strings.
    stop_scan: StopScan,
    /// With a repetition penalty, the ids it applies to: the prompt's and
    /// those generated so far, sorted and distinct (empty without one).
    seen: Vec<u32>,
}

/// Completes every request `n` times. Returns, per request, its `n`
/// completions in sample order.
///
/// A token drawn from logits that give it no log-probability (every logit
/// NaN, or an infinite one: NaN or infinite weights) fails the call with
/// [`ModelError::NonFiniteLogits`] instead of returning it as part of a
/// completion that would read as a normal one. So does a row with a NaN
/// among finite logits: the sampler would pass over it, but the row's
/// log-probabilities are not known (and the weights are broken).
pub fn generate(
    model: &Qwen2ForCausalLM,
    requests: &[GenerateRequest],
    config: &GenerationConfig,
    tokenizer: Option<&Tokenizer>,
) -> Result<Vec<Vec<Completion>>> {
    config.sampling.validate()?;
    if !config.stop_strings.is_empty() && tokenizer.is_none() {
        return Err(ModelError::input("stop strings need a tokenizer"));
    }
    if config.stop_strings.iter().any(String::is_empty) {
        return Err(ModelError::input("empty stop string"));
    }
    let vocab = model.config().vocab_size;
    for (i, r) in requests.iter().enumerate() {
        if r.prompt_ids.is_empty() {
            return Err(ModelError::input(format!("request {i}: empty prompt")));
        }
        if r.n == 0 {
            return Err(ModelError::input(format!(
                "request {i}: n must be at least 1"
            )));
        }
        let max_pos = model.config().max_position_embeddings;
        if r.prompt_ids.len().saturating_add(r.limit(config)) > max_pos {
            return Err(ModelError::input(format!(
                "request {i}: {} prompt tokens + max_new_tokens {} exceed max_position_embeddings {max_pos}",
                r.prompt_ids.len(),
                r.limit(config)
            )));
        }
        if let Some(&bad) = r.prompt_ids.iter().find(|&&t| t as usize >= vocab) {
            return Err(ModelError::input(format!(
                "request {i}: token id {bad} out of range for vocab_size {vocab}"
            )));
        }
    }
    let model = model.detached()?;
    let mut out = Vec::with_capacity(requests.len());
    let mut start = 0;
    while start < requests.len() {
        let mut end = start + 1;
        let mut rows = requests[start].n;
        while end < requests.len()
            && (config.max_batch_size == 0 || rows + requests[end].n <= config.max_batch_size)
        {
            rows += requests[end].n;
            end += 1;
        }
        let batch = generate_batch(&model, &requests[start..end], config, tokenizer);
        out.extend(batch.map_err(|e| match e {
            // The batch counts its requests from 0; the caller from `start`.
            ModelError::NonFiniteLogits { request, step } => ModelError::NonFiniteLogits {
                request: start + request,
                step,
            },
            other => other,
        })?);
        start = end;
    }
    Ok(out)
}

fn host_logits(logits: &Tensor) -> Result<Vec<f32>> {
    Ok(logits
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// The host sampler's token for one row of logits, after the repetition
/// penalty over `seen` (distinct ids;
/// [`crate::sampling::apply_repetition_penalty`]), with its temperature-1
/// log-prob of the model's logits (before the penalty, as the other
/// filters leave it); `draw` gives the uniform (see [`sample_token_by`]).
fn host_pick(
    logits: &[f32],
    seen: &[u32],
    params: &SamplingParams,
    draw: impl FnOnce() -> f64,
) -> Pick {
    let chosen_from: std::borrow::Cow<'_, [f32]> = if params.repetition_penalty == 1.0 {
        logits.into()
    } else {
        let mut penalised = logits.to_vec();
        penalise_distinct(&mut penalised, seen, params.repetition_penalty);
        penalised.into()
    };
    let token = sample_token_by(&chosen_from, params, draw);
    Pick {
        token,
        logprob: token_logprob(logits, token),
    }
}

/// One decode step's logits, `[n, vocab]`, and each batch slot's row in
/// them (the prefill has one row per request, shared by its samples).
enum StepLogits {
    /// Copied to the host: slot `s`'s logits are `rows[s]`.
    Host { rows: Vec<f32>, vocab: usize },
    /// Left on the device for [`pick_tokens`].
    Device {
        logits: Tensor,
        row_of_slot: Vec<usize>,
    },
}

impl StepLogits {
    fn new(logits: Tensor, row_of_slot: Vec<usize>, on_device: bool, vocab: usize) -> Result<Self> {
        if on_device {
            return Ok(StepLogits::Device {
                logits,
                row_of_slot,
            });
        }
        let all = host_logits(&logits)?;
        let identity = row_of_slot.iter().enumerate().all(|(s, &r)| s == r)
            && row_of_slot.len() * vocab == all.len();
        let rows = if identity {
            all
        } else {
            row_of_slot
                .iter()
                .flat_map(|&r| all[r * vocab..(r + 1) * vocab].iter().copied())
                .collect()
        };
        Ok(StepLogits::Host { rows, vocab })
    }

    /// Slot `slot`'s logits (host logits only).
    fn host_row(&self, slot: usize) -> &[f32] {
        match self {
            StepLogits::Host { rows, vocab } => &rows[slot * vocab..(slot + 1) * vocab],
            StepLogits::Device { .. } => unreachable!("host_row on device logits"),
        }
    }

    /// For device logits, every live slot's token, in `live` order: one
    /// uniform drawn from each row's stream (none when greedy), the choice
    /// made on the device, and rows it leaves undecided (non-finite logits)
    /// sampled on the host with the same draw. `None` for host logits.
    fn device_picks(
        &self,
        live: &mut [(usize, &mut Row)],
        params: &SamplingParams,
    ) -> Result<Option<Vec<Pick>>> {
        let StepLogits::Device {
            logits,
            row_of_slot,
        } = self
        else {
            return Ok(None);
        };
        let rows: Vec<usize> = live.iter().map(|(s, _)| row_of_slot[*s]).collect();
        let uniforms: Vec<f64> = live
            .iter_mut()
            .map(|(_, row)| {
                if params.is_greedy() {
                    0.0
                } else {
                    row.rng.next_f64()
                }
            })
            .collect();
        let picks = pick_tokens(logits, &rows, params, &uniforms)?;
        let mut host: Option<(Vec<f32>, usize)> = None;
        let mut out = Vec::with_capacity(picks.len());
        for (i, p) in picks.into_iter().enumerate() {
            let pick = match p {
                Some(p) => p,
                None => {
                    if host.is_none() {
                        let (_, vocab) = logits.dims2()?;
                        host = Some((host_logits(logits)?, vocab));
                    }
                    let (all, vocab) = host.as_ref().expect("just set");
                    // Device picks are of rows without a penalty
                    // (`device_sampling::reducible`): no sequence to penalise.
                    host_pick(
                        &all[rows[i] * vocab..(rows[i] + 1) * vocab],
                        &[],
                        params,
                        || uniforms[i],
                    )
                }
            };
            out.push(pick);
        }
        Ok(Some(out))
    }
}

fn generate_batch(
    model: &Qwen2ForCausalLM,
    requests: &[GenerateRequest],
    config: &GenerationConfig,
    tokenizer: Option<&Tokenizer>,
) -> Result<Vec<Vec<Completion>>> {
    let vocab = model.config().vocab_size;
    let penalised = config.sampling.repetition_penalty != 1.0;
    let mut rows: Vec<Row> = requests
        .iter()
        .enumerate()
        .flat_map(|(ri, r)| {
            (0..r.n).map(move |s| Row {
                request: ri,
                limit: r.limit(config),
                rng: Rng::with_stream(r.seed, s as u64),
                tokens: Vec::new(),
                logprobs: Vec::new(),
                done: None,
                stop_at: None,
                stop_scan: StopScan::default(),
                seen: if penalised {
                    let mut ids = r.prompt_ids.clone();
                    ids.sort_unstable();
                    ids.dedup();
                    ids
                } else {
                    Vec::new()
                },
            })
        })
        .collect();
    for row in rows.iter_mut().filter(|r| r.limit == 0) {
        row.done = Some((FinishReason::Length, None));
    }
    let longest = rows.iter().map(|r| r.limit).max().unwrap_or(0);
    if longest > 0 {
        let prompts: Vec<&[u32]> = requests.iter().map(|r| r.prompt_ids.as_slice()).collect();
        let prefill = TokenBatch::left_padded(&prompts, 0)?;
        let capacity = prefill.seq_len + longest;
        let mut cache = KvCache::new(
            model.config(),
            requests.len(),
            capacity,
            model.dtype(),
            model.device(),
        )?;
        let on_device = config
            .sampling_place
            .on_device(model.device(), &config.sampling);
        let first = model.forward_last(&prefill, Some(&mut cache))?;
        // Batch slot -> row index; row i starts in slot i.
        let mut slots: Vec<usize> = (0..rows.len()).collect();
        let prompt_of_row: Vec<usize> = rows.iter().map(|r| r.request).collect();
        if prompt_of_row.len() != requests.len() {
            cache = cache.select_rows(&prompt_of_row)?;
        }
        let mut pad_left: Vec<usize> = prompt_of_row.iter().map(|&p| prefill.pad_left[p]).collect();
        // This step's logits and, per slot, its row in them.
        let mut logits = StepLogits::new(first, prompt_of_row, on_device, vocab)?;
        loop {
            // Choose one token for every live slot (rows are independent).
            let mut live: Vec<(usize, &mut Row)> = Vec::new();
            {
                let mut by_row: Vec<Option<&mut Row>> = rows.iter_mut().map(Some).collect();
                for (slot, &ri) in slots.iter().enumerate() {
                    if let Some(row) = by_row[ri].take() {
                        if row.done.is_none() {
                            live.push((slot, row));
                        }
                    }
                }
            }
            let picks = logits.device_picks(&mut live, &config.sampling)?;
            let step = |(i, (slot, row)): (usize, &mut (usize, &mut Row))| {
                let (tok, logprob) = match &picks {
                    Some(p) => (p[i].token, p[i].logprob),
                    None => {
                        let p =
                            host_pick(logits.host_row(*slot), &row.seen, &config.sampling, || {
                                row.rng.next_f64()
                            });
                        (p.token, p.logprob)
                    }
                };
                if let (true, Err(at)) = (penalised, row.seen.binary_search(&tok)) {
                    row.seen.insert(at, tok);
                }
                row.tokens.push(tok);
                row.logprobs.push(logprob);
                if logprob.is_nan() {
                    // Logits that are not numbers: the row stops here and
                    // `generate` fails (see its assembly of the results).
                    row.done = Some((FinishReason::Stop, None));
                } else if config.eos_token_ids.contains(&tok) {
                    row.done = Some((FinishReason::Stop, Some(StopCause::Eos(tok))));
                } else if let Some(tk) = tokenizer.filter(|_| !config.stop_strings.is_empty()) {
                    let stops = &config.stop_strings;
                    if let Some((p, s)) = row.stop_scan.push(tk, &row.tokens, stops) {
                        row.stop_at = Some((p, stops[s].len()));
                        row.done = Some((
                            FinishReason::Stop,
                            Some(StopCause::StopString(stops[s].clone())),
                        ));
                    }
                }
                if row.done.is_none() && row.tokens.len() >= row.limit {
                    row.done = Some((FinishReason::Length, None));
                }
            };
            if live.len() > 1 {
                live.par_iter_mut().enumerate().for_each(step);
            } else {
                live.iter_mut().enumerate().for_each(step);
            }
            drop(live);
            let active: Vec<usize> = (0..slots.len())
                .filter(|&s| rows[slots[s]].done.is_none())
                .collect();
            if active.is_empty() {
                break;
            }
            // Compact finished rows away once a quarter of the batch is idle.
            if active.len() * 4 <= slots.len() * 3 {
                cache = cache.select_rows(&active)?;
                slots = active.iter().map(|&s| slots[s]).collect();
                pad_left = active.iter().map(|&s| pad_left[s]).collect();
            }
            let ids: Vec<u32> = slots
                .iter()
                .map(|&ri| rows[ri].tokens.last().copied().unwrap_or(0))
                .collect();
            let batch = TokenBatch::new(ids, slots.len(), 1, pad_left.clone())?;
            let next = model.forward_last(&batch, Some(&mut cache))?;
            logits = StepLogits::new(next, (0..slots.len()).collect(), on_device, vocab)?;
        }
    }
    let mut out: Vec<Vec<Completion>> = requests.iter().map(|r| Vec::with_capacity(r.n)).collect();
    for row in rows {
        if let Some(step) = row.logprobs.iter().position(|lp| lp.is_nan()) {
            return Err(ModelError::NonFiniteLogits {
                request: row.request,
                step,
            });
        }
        let (finish_reason, stop_cause) = row.done.unwrap_or((FinishReason::Length, None));
        let text = match tokenizer {
            None => None,
            Some(tk) => Some(completion_text(
                tk,
                &row.tokens,
                &stop_cause,
                row.stop_at,
                config,
            )?),
        };
        out[row.request].push(Completion {
            token_ids: row.tokens,
            logprobs: row.logprobs,
            text,
            finish_reason,
            stop_cause,
        });
    }
    Ok(out)
}

fn completion_text(
    tk: &Tokenizer,
    tokens: &[u32],
    cause: &Option<StopCause>,
    stop_at: Option<(usize, usize)>,
    config: &GenerationConfig,
) -> Result<String> {
    match cause {
        Some(StopCause::Eos(_)) => tk.decode(&tokens[..tokens.len().saturating_sub(1)], false),
        Some(StopCause::StopString(_)) => {
            let text = tk.decode(tokens, false)?;
            let (p, len) = stop_at.unwrap_or((text.len(), 0));
            let end = if config.include_stop_str_in_output {
                p + len
            } else {
                p
            };
            Ok(text.get(..end).unwrap_or(&text).to_string())
        }
        None => tk.decode(tokens, false),
    }
}
