//! Tokenizer wrapper: tokenizer.json plus the special-token conventions of
//! tokenizer_config.json.

use std::path::Path;

use serde_json::Value;

use crate::error::{ModelError, Result};

/// ChatML end-of-turn token: the end-of-sequence token of chat models.
pub const IM_END: &str = "<|im_end|>";
/// ChatML start-of-turn token.
pub const IM_START: &str = "<|im_start|>";
/// Qwen2's document separator, used as padding.
pub const ENDOFTEXT: &str = "<|endoftext|>";

/// A Hugging Face `tokenizers` tokenizer with its eos/pad conventions.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    eos_token_ids: Vec<u32>,
    pad_token_id: Option<u32>,
    /// tokenizer_config.json as read (written back on save).
    config: Option<Value>,
    /// `chat_template.jinja` as read next to tokenizer.json (where
    /// transformers 5 writes the chat template), written back on save.
    chat_template_file: Option<String>,
    /// [`Tokenizer::max_bytes_per_token`], worked out on first use.
    bytes_per_token: std::sync::OnceLock<Option<usize>>,
    /// The truncation and padding tokenizer.json carried: not applied
    /// here, written back on save (transformers takes them as defaults:
    /// `padding_side`, `max_length`).
    file_settings: (
        Option<tokenizers::TruncationParams>,
        Option<tokenizers::PaddingParams>,
    ),
}

/// The file transformers 5 keeps a tokenizer's chat template in.
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

/// A panic's message, as far as its payload is text.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic")
}

fn tok_err(context: impl Into<String>, e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer {
        context: context.into(),
        message: e.to_string(),
    }
}

/// Which component of a tokenizer.json the `tokenizers` library cannot
/// read, said with its `type` (one of a newer library, or misspelt):
/// the library's own error is serde's "data did not match any variant of
/// untagged enum ...", which names neither. `None` when the file is no
/// JSON object, or every component reads on its own (the fault is
/// elsewhere: the library's message is then the one to give).
fn unreadable_component(path: &Path) -> Option<String> {
    use serde::de::DeserializeOwned;
    let json: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    /// Why `v` does not read as `T`, with the `type` of the first part
    /// of it that does not (a `Sequence` looks into its members).
    fn fault<T: DeserializeOwned>(v: &Value, members: &str) -> Option<(String, String)> {
        let err = T::deserialize(v).err()?;
        let kind = v.get("type").and_then(Value::as_str);
        if kind == Some("Sequence") {
            let inner = v.get(members).and_then(Value::as_array);
            for (i, m) in inner.into_iter().flatten().enumerate() {
                if let Some((at, why)) = fault::<T>(m, members) {
                    let at = if at.is_empty() { at } else { format!(".{at}") };
                    return Some((format!("{members}[{i}]{at}"), why));
                }
            }
        }
        let err = err.to_string();
        // A type the library does not know, or one it knows with contents
        // it refuses (a merge of tokens not in the vocabulary, a bad
        // pattern): the library's own message says which.
        let unknown = err.contains("did not match any variant") || err.contains("unknown variant");
        let why = match (kind, unknown) {
            (Some(kind), true) => format!(
                "type {kind:?} is not one this build's tokenizers library knows (a component \
                 of a newer version, or a misspelt one): {err}"
            ),
            (Some(kind), false) => {
                format!("its type {kind:?} is known, its contents are not valid: {err}")
            }
            (None, _) => format!("it has no type the library recognises: {err}"),
        };
        Some((String::new(), why))
    }
    use tokenizers::{decoders, models, normalizers, pre_tokenizers, processors};
    let check = |key: &str, v: &Value| match key {
        "normalizer" => fault::<normalizers::NormalizerWrapper>(v, "normalizers"),
        "pre_tokenizer" => fault::<pre_tokenizers::PreTokenizerWrapper>(v, "pretokenizers"),
        "model" => fault::<models::ModelWrapper>(v, "models"),
        "decoder" => fault::<decoders::DecoderWrapper>(v, "decoders"),
        _ => fault::<processors::PostProcessorWrapper>(v, "processors"),
    };
    // The model last: the largest, and the library's reading of some
    // malformed ones panics (caught by the caller).
    let parts = [
        "normalizer",
        "pre_tokenizer",
        "decoder",
        "post_processor",
        "model",
    ];
    parts.iter().find_map(|key| {
        let v = json.get(key).filter(|v| !v.is_null())?;
        let (at, why) = check(key, v)?;
        let at = if at.is_empty() {
            at
        } else {
            format!(" ({at})")
        };
        Some(format!("its {key}{at} cannot be read: {why}"))
    })
}

/// See [`Tokenizer::max_bytes_per_token`]: read from the tokenizer's own
/// JSON, whose layout is the `tokenizers` format's.
fn bytes_per_token_bound(inner: &tokenizers::Tokenizer) -> Option<usize> {
    let json: Value = serde_json::from_str(&inner.to_string(false).ok()?).ok()?;
    let kind = |v: &Value| v.get("type").and_then(Value::as_str).map(str::to_owned);
    let nfc = |v: &Value| kind(v).as_deref() == Some("NFC");
    let normalizer = &json["normalizer"];
    let shrink = match kind(normalizer).as_deref() {
        None if normalizer.is_null() => 1,
        Some("NFC") => 3,
        Some("Sequence") => {
            let all = normalizer["normalizers"].as_array()?;
            match all.iter().all(nfc) {
                true if all.is_empty() => 1,
                true => 3,
                false => return None,
            }
        }
        _ => return None,
    };
    let pre = &json["pre_tokenizer"];
    let steps = match kind(pre).as_deref() {
        Some("Sequence") => pre["pretokenizers"].as_array()?.clone(),
        _ => vec![pre.clone()],
    };
    // Splits that keep every byte, and a byte-level step.
    let keeps = |v: &Value| match kind(v).as_deref() {
        Some("ByteLevel") => true,
        Some("Split") => v["behavior"].as_str() != Some("Removed"),
        _ => false,
    };
    if !steps.iter().all(keeps)
        || !steps
            .iter()
            .any(|v| kind(v).as_deref() == Some("ByteLevel"))
    {
        return None;
    }
    let model = &json["model"];
    if kind(model).as_deref() != Some("BPE") {
        return None;
    }
    // A word's symbols carry a prefix or suffix in such a vocabulary
    // (`##x`, `x</w>`): a symbol missing in that form is dropped.
    let affix = |key: &str| model[key].as_str().is_some_and(|a| !a.is_empty());
    if affix("continuing_subword_prefix") || affix("end_of_word_suffix") {
        return None;
    }
    let vocab = model["vocab"].as_object()?;
    let alphabet = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet();
    if !alphabet
        .iter()
        .all(|c| vocab.contains_key(c.encode_utf8(&mut [0; 4]) as &str))
    {
        return None;
    }
    // A vocabulary token's symbols are bytes; an added token is matched
    // as its text.
    let symbols = vocab.keys().map(|k| k.chars().count()).max()?;
    let added_tokens = json["added_tokens"].as_array().cloned().unwrap_or_default();
    // One that strips the whitespace beside it stands for any length of it.
    let strips = |t: &Value| t["lstrip"] == true || t["rstrip"] == true;
    if added_tokens.iter().any(strips) {
        return None;
    }
    let added = added_tokens
        .iter()
        .filter_map(|t| t["content"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0);
    Some(shrink * symbols.max(added).max(1))
}

/// `"<tok>"` or `{"content": "<tok>", ...}` in tokenizer_config.json.
fn token_content(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("content").and_then(Value::as_str),
        _ => None,
    }
}

impl Tokenizer {
    /// Wraps a tokenizer; eos/pad follow `tokenizer_config` when given
    /// (`eos_token`, `pad_token`), else the Qwen2 conventions: eos =
    /// `<|im_end|>` (or `<|endoftext|>` when the vocabulary has no ChatML
    /// tokens), pad = `<|endoftext|>`.
    ///
    /// # Errors
    /// An `eos_token` or `pad_token` the config names that the vocabulary
    /// lacks ([`ModelError::InvalidConfig`]): falling back to another token
    /// would stop generation elsewhere, or pad with another id. A config
    /// that is not a JSON object.
    pub fn new(inner: tokenizers::Tokenizer, tokenizer_config: Option<Value>) -> Result<Self> {
        Self::checked(inner, tokenizer_config, None, "the vocabulary")
    }

    /// [`Tokenizer::new`], naming `location` (the config's file) and
    /// `vocabulary` (the tokenizer's) in its error.
    fn checked(
        mut inner: tokenizers::Tokenizer,
        tokenizer_config: Option<Value>,
        location: Option<std::path::PathBuf>,
        vocabulary: &str,
    ) -> Result<Self> {
        if tokenizer_config.as_ref().is_some_and(|c| !c.is_object()) {
            // Read as one without keys, its eos and pad would be lost.
            return Err(ModelError::InvalidConfig {
                location,
                reason: "the tokenizer config is not a JSON object".into(),
            });
        }
        // A tokenizer.json may carry the truncation or padding its last
        // user set (transformers saves them); transformers applies them
        // only when a call asks, so encoding here never cuts or pads (a
        // leftover `max_length` cut every prompt, the question and the
        // assistant header included, silently).
        let file_settings = (
            inner.get_truncation().cloned(),
            inner.get_padding().cloned(),
        );
        inner
            .with_truncation(None)
            .map_err(|e| tok_err("turning truncation off", e))?;
        inner.with_padding(None);
        let mut ids = [None, None];
        for (id, key) in ids.iter_mut().zip(["eos_token", "pad_token"]) {
            let given = tokenizer_config.as_ref().and_then(|c| c.get(key));
            let token = match given {
                None | Some(Value::Null) => None,
                Some(v) => Some(token_content(v).ok_or_else(|| ModelError::InvalidConfig {
                    location: location.clone(),
                    // Taken as absent, the Qwen defaults would stand in.
                    reason: format!(
                        "{key} is neither a token's text nor {{\"content\": text}} (got {v})"
                    ),
                })?),
            };
            if let Some(token) = token {
                *id = Some(
                    inner
                        .token_to_id(token)
                        .ok_or_else(|| ModelError::InvalidConfig {
                            location: location.clone(),
                            reason: format!("{key} {token:?} is not a token of {vocabulary}"),
                        })?,
                );
            }
        }
        let [eos, pad] = ids;
        let eos = eos
            .or_else(|| inner.token_to_id(IM_END))
            .or_else(|| inner.token_to_id(ENDOFTEXT));
        let pad = pad.or_else(|| inner.token_to_id(ENDOFTEXT));
        Ok(Tokenizer {
            eos_token_ids: eos.into_iter().collect(),
            pad_token_id: pad,
            inner,
            config: tokenizer_config,
            chat_template_file: None,
            bytes_per_token: std::sync::OnceLock::new(),
            file_settings,
        })
    }

    /// The most bytes of text one token of this tokenizer can stand for,
    /// where its pipeline bounds that: a byte-level BPE (every byte one
    /// symbol of the vocabulary, none dropped), no normaliser or NFC
    /// (which shrinks text at most threefold: Hangul jamo, the Kelvin
    /// sign), pre-tokenizers that drop nothing. Then text of `n` bytes
    /// encodes to at least `n / max_bytes_per_token` tokens, known
    /// without encoding it (a rollout refuses a tool result of megabytes
    /// that cannot fit before tokenising it). `None` for other
    /// pipelines (an unknown token or a dropped character can stand for
    /// any length).
    pub fn max_bytes_per_token(&self) -> Option<usize> {
        *self
            .bytes_per_token
            .get_or_init(|| bytes_per_token_bound(&self.inner))
    }

    /// At least how many tokens `text` encodes to, without encoding it
    /// (0 where [`Tokenizer::max_bytes_per_token`] is `None`).
    pub fn min_tokens(&self, text: &str) -> usize {
        self.max_bytes_per_token()
            .map_or(0, |most| text.len().div_ceil(most))
    }

    /// The chat template read from `chat_template.jinja` beside
    /// tokenizer.json (transformers 5's home for it), if there was one.
    pub fn chat_template_file(&self) -> Option<&str> {
        self.chat_template_file.as_deref()
    }

    /// Sets (or, with `None`, drops) the `chat_template.jinja` that
    /// [`Tokenizer::save`] writes.
    pub fn set_chat_template_file(&mut self, template: Option<String>) {
        self.chat_template_file = template;
    }

    /// Loads `tokenizer.json` (and `tokenizer_config.json` and
    /// `chat_template.jinja` next to it, when present; [`Tokenizer::save`]
    /// writes them back).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                path: path.to_path_buf(),
                what: "the tokenizer (tokenizer.json)".into(),
            });
        }
        // The library panics on some malformed files (a word prefix its
        // merges lack overflows a length): an error naming the file.
        let load = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_file(path));
        let inner = match load {
            Ok(read) => read.map_err(|e| {
                let component = std::panic::catch_unwind(|| unreadable_component(path));
                let why = component.ok().flatten().unwrap_or_else(|| e.to_string());
                tok_err(path.display().to_string(), why)
            })?,
            Err(panic) => {
                return Err(tok_err(
                    path.display().to_string(),
                    format!(
                        "the tokenizers library could not read it ({})",
                        panic_text(&*panic)
                    ),
                ));
            }
        };
        let config_path = path.with_file_name("tokenizer_config.json");
        let config = if config_path.is_file() {
            let text = std::fs::read_to_string(&config_path)
                .map_err(|e| ModelError::io("read", &config_path, e))?;
            Some(
                serde_json::from_str(&text).map_err(|source| ModelError::Json {
                    path: config_path.clone(),
                    source,
                })?,
            )
        } else {
            None
        };
        let template_path = path.with_file_name(CHAT_TEMPLATE_FILE);
        let chat_template_file = match template_path.is_file() {
            true => Some(
                std::fs::read_to_string(&template_path)
                    .map_err(|e| ModelError::io("read", &template_path, e))?,
            ),
            false => None,
        };
        Ok(Self {
            chat_template_file,
            ..Self::checked(
                inner,
                config,
                Some(config_path),
                &path.display().to_string(),
            )?
        })
    }

    /// The largest id of the vocabulary proper (added tokens left out):
    /// ordinary text encodes to ids up to it.
    pub fn max_regular_id(&self) -> Option<u32> {
        self.inner.get_vocab(false).into_values().max()
    }

    /// Encodes text without adding any special token (the chat template, if
    /// any, is part of the text).
    ///
    /// # Errors
    /// What the library refuses, and what makes it panic: Qwen2's split
    /// pattern backtracks once per character of a whitespace run with no
    /// newline, and past about ten million the regex library panics
    /// ("retry-limit-in-match over"), as transformers' Python tokenizer
    /// does. That is an error here, so text from an env fails its episode,
    /// not the run.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encode = || self.inner.encode(text, false);
        let enc = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(encode)) {
            Ok(enc) => enc.map_err(|e| tok_err("encode", e))?,
            Err(panic) => {
                return Err(tok_err(
                    "encode",
                    format!(
                        "the tokenizers library failed on a text of {} bytes ({})",
                        text.len(),
                        panic_text(&*panic)
                    ),
                ))
            }
        };
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes ids; special tokens are kept unless `skip_special_tokens`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| tok_err("decode", e))
    }

    /// Id of a token string (added and special tokens included).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// End-of-sequence ids (usually `<|im_end|>`).
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_token_ids
    }

    /// Padding id (usually `<|endoftext|>`).
    pub fn pad_token_id(&self) -> Option<u32> {
        self.pad_token_id
    }

    /// Overrides the end-of-sequence ids.
    pub fn set_eos_token_ids(&mut self, ids: Vec<u32>) {
        self.eos_token_ids = ids;
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// tokenizer_config.json as read, if any.
    pub fn tokenizer_config(&self) -> Option<&Value> {
        self.config.as_ref()
    }

    /// Serialises tokenizer.json.
    pub fn to_json_string(&self) -> Result<String> {
        let text = self
            .inner
            .to_string(false)
            .map_err(|e| tok_err("serialise tokenizer.json", e))?;
        let (None, None) = &self.file_settings else {
            // The file's own settings, as read (never applied here), put
            // back as JSON: the library's setter checks them, and a file
            // whose settings it would refuse loaded all the same.
            let json_err = |e: serde_json::Error| tok_err("serialise tokenizer.json", e);
            let mut json: Value = serde_json::from_str(&text).map_err(json_err)?;
            json["truncation"] = serde_json::to_value(&self.file_settings.0).map_err(json_err)?;
            json["padding"] = serde_json::to_value(&self.file_settings.1).map_err(json_err)?;
            return serde_json::to_string(&json).map_err(json_err);
        };
        Ok(text)
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` into `dir` (the
    /// config read at load time, else a minimal one naming eos/pad and the
    /// added tokens so that transformers' `AutoTokenizer` can load the dir).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let tok_path = dir.join("tokenizer.json");
        std::fs::write(&tok_path, self.to_json_string()?)
            .map_err(|e| ModelError::io("write", &tok_path, e))?;
        let config = match &self.config {
            Some(c) => c.clone(),
            None => self.default_config(),
        };
        let cfg_path = dir.join("tokenizer_config.json");
        let text = serde_json::to_string_pretty(&config).map_err(|source| ModelError::Json {
            path: cfg_path.clone(),
            source,
        })?;
        std::fs::write(&cfg_path, text).map_err(|e| ModelError::io("write", &cfg_path, e))?;
        if let Some(template) = &self.chat_template_file {
            let path = dir.join(CHAT_TEMPLATE_FILE);
            std::fs::write(&path, template).map_err(|e| ModelError::io("write", &path, e))?;
        }
        Ok(())
    }

    fn default_config(&self) -> Value {
        let mut added = serde_json::Map::new();
        for (id, tok) in self.inner.get_added_tokens_decoder() {
            {
                added.insert(
                    id.to_string(),
                    serde_json::json!({
                        "content": tok.content,
                        "lstrip": tok.lstrip,
                        "rstrip": tok.rstrip,
                        "normalized": tok.normalized,
                        "single_word": tok.single_word,
                        "special": tok.special,
                    }),
                );
            }
        }
        let name = |id: Option<u32>| -> Value {
            id.and_then(|i| self.inner.id_to_token(i))
                .map(Value::String)
                .unwrap_or(Value::Null)
        };
        serde_json::json!({
            "tokenizer_class": "Qwen2Tokenizer",
            "added_tokens_decoder": added,
            "eos_token": name(self.eos_token_ids.first().copied()),
            "pad_token": name(self.pad_token_id),
            "bos_token": Value::Null,
            "clean_up_tokenization_spaces": false,
            "model_max_length": 32768,
            "chat_template": CHATML_TEMPLATE,
        })
    }
}

/// A minimal ChatML chat template (Jinja) written into generated
/// tokenizer_config.json files.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
