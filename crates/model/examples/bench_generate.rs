//! Generation / prefill throughput of the Qwen2.5-0.5B architecture with
//! random weights (CPU by default).
//!
//! ```text
//! cargo run -p toolgym-model --release --example bench_generate -- \
//!     [--batch-sizes 1,32] [--prompt-len 64] [--new-tokens 32] [--prefill-len 128] \
//!     [--repeats 3] [--dtype f32] [--device cpu] [--tiny] [--peak-gbps 3350] \
//!     [--breakdown 32] [--sampling-place auto|host|device]
//! ```
//!
//! Prints one JSON object per measurement (`{"impl":"candle",...}`), the same
//! format as scripts/bench/model_hf_generate_bench.py; scripts/bench/model_bench.sh
//! runs both and prints a comparison table.
//!
//! * prefill: one sequence of `prefill-len` tokens through a fresh KV cache;
//! * generate: `batch` prompts of `prompt-len` tokens, greedy, exactly
//!   `new-tokens` new tokens (no eos), end to end;
//! * decode: `batch * (new_tokens - 1) / (t_generate(new_tokens) - t_generate(1))`,
//!   the steady-state rate of the decode loop (prefill and first token excluded).
//!
//! Memory bandwidth of the decode loop: every decode step reads all weights
//! once (the LM head too; an untied input embedding is only gathered, so it
//! is left out) plus the KV cache. `decode_gb_per_s` is those bytes per step
//! times steps per second; with `--peak-gbps` (the device's memory bandwidth
//! in GB/s, e.g. 3350 for an H100 SXM) it also prints `bandwidth_fraction`.
//! Batch-1 decode cannot beat `peak / bytes_per_step` steps per second.
//!
//! With `--breakdown STEPS`, it also prints, per batch size, where a decode
//! step's time goes (`"metric":"decode_breakdown"`): the forward pass up to
//! the last position's logits (`forward_ms`, the device synchronised after
//! it), the logits' copy to the host as f32 (`copy_ms`) and host-side
//! greedy sampling with the token's log-prob (`sample_ms`), each the mean
//! over `STEPS` decode steps after a prefill of `prompt-len` tokens; and
//! what choosing the tokens on the device costs instead of the last two
//! ([`toolgym_model::device_sampling`]): greedy (`device_greedy_ms`) and
//! at temperature 0.7 (`device_sample_ms`). `generate` chooses on the
//! device on an accelerator and on the host on the CPU;
//! `--sampling-place` overrides that for the `generate` measurements.
//!
//! Times are the best (minimum) of `repeats` runs after one warm-up run: the
//! minimum is the estimate least disturbed by other processes on the machine.
//!
//! Like the `toolgym` CLI, it first calls
//! [`toolgym_model::runtime::configure_allocator`] (freed tensor buffers stay
//! in the process); scripts/bench/model_bench.sh gives PyTorch the same
//! malloc settings.

use std::time::Instant;

use toolgym_model::cli::{parse_device, parse_dtype};
use toolgym_model::device_sampling::pick_tokens;
use toolgym_model::{
    generate, GenerateRequest, GenerationConfig, KvCache, ModelOptions, Qwen2Config,
    Qwen2ForCausalLM, RandomInit, Rng, SamplingParams, SamplingPlace, TokenBatch,
};

struct Args {
    batch_sizes: Vec<usize>,
    prompt_len: usize,
    new_tokens: usize,
    prefill_len: usize,
    repeats: usize,
    dtype: String,
    device: String,
    tiny: bool,
    peak_gbps: Option<f64>,
    breakdown: usize,
    sampling_place: SamplingPlace,
}

fn parse_args() -> Args {
    let mut a = Args {
        batch_sizes: vec![1, 32],
        prompt_len: 64,
        new_tokens: 32,
        prefill_len: 128,
        repeats: 3,
        dtype: "f32".into(),
        device: "cpu".into(),
        tiny: false,
        peak_gbps: None,
        breakdown: 0,
        sampling_place: SamplingPlace::Auto,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let val = || argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--batch-sizes" => {
                a.batch_sizes = val()
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect()
            }
            "--prompt-len" => a.prompt_len = val().parse().unwrap_or(a.prompt_len),
            "--new-tokens" => a.new_tokens = val().parse().unwrap_or(a.new_tokens),
            "--prefill-len" => a.prefill_len = val().parse().unwrap_or(a.prefill_len),
            "--repeats" => a.repeats = val().parse().unwrap_or(a.repeats),
            "--dtype" => a.dtype = val(),
            "--device" => a.device = val(),
            "--peak-gbps" => a.peak_gbps = val().parse().ok(),
            "--breakdown" => a.breakdown = val().parse().unwrap_or(0),
            "--sampling-place" => {
                a.sampling_place = val().parse().unwrap_or_else(|e| {
                    eprintln!("--sampling-place: {e}");
                    std::process::exit(2);
                })
            }
            "--tiny" => {
                a.tiny = true;
                i += 1;
                continue;
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    a
}

fn best(xs: Vec<f64>) -> f64 {
    xs.into_iter().fold(f64::INFINITY, f64::min)
}

fn time<F: FnMut()>(repeats: usize, mut f: F) -> f64 {
    f();
    best(
        (0..repeats.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn prompts(batch: usize, len: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = Rng::new(seed);
    (0..batch)
        .map(|_| (0..len).map(|_| rng.below(vocab as u64) as u32).collect())
        .collect()
}

fn prefill(model: &Qwen2ForCausalLM, ps: &[Vec<u32>]) {
    let batch = TokenBatch::left_padded(ps, 0).expect("batch");
    let mut cache = KvCache::new(
        model.config(),
        ps.len(),
        batch.seq_len + 1,
        model.dtype(),
        model.device(),
    )
    .expect("cache");
    let logits = model
        .forward_last(&batch, Some(&mut cache))
        .expect("forward");
    // Force completion on asynchronous devices.
    let _ = logits
        .to_dtype(candle_core::DType::F32)
        .and_then(|l| l.sum_all())
        .and_then(|s| s.to_scalar::<f32>());
}

/// Bytes one decode step reads: the weights (without an untied input
/// embedding, which is gathered row by row) and the KV cache of `batch`
/// rows at `positions` cached positions.
fn decode_step_bytes(
    cfg: &Qwen2Config,
    dtype: candle_core::DType,
    batch: usize,
    positions: usize,
) -> f64 {
    let gathered = if cfg.tie_word_embeddings {
        0
    } else {
        cfg.vocab_size * cfg.hidden_size
    };
    let weights = cfg.num_parameters() - gathered;
    let kv = cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * cfg.head_dim * positions * batch;
    ((weights + kv) * dtype.size_in_bytes()) as f64
}

/// Mean milliseconds per decode step spent in the forward pass, the logits'
/// copy to the host and host-side sampling (see the module documentation).
fn decode_breakdown(model: &Qwen2ForCausalLM, ps: &[Vec<u32>], steps: usize) -> [f64; 5] {
    let vocab = model.config().vocab_size;
    let batch = TokenBatch::left_padded(ps, 0).expect("batch");
    let mut cache = KvCache::new(
        model.config(),
        ps.len(),
        batch.seq_len + steps + 1,
        model.dtype(),
        model.device(),
    )
    .expect("cache");
    let sync = || model.device().synchronize().expect("synchronize");
    let mut logits = model
        .forward_last(&batch, Some(&mut cache))
        .expect("forward");
    let mut ms = [0.0f64; 5];
    let all: Vec<usize> = (0..ps.len()).collect();
    let uniforms = vec![0.5; ps.len()];
    let warm = SamplingParams {
        temperature: 0.7,
        ..SamplingParams::default()
    };
    let pick = |logits: &candle_core::Tensor, params: &SamplingParams| {
        let t = Instant::now();
        let picks = pick_tokens(logits, &all, params, &uniforms).expect("pick");
        std::hint::black_box(picks);
        t.elapsed().as_secs_f64()
    };
    for _ in 0..steps {
        let t_greedy = pick(&logits, &SamplingParams::greedy());
        let t_warm = pick(&logits, &warm);
        let t = Instant::now();
        let host: Vec<f32> = logits
            .to_dtype(candle_core::DType::F32)
            .and_then(|l| l.flatten_all())
            .and_then(|l| l.to_vec1())
            .expect("copy");
        let t_copy = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let ids: Vec<u32> = host
            .chunks(vocab)
            .map(|row| {
                let tok = toolgym_model::sampling::argmax(row);
                std::hint::black_box(toolgym_model::sampling::token_logprob(row, tok));
                tok
            })
            .collect();
        let t_sample = t.elapsed().as_secs_f64();
        let step = TokenBatch::new(ids, ps.len(), 1, vec![0; ps.len()]).expect("batch");
        let t = Instant::now();
        logits = model
            .forward_last(&step, Some(&mut cache))
            .expect("forward");
        sync();
        let t_forward = t.elapsed().as_secs_f64();
        for (m, x) in ms
            .iter_mut()
            .zip([t_forward, t_copy, t_sample, t_greedy, t_warm])
        {
            *m += x * 1e3 / steps as f64;
        }
    }
    ms
}

fn main() {
    toolgym_model::runtime::configure_allocator();
    let a = parse_args();
    let cfg = if a.tiny {
        Qwen2Config::tiny_default(2048)
    } else {
        Qwen2Config::qwen2_5_0_5b()
    };
    let opts = ModelOptions {
        dtype: parse_dtype(&a.dtype).expect("dtype"),
        device: parse_device(&a.device).expect("device"),
        trainable: false,
    };
    let t = Instant::now();
    let model = Qwen2ForCausalLM::random(&cfg, &RandomInit::hf(&cfg, 0), &opts).expect("model");
    eprintln!(
        "candle: {} parameters, random init {:.1}s, {} threads",
        model.num_parameters(),
        t.elapsed().as_secs_f64(),
        candle_core::utils::get_num_threads()
    );
    let vocab = cfg.vocab_size;
    let p = prompts(1, a.prefill_len, vocab, 1);
    let secs = time(a.repeats, || prefill(&model, &p));
    println!(
        "{{\"impl\":\"candle\",\"metric\":\"prefill\",\"batch\":1,\"tokens\":{},\"seconds\":{secs:.4},\"tokens_per_s\":{:.2}}}",
        a.prefill_len,
        a.prefill_len as f64 / secs
    );
    for &b in &a.batch_sizes {
        let ps = prompts(b, a.prompt_len, vocab, 2 + b as u64);
        let reqs: Vec<GenerateRequest> = ps
            .iter()
            .map(|p| GenerateRequest::new(p.clone(), 1, 0))
            .collect();
        let run = |new_tokens: usize| {
            let gc = GenerationConfig {
                max_new_tokens: new_tokens,
                sampling: SamplingParams::greedy(),
                sampling_place: a.sampling_place,
                ..GenerationConfig::default()
            };
            time(a.repeats, || {
                let out = generate(&model, &reqs, &gc, None).expect("generate");
                assert!(out.iter().all(|c| c[0].token_ids.len() == new_tokens));
            })
        };
        // One new token = prefill + first sample; the difference to `new_tokens`
        // is the decode loop.
        let t_first = run(1);
        let t_gen = run(a.new_tokens);
        let mut decode = "null".to_string();
        let mut bandwidth = String::new();
        if t_gen > t_first {
            let tokens_per_s = (b * (a.new_tokens - 1)) as f64 / (t_gen - t_first);
            decode = format!("{tokens_per_s:.2}");
            // Mean cached length over the decode steps.
            let positions = a.prompt_len + a.new_tokens / 2;
            let bytes = decode_step_bytes(&cfg, model.dtype(), b, positions);
            let gbps = bytes * tokens_per_s / b as f64 / 1e9;
            bandwidth = format!(",\"decode_step_bytes\":{bytes:.0},\"decode_gb_per_s\":{gbps:.2}");
            if let Some(peak) = a.peak_gbps {
                bandwidth += &format!(",\"bandwidth_fraction\":{:.3}", gbps / peak);
            }
        }
        println!(
            "{{\"impl\":\"candle\",\"metric\":\"generate\",\"batch\":{b},\"prompt_len\":{},\"new_tokens\":{},\"seconds\":{t_gen:.4},\"first_token_seconds\":{t_first:.4},\"tokens_per_s\":{:.2},\"decode_tokens_per_s\":{decode}{bandwidth}}}",
            a.prompt_len,
            a.new_tokens,
            (b * a.new_tokens) as f64 / t_gen,
        );
        if a.breakdown > 0 {
            decode_breakdown(&model, &ps, 2);
            let [forward, copy, sample, greedy, warm] = decode_breakdown(&model, &ps, a.breakdown);
            println!(
                "{{\"impl\":\"candle\",\"metric\":\"decode_breakdown\",\"batch\":{b},\"steps\":{},\"forward_ms\":{forward:.3},\"copy_ms\":{copy:.3},\"sample_ms\":{sample:.3},\"device_greedy_ms\":{greedy:.3},\"device_sample_ms\":{warm:.3}}}",
                a.breakdown
            );
        }
    }
}
