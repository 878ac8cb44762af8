//! `toolgym generate`: sample from a local Qwen2 model directory.

use super::{io, CliResult};
use clap::Args;
use std::path::PathBuf;
use toolgym_model::cli::{generate, parse_prompt_ids, GenerateArgs};
use toolgym_model::device_sampling::reducible;
use toolgym_model::SamplingPlace;

#[derive(Args, Debug)]
pub struct GenerateCmd {
    /// Hugging Face model directory (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Prompt text (encoded as is: no chat template is applied).
    #[arg(
        long,
        conflicts_with = "prompt_ids",
        required_unless_present = "prompt_ids"
    )]
    prompt: Option<String>,
    /// Prompt token ids, comma-separated.
    #[arg(long)]
    prompt_ids: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128, value_parser = super::at_least_one)]
    max_new_tokens: usize,
    /// Sampling temperature. The sampling settings not given are the
    /// model's, as transformers' `generate()` reads them from its
    /// generation_config.json (Qwen2.5-Instruct: temperature 0.7, top-p
    /// 0.8, top-k 20), else transformers' defaults (temperature 1, top-p 1,
    /// top-k 50). With none of --temperature, --top-p, --top-k and --seed
    /// the file's `do_sample` decides (absent: greedy, as in
    /// transformers); any of them samples. Settings of the file this
    /// sampler does not apply (no_repeat_ngram_size, min_p, ...) are said
    /// on stderr.
    #[arg(long, allow_negative_numbers = true, conflicts_with = "greedy")]
    temperature: Option<f64>,
    /// Nucleus sampling mass (see --temperature for the default).
    #[arg(long, allow_negative_numbers = true, conflicts_with = "greedy")]
    top_p: Option<f64>,
    /// Top-k sampling, 0 = off (see --temperature for the default).
    #[arg(long, conflicts_with = "greedy")]
    top_k: Option<usize>,
    /// Sampling seed (default 0).
    #[arg(long, conflicts_with = "greedy")]
    seed: Option<u64>,
    /// Greedy decoding (the sampling settings then do nothing, and giving
    /// one is refused).
    #[arg(long)]
    greedy: bool,
    /// transformers' repetition penalty (1 = off): the logit of a token
    /// already in the prompt or the completion is divided by it (multiplied
    /// when negative), greedy decoding included. Default: the file's
    /// `repetition_penalty` (Qwen2.5-Instruct: 1.05), else 1.
    #[arg(long, allow_negative_numbers = true)]
    repetition_penalty: Option<f64>,
    /// Weights dtype.
    #[arg(long, default_value = "f32", value_parser = super::dtypes(), ignore_case = true)]
    dtype: String,
    /// Device: cpu, cuda or cuda:N (cuda needs the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Where tokens are chosen: auto (on the device on a GPU, on the host
    /// on the CPU), host (the CPU's sampler everywhere) or device.
    #[arg(long, default_value = "auto", value_parser = ["auto", "host", "device"], ignore_case = true)]
    sampling_place: String,
    /// Print {"token_ids", "logprobs", "text", "finish_reason"}.
    #[arg(long)]
    json: bool,
}

pub fn run(a: GenerateCmd) -> CliResult {
    let mut args = GenerateArgs::new(a.model);
    args.prompt = a.prompt;
    args.prompt_ids = a.prompt_ids.as_deref().map(parse_prompt_ids).transpose()?;
    args.max_new_tokens = a.max_new_tokens;
    args.temperature = a.temperature;
    args.top_p = a.top_p;
    args.top_k = a.top_k;
    args.seed = a.seed;
    args.greedy = a.greedy;
    args.repetition_penalty = a.repetition_penalty;
    args.dtype = a.dtype;
    args.device = a.device;
    args.sampling_place = a.sampling_place.parse()?;
    args.json = a.json;
    let out = generate(&args)?;
    if args.sampling_place == SamplingPlace::Device && !reducible(&out.sampling) {
        // Each setting that keeps the choice off the device, as it stood
        // (the flags, else the model's generation_config.json).
        let sp = &out.sampling;
        let mut why = Vec::new();
        if sp.repetition_penalty != 1.0 {
            why.push(format!(
                "repetition penalty {} (--repetition-penalty 1)",
                sp.repetition_penalty
            ));
        }
        if !sp.is_greedy() && sp.top_k != 0 {
            why.push(format!("top-k {} (--top-k 0)", sp.top_k));
        }
        if !sp.is_greedy() && sp.top_p < 1.0 {
            why.push(format!("top-p {} (--top-p 1)", sp.top_p));
        }
        eprintln!(
            "note: tokens were chosen on the host, as these settings need each row's logits or \
             sequence there: {}",
            why.join(", ")
        );
    }
    if !out.unapplied.is_empty() {
        eprintln!(
            "warning: the model's generation_config.json sets {}, which transformers applies and \
             toolgym's sampler does not",
            out.unapplied.join(", ")
        );
    }
    if let Some(first) = out.ids_without_text.first() {
        eprintln!(
            "warning: {} of the {} generated ids (the first: {first}) are no token of the \
             tokenizer (the model's vocabulary is larger): the text leaves them out",
            out.ids_without_text.len(),
            out.token_ids.len()
        );
    }
    Ok(io::print_stdout(&format!("{}\n", out.render(args.json)?))?)
}
