//! Packing sequences into micro-batches and scoring them.

use crate::TrainError;
use rayon::prelude::*;
use toolgym_model::candle_core::{Device, Tensor};
use toolgym_model::{distinct_prompts, score, Qwen2ForCausalLM, ScoreOptions, ScoreOutput};

/// A prompt and what follows it, as token ids, with a per-token train
/// mask: 1 for the model's tokens (trained on), 0 for tokens the
/// environment added between turns. The policy loss, the KL, the entropy
/// and every token-mean denominator count only masked-in tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// Every id after the prompt (the end-of-turn token included when
    /// generated).
    pub completion: Vec<u32>,
    /// One entry per completion id: 1 = model token, 0 = environment token.
    pub mask: Vec<u8>,
}

impl Sequence {
    /// A single reply: every completion token is the model's.
    pub fn reply(prompt: Vec<u32>, completion: Vec<u32>) -> Self {
        let mask = vec![1; completion.len()];
        Self {
            prompt,
            completion,
            mask,
        }
    }

    /// The number of model tokens.
    pub fn model_tokens(&self) -> usize {
        self.mask.iter().filter(|&&m| m == 1).count()
    }

    /// Prompt plus completion length.
    pub fn len(&self) -> usize {
        self.prompt.len() + self.completion.len()
    }

    /// Whether both parts are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Splits `indices` into micro-batches of at most `size` sequences.
///
/// Sequences with the same prompt (a GRPO group) go to the same
/// micro-batch, so that scoring runs their prompt once (see
/// [`toolgym_model::score`]); a group larger than `size` is split. Groups
/// are taken in order of their longest sequence, so that each micro-batch
/// pads little. With distinct prompts this is a sort by length, then
/// chunks of `size`. Gradients are summed over micro-batches, so with
/// `token-mean` or `seq-mean` the grouping changes the result only by float
/// rounding; with `verl-micro-token-mean` each micro-batch's own token
/// count weighs its tokens, so the grouping is part of the result.
pub fn micro_batches(indices: &[usize], seqs: &[Sequence], size: usize) -> Vec<Vec<usize>> {
    let size = size.max(1);
    let prompts: Vec<&[u32]> = indices.iter().map(|&i| seqs[i].prompt.as_slice()).collect();
    let (distinct, prompt_of) = distinct_prompts(&prompts);
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); distinct.len()];
    for (&i, &g) in indices.iter().zip(&prompt_of) {
        groups[g].push(i);
    }
    for g in &mut groups {
        g.sort_by_key(|&i| (seqs[i].len(), i));
    }
    let key = |g: &Vec<usize>| g.last().map(|&i| (seqs[i].len(), g[0]));
    groups.sort_by_key(key);
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for g in groups {
        if current.len() + g.len() > size && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        for chunk in g.chunks(size) {
            if current.len() + chunk.len() > size {
                out.push(std::mem::take(&mut current));
            }
            current.extend_from_slice(chunk);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// How many micro-batches run at once on `device`: one per rayon thread on
/// the CPU, one on an accelerator.
///
/// On the CPU a small policy's matrix multiplications are too small to
/// split well across cores (each one wakes the other threads and waits for
/// them), so whole micro-batches run side by side instead, each on one
/// thread; the matrix multiplications still split when a thread is free.
/// Results are folded in micro-batch order, so sums are the same bit for
/// bit whatever the thread count.
pub fn micro_workers(device: &Device) -> usize {
    if device.is_cpu() {
        rayon::current_num_threads().max(1)
    } else {
        1
    }
}

/// Runs `work` on each micro-batch, up to `workers` of them at a time, and
/// hands each result to `fold` in micro-batch order (the first error
/// stops the run). At most `workers` micro-batches are in memory at once.
pub fn run_micro_batches<T: Send>(
    micros: &[Vec<usize>],
    workers: usize,
    work: impl Fn(&[usize]) -> Result<T, TrainError> + Sync,
    mut fold: impl FnMut(&[usize], T) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    for chunk in micros.chunks(workers.max(1)) {
        let results: Vec<Result<T, TrainError>> = if chunk.len() == 1 {
            vec![work(&chunk[0])]
        } else {
            chunk.par_iter().map(|m| work(m)).collect()
        };
        for (m, r) in chunk.iter().zip(results) {
            fold(m, r?)?;
        }
    }
    Ok(())
}

/// What [`score_seqs`] computes besides log-probs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entropy {
    /// No entropy.
    Skip,
    /// Entropy as a metric (no gradient graph).
    Metric,
    /// Differentiable entropy (an entropy bonus is in the loss).
    Differentiable,
}

/// Scores the completions of `seqs[idx]` with `model` (differentiable when
/// the model is trainable). The output's `mask` is the train mask (0 on
/// environment tokens and padding), and log-probs and entropies are zeroed
/// where it is 0.
pub fn score_seqs(
    model: &Qwen2ForCausalLM,
    seqs: &[Sequence],
    idx: &[usize],
    temperature: f64,
    entropy: Entropy,
) -> Result<ScoreOutput, TrainError> {
    let prompts: Vec<&[u32]> = idx.iter().map(|&i| seqs[i].prompt.as_slice()).collect();
    let completions: Vec<&[u32]> = idx.iter().map(|&i| seqs[i].completion.as_slice()).collect();
    let mut out = score(
        model,
        &prompts,
        &completions,
        &ScoreOptions {
            temperature,
            entropy: entropy != Entropy::Skip,
            entropy_grad: entropy == Entropy::Differentiable,
        },
    )?;
    if idx.iter().any(|&i| seqs[i].mask.contains(&0)) {
        let width = out.mask.dims()[1];
        let rows: Vec<Vec<f32>> = idx
            .iter()
            .map(|&i| seqs[i].mask.iter().map(|&m| f32::from(m)).collect())
            .collect();
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let train = padded(&refs, width, out.mask.device())?.to_dtype(out.mask.dtype())?;
        out.logprobs = (&out.logprobs * &train)?;
        out.entropies = match out.entropies {
            Some(e) => Some((e * &train)?),
            None => None,
        };
        out.mask = train;
    }
    Ok(out)
}

/// Per-sequence log-probs of the completions of `seqs[indices]` (no
/// autograd), micro-batched; 0 on environment tokens, and an empty row for
/// every sequence not in `indices`.
pub fn logprobs_of(
    model: &Qwen2ForCausalLM,
    seqs: &[Sequence],
    indices: &[usize],
    micro: usize,
    temperature: f64,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let mut out = vec![Vec::new(); seqs.len()];
    let micros = micro_batches(indices, seqs, micro);
    run_micro_batches(
        &micros,
        micro_workers(model.device()),
        |mb| {
            let s = score_seqs(model, seqs, mb, temperature, Entropy::Skip)?;
            Ok(s.logprobs.to_vec2::<f32>()?)
        },
        |mb, rows| {
            for (row, &i) in rows.into_iter().zip(mb) {
                out[i] = row[..seqs[i].completion.len()].to_vec();
            }
            Ok(())
        },
    )?;
    Ok(out)
}

/// Stacks per-sequence values into a zero-padded `[B, width]` tensor.
pub fn padded(rows: &[&[f32]], width: usize, device: &Device) -> Result<Tensor, TrainError> {
    let mut data = Vec::with_capacity(rows.len() * width);
    for r in rows {
        data.extend_from_slice(&r[..r.len().min(width)]);
        data.extend(std::iter::repeat_n(0.0, width.saturating_sub(r.len())));
    }
    Ok(Tensor::from_vec(data, (rows.len(), width), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(prompt: &[u32], completion_len: usize) -> Sequence {
        Sequence::reply(prompt.to_vec(), vec![1; completion_len])
    }

    #[test]
    fn distinct_prompts_are_sorted_by_length_and_chunked() {
        let seqs: Vec<Sequence> = [5, 2, 9, 2, 7]
            .iter()
            .map(|&n| seq(&[n as u32], n))
            .collect();
        let got = micro_batches(&[0, 1, 2, 3, 4], &seqs, 2);
        assert_eq!(got, vec![vec![1, 3], vec![0, 4], vec![2]]);
    }

    #[test]
    fn a_prompt_s_sequences_share_a_micro_batch() {
        // Two groups of three on prompts A and B, one lone sequence on C.
        let (a, b, c) = ([1u32, 2], [3u32, 4, 5], [6u32]);
        let seqs = vec![
            seq(&a, 4),
            seq(&b, 1),
            seq(&a, 2),
            seq(&c, 1),
            seq(&b, 2),
            seq(&a, 3),
            seq(&b, 3),
        ];
        let all: Vec<usize> = (0..seqs.len()).collect();
        // Groups ordered by their longest sequence (C: 2 tokens, B and A:
        // 6), each sorted by length; whole groups are packed while they fit.
        assert_eq!(
            micro_batches(&all, &seqs, 4),
            vec![vec![3, 1, 4, 6], vec![2, 5, 0]]
        );
        assert_eq!(
            micro_batches(&all, &seqs, 6),
            vec![vec![3, 1, 4, 6], vec![2, 5, 0]]
        );
        assert_eq!(
            micro_batches(&all, &seqs, 7),
            vec![vec![3, 1, 4, 6, 2, 5, 0]]
        );
        // A group larger than the micro-batch is split.
        assert_eq!(
            micro_batches(&all, &seqs, 2),
            vec![vec![3], vec![1, 4], vec![6], vec![2, 5], vec![0]]
        );
        // Only the given indices.
        assert_eq!(micro_batches(&[6, 5], &seqs, 8), vec![vec![5, 6]]);
    }

    /// Environment tokens (mask 0) between a multi-turn episode's replies
    /// take no part in the loss or its gradient: `score_seqs` zeroes them
    /// and gives the train mask, so whatever old or reference log-probs
    /// stand there, the loss and every parameter's gradient are the same,
    /// bit for bit; the model tokens after them are scored in place
    /// (conditioned on the env tokens, as at generation).
    #[test]
    fn environment_tokens_add_nothing_to_the_loss_or_its_gradient() {
        use crate::loss::{aggregation_weights, policy_loss, LossAgg, LossCoefs, LossInputs};
        use toolgym_model::candle_core::DType;
        use toolgym_model::{ModelOptions, Qwen2Config, RandomInit};
        let cfg = Qwen2Config::with_dims(40, 16, 24, 2, (4, 2), 10000.0, true);
        let opts = ModelOptions {
            dtype: DType::F32,
            device: Device::Cpu,
            trainable: true,
        };
        let model = Qwen2ForCausalLM::random(&cfg, &RandomInit::peaked(3), &opts).unwrap();
        // Reply, tool result (mask 0), reply.
        let seqs = vec![
            Sequence {
                prompt: vec![3, 9, 4],
                completion: vec![5, 12, 30, 2, 7, 8, 21],
                mask: vec![1, 1, 0, 0, 0, 1, 1],
            },
            Sequence {
                prompt: vec![7, 1],
                completion: vec![8, 2, 33, 17],
                mask: vec![1, 0, 1, 1],
            },
        ];
        let out = score_seqs(&model, &seqs, &[0, 1], 0.7, Entropy::Skip).unwrap();
        let mask = out.mask.to_vec2::<f32>().unwrap();
        assert_eq!(
            mask,
            [
                vec![1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0],
                vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
            ]
        );
        // Model tokens keep the log-probs the plain scorer gives them.
        let plain = score(
            &model,
            &[&seqs[0].prompt[..], &seqs[1].prompt[..]],
            &[&seqs[0].completion[..], &seqs[1].completion[..]],
            &ScoreOptions {
                temperature: 0.7,
                entropy: false,
                entropy_grad: false,
            },
        )
        .unwrap()
        .logprobs
        .to_vec2::<f32>()
        .unwrap();
        let lp = out.logprobs.to_vec2::<f32>().unwrap();
        for b in 0..2 {
            for j in 0..7 {
                let want = if mask[b][j] == 1.0 { plain[b][j] } else { 0.0 };
                assert_eq!(lp[b][j], want, "[{b}][{j}]");
            }
        }

        let tokens = mask.iter().flatten().filter(|m| **m == 1.0).count();
        let weights = aggregation_weights(&out.mask, LossAgg::TokenMean, tokens, 2).unwrap();
        let coefs = LossCoefs {
            clip_low: 0.2,
            clip_high: 0.2,
            kl_coef: 0.1,
            entropy_coef: 0.0,
        };
        let advantages = Tensor::new(&[1.0f32, -0.7], &Device::Cpu).unwrap();
        let vars = model.named_vars().unwrap();
        // The loss and the gradient of every parameter, with `at_env` as
        // the old and reference log-probs of env tokens (`at_model` of one
        // model token, to see that the check can fail).
        let loss_and_grads = |at_env: f32, at_model: f32| -> (f32, Vec<Vec<f32>>) {
            let s = score_seqs(&model, &seqs, &[0, 1], 0.7, Entropy::Skip).unwrap();
            let detached = s.logprobs.detach().to_vec2::<f32>().unwrap();
            let shifted: Vec<f32> = (0..2)
                .flat_map(|b| (0..7).map(move |j| (b, j)))
                .map(|(b, j)| match (mask[b][j] == 1.0, (b, j)) {
                    (true, (0, 5)) => detached[b][j] + at_model,
                    (true, _) => detached[b][j] + 0.1,
                    (false, _) => at_env,
                })
                .collect();
            let old = Tensor::from_vec(shifted.clone(), (2, 7), &Device::Cpu).unwrap();
            let reference = old.affine(1.0, -0.05).unwrap();
            let out = policy_loss(
                &LossInputs {
                    logprobs: &s.logprobs,
                    old_logprobs: &old,
                    ref_logprobs: Some(&reference),
                    entropies: None,
                    advantages: &advantages,
                    mask: &s.mask,
                },
                &coefs,
                &weights,
            )
            .unwrap();
            let grads = out.loss.backward().unwrap();
            let g = vars
                .iter()
                .map(|(name, v)| {
                    grads
                        .get(v.as_tensor())
                        .unwrap_or_else(|| panic!("no gradient for {name}"))
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                })
                .collect();
            (out.loss.to_scalar::<f32>().unwrap(), g)
        };
        let base = loss_and_grads(0.0, 0.1);
        assert!(base.0.is_finite() && base.0 != 0.0, "{}", base.0);
        for at_env in [-3.0, 2.5, -0.7] {
            assert_eq!(loss_and_grads(at_env, 0.1), base, "env log-probs {at_env}");
        }
        // The same change on a model token moves the loss.
        assert_ne!(loss_and_grads(0.0, -0.9).0, base.0);
    }
}
