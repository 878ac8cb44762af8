//! Logic of `toolgym generate`, free of any argument-parsing crate.
//!
//! The binary maps its flags onto [`GenerateArgs`], calls [`generate`] and
//! prints [`GenerateOutput::render`].

use std::path::PathBuf;

use candle_core::{DType, Device};
use serde::Serialize;

use crate::checkpoint::load_pretrained;
use crate::device_sampling::SamplingPlace;
use crate::error::{ModelError, Result};
use crate::generate::{generate as run_generate, FinishReason, GenerateRequest, GenerationConfig};
use crate::params::ModelOptions;
use crate::sampling::{unapplied_generation_settings, SamplingParams};

/// Arguments of `toolgym generate`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateArgs {
    /// `--model DIR`: a Hugging Face Qwen2 directory.
    pub model: PathBuf,
    /// `--prompt TEXT`: encoded as is (no chat template, no special tokens
    /// added); needs tokenizer.json in the model directory.
    pub prompt: Option<String>,
    /// `--prompt-ids 1,2,3` (see [`parse_prompt_ids`]).
    pub prompt_ids: Option<Vec<u32>>,
    /// `--max-new-tokens N` (default 128).
    pub max_new_tokens: usize,
    /// `--temperature T`. Each sampling setting left `None` is the model's
    /// (see [`GenerateArgs::sampling`]).
    pub temperature: Option<f64>,
    /// `--top-p P`.
    pub top_p: Option<f64>,
    /// `--top-k K` (0 = off).
    pub top_k: Option<usize>,
    /// `--seed S` (default 0).
    pub seed: Option<u64>,
    /// `--greedy`.
    pub greedy: bool,
    /// `--repetition-penalty P` (1 = off; default: the model's, greedy
    /// or not, as in transformers).
    pub repetition_penalty: Option<f64>,
    /// `--dtype f32|bf16|f16` (default f32).
    pub dtype: String,
    /// `--device cpu|cuda|cuda:N` (default cpu).
    pub device: String,
    /// `--sampling-place auto|host|device` (default auto: on the device on
    /// an accelerator; see [`crate::device_sampling`]).
    pub sampling_place: SamplingPlace,
    /// `--json`: print a JSON object instead of the text.
    pub json: bool,
}

impl GenerateArgs {
    /// Defaults for everything but the model directory.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        GenerateArgs {
            model: model.into(),
            prompt: None,
            prompt_ids: None,
            max_new_tokens: 128,
            temperature: None,
            top_p: None,
            top_k: None,
            seed: None,
            greedy: false,
            repetition_penalty: None,
            dtype: "f32".into(),
            device: "cpu".into(),
            sampling_place: SamplingPlace::Auto,
            json: false,
        }
    }

    /// The sampling to use, given the model's own defaults (`model`, from
    /// [`SamplingParams::from_generation_config`]: what transformers'
    /// `generate()` would use): `--greedy` decodes greedily; any of
    /// `--temperature`, `--top-p`, `--top-k` or `--seed` samples, each
    /// setting not given taken from `model`; none of them follows the
    /// model (its `do_sample`). A model that decodes greedily with
    /// `temperature` 0 in its file samples at temperature 1 (transformers'
    /// default) when sampling is asked for without `--temperature`: at 0
    /// it would decode greedily after all. The repetition penalty is
    /// `model`'s unless `--repetition-penalty` is given, in either mode.
    ///
    /// ```
    /// use toolgym_model::{cli::GenerateArgs, SamplingParams};
    /// let qwen = SamplingParams { greedy: false, temperature: 0.7, top_p: 0.8, top_k: 20,
    ///                             repetition_penalty: 1.05 };
    /// let mut args = GenerateArgs::new("dir");
    /// assert_eq!(args.sampling(&qwen), qwen);
    /// args.temperature = Some(1.0);
    /// assert_eq!(args.sampling(&qwen), SamplingParams { temperature: 1.0, ..qwen.clone() });
    /// // A model whose generation_config.json does not sample.
    /// let plain = SamplingParams { greedy: true, ..qwen.clone() };
    /// assert!(!args.sampling(&plain).greedy);
    /// assert!(GenerateArgs::new("dir").sampling(&plain).greedy);
    /// // One whose file says temperature 0 (greedy): --seed alone samples at 1.
    /// let zero = SamplingParams { temperature: 0.0, ..plain.clone() };
    /// let mut seeded = GenerateArgs::new("dir");
    /// seeded.seed = Some(7);
    /// assert_eq!(seeded.sampling(&zero).temperature, 1.0);
    /// assert!(!seeded.sampling(&zero).greedy);
    /// args.repetition_penalty = Some(1.0);
    /// assert_eq!(args.sampling(&qwen).repetition_penalty, 1.0);
    /// ```
    pub fn sampling(&self, model: &SamplingParams) -> SamplingParams {
        let chosen = self.temperature.is_some()
            || self.top_p.is_some()
            || self.top_k.is_some()
            || self.seed.is_some();
        let greedy = self.greedy || (model.greedy && !chosen);
        let model_temperature = if !greedy && model.temperature == 0.0 {
            1.0
        } else {
            model.temperature
        };
        SamplingParams {
            greedy,
            temperature: self.temperature.unwrap_or(model_temperature),
            top_p: self.top_p.unwrap_or(model.top_p),
            top_k: self.top_k.unwrap_or(model.top_k),
            repetition_penalty: self.repetition_penalty.unwrap_or(model.repetition_penalty),
        }
    }
}

/// Result of `toolgym generate`; serialises to
/// `{"token_ids", "logprobs", "text", "finish_reason"}` (`text` omitted when
/// the model directory has no tokenizer).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerateOutput {
    /// Generated ids (eos included when it ended the completion).
    pub token_ids: Vec<u32>,
    /// Temperature-1 log-probability of each generated id.
    pub logprobs: Vec<f32>,
    /// Decoded completion (eos excluded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `stop` or `length`.
    pub finish_reason: FinishReason,
    /// Generated ids the tokenizer has no token for (a model whose
    /// embedding has more rows than the tokenizer has tokens, as Qwen2.5
    /// pads 151,665 to 151,936): they have no text, so `text` lacks them.
    #[serde(skip)]
    pub ids_without_text: Vec<u32>,
    /// The sampling used ([`GenerateArgs::sampling`]).
    #[serde(skip)]
    pub sampling: SamplingParams,
    /// Settings of the model's `generation_config.json` that transformers
    /// would apply and this sampler does not
    /// ([`crate::sampling::unapplied_generation_settings`]).
    #[serde(skip)]
    pub unapplied: Vec<String>,
}

impl GenerateOutput {
    /// The JSON object (one line) when `json`, else the text (or the ids,
    /// comma-separated, when there is no tokenizer).
    pub fn render(&self, json: bool) -> Result<String> {
        if json {
            return serde_json::to_string(self)
                .map_err(|e| ModelError::input(format!("cannot serialise output: {e}")));
        }
        Ok(match &self.text {
            Some(t) => t.clone(),
            None => self
                .token_ids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
        })
    }
}

/// Parses `1,2,3` (spaces allowed) into ids; an empty item (`1,,2`, a
/// trailing comma) is an error, not skipped: it may be an id left out.
pub fn parse_prompt_ids(text: &str) -> Result<Vec<u32>> {
    text.split(',')
        .map(str::trim)
        .enumerate()
        .map(|(i, s)| {
            if s.is_empty() {
                return Err(ModelError::input(format!(
                    "item {} of --prompt-ids `{text}` is empty",
                    i + 1
                )));
            }
            s.parse::<u32>()
                .map_err(|_| ModelError::input(format!("`{s}` in --prompt-ids is not a token id")))
        })
        .collect()
}

/// Parses `f32`, `bf16` or `f16` (also `float32`, `bfloat16`, `float16`).
pub fn parse_dtype(text: &str) -> Result<DType> {
    match text.to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" | "half" => Ok(DType::F16),
        other => Err(ModelError::Unsupported(format!(
            "unknown dtype `{other}` (expected f32, bf16 or f16)"
        ))),
    }
}

/// Reads a device name without opening it: `cpu` (`None`), `cuda` or
/// `gpu` (GPU 0), or `cuda:N`.
pub fn device_ordinal(text: &str) -> Result<Option<usize>> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "cpu" => Ok(None),
        "cuda" | "gpu" => Ok(Some(0)),
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(Some(n)),
            _ => Err(ModelError::Unsupported(format!(
                "unknown device `{text}` (expected cpu, cuda or cuda:N)"
            ))),
        },
    }
}

/// Parses `cpu`, `cuda` or `cuda:N` and opens the device.
pub fn parse_device(text: &str) -> Result<Device> {
    let Some(ordinal) = device_ordinal(text)? else {
        return Ok(Device::Cpu);
    };
    Device::new_cuda(ordinal).map_err(|e| {
        ModelError::Unsupported(format!(
            "cannot open cuda:{ordinal} ({e}); build with `--features cuda` on a machine with a GPU"
        ))
    })
}

/// Runs `toolgym generate`.
pub fn generate(args: &GenerateArgs) -> Result<GenerateOutput> {
    // What the flags alone get wrong is said before the model loads (a
    // large one takes minutes): their values over neutral ones.
    args.sampling(&SamplingParams::default()).validate()?;
    enum Prompt<'a> {
        Text(&'a str),
        Ids(&'a [u32]),
    }
    let prompt = match (&args.prompt, &args.prompt_ids) {
        (Some(_), Some(_)) => {
            return Err(ModelError::input(
                "give either --prompt or --prompt-ids, not both",
            ))
        }
        (None, None) => return Err(ModelError::input("give --prompt TEXT or --prompt-ids IDS")),
        (Some(text), None) => Prompt::Text(text),
        (None, Some(ids)) => Prompt::Ids(ids),
    };
    let opts = ModelOptions {
        dtype: parse_dtype(&args.dtype)?,
        device: parse_device(&args.device)?,
        trainable: false,
    };
    let pre = load_pretrained(&args.model, &opts)?;
    let prompt_ids = match prompt {
        Prompt::Ids(ids) => ids.to_vec(),
        Prompt::Text(text) => match &pre.tokenizer {
            Some(tk) => tk.encode(text)?,
            None => {
                return Err(ModelError::MissingFile {
                    path: args.model.join("tokenizer.json"),
                    what: "the tokenizer, needed to encode --prompt (or pass --prompt-ids)".into(),
                })
            }
        },
    };
    let gen = pre.generation_config.as_ref();
    // `--greedy` reads nothing of the file's sampling (transformers
    // greedy-decodes a file whose sampling values it would refuse), but
    // its repetition penalty, which transformers applies when greedy too.
    let gen_path = args.model.join("generation_config.json");
    let model_sampling = if args.greedy {
        let repetition_penalty = match args.repetition_penalty {
            Some(_) => 1.0, // the flag's, below
            None => SamplingParams::repetition_penalty_of(gen, &gen_path)?,
        };
        SamplingParams {
            repetition_penalty,
            ..SamplingParams::greedy()
        }
    } else {
        SamplingParams::from_generation_config(gen, &gen_path)?
    };
    let sampling = args.sampling(&model_sampling);
    let unapplied = unapplied_generation_settings(gen, !sampling.is_greedy());
    let config = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        sampling: sampling.clone(),
        eos_token_ids: pre.eos_token_ids.clone(),
        sampling_place: args.sampling_place,
        ..GenerationConfig::default()
    };
    // Said in the command's terms, before the engine's per-request ones.
    let what = if args.prompt.is_some() {
        "--prompt"
    } else {
        "--prompt-ids"
    };
    if prompt_ids.is_empty() {
        return Err(ModelError::input(format!(
            "{what} gives no token: nothing to continue from"
        )));
    }
    let max_pos = pre.model.config().max_position_embeddings;
    if prompt_ids.len().saturating_add(config.max_new_tokens) > max_pos {
        let fix = match prompt_ids.len() >= max_pos {
            true => "shorten the prompt",
            false => "lower --max-new-tokens",
        };
        return Err(ModelError::input(format!(
            "{what} is {} tokens and --max-new-tokens {}: together over the model's context of \
             {max_pos} tokens (max_position_embeddings); {fix}",
            prompt_ids.len(),
            config.max_new_tokens
        )));
    }
    let request = GenerateRequest::new(prompt_ids, 1, args.seed.unwrap_or(0));
    let mut out = run_generate(&pre.model, &[request], &config, pre.tokenizer.as_ref()).map_err(
        |e| match e {
            ModelError::NonFiniteLogits { .. } => {
                ModelError::input(format!("{}: {e}", args.model.display()))
            }
            other => other,
        },
    )?;
    let c = out
        .pop()
        .and_then(|mut v| v.pop())
        .ok_or_else(|| ModelError::input("generation returned nothing"))?;
    let ids_without_text = match &pre.tokenizer {
        Some(tk) => c
            .token_ids
            .iter()
            .copied()
            .filter(|&id| tk.id_to_token(id).is_none())
            .collect(),
        None => Vec::new(),
    };
    Ok(GenerateOutput {
        token_ids: c.token_ids,
        logprobs: c.logprobs,
        text: c.text,
        finish_reason: c.finish_reason,
        ids_without_text,
        sampling,
        unapplied,
    })
}
