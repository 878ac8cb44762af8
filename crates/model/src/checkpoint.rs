//! Hugging Face model directories: loading and saving.
//!
//! A directory holds `config.json`, the weights (`model.safetensors`, or
//! shards listed in `model.safetensors.index.json`), and optionally
//! `tokenizer.json`, `tokenizer_config.json` and `generation_config.json`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::config::Qwen2Config;
use crate::error::{ModelError, Result};
use crate::params::{validate_tensors, ModelOptions};
use crate::qwen2::Qwen2ForCausalLM;
use crate::tokenizer::Tokenizer;

/// Weights file of an unsharded checkpoint.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Index of a sharded checkpoint.
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";

/// A model directory loaded with everything generation needs.
#[derive(Debug, Clone)]
pub struct Pretrained {
    /// The model.
    pub model: Qwen2ForCausalLM,
    /// tokenizer.json (+ tokenizer_config.json), when present.
    pub tokenizer: Option<Tokenizer>,
    /// generation_config.json as read, when present.
    pub generation_config: Option<Value>,
    /// Union of the eos ids of generation_config.json, the tokenizer and
    /// config.json (in that order, without duplicates).
    pub eos_token_ids: Vec<u32>,
    /// Padding id: generation_config / tokenizer / 0.
    pub pad_token_id: u32,
}

/// A JSON object file of a model directory (a list or a string there would
/// read as an object without the keys, their settings lost in silence).
fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io("read", path, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    match value {
        Value::Object(_) => Ok(value),
        _ => Err(ModelError::InvalidConfig {
            location: Some(path.to_path_buf()),
            reason: "not a JSON object".into(),
        }),
    }
}

/// The token id(s) under `key` of generation_config.json: absent or null is
/// none; anything else must be ids of the model's vocabulary, or the file is
/// named as wrong (an eos id the model cannot emit would never stop it).
fn generation_ids(gen: Option<&Value>, key: &str, path: &Path, vocab: usize) -> Result<Vec<u32>> {
    let bad = |what: &Value| ModelError::InvalidConfig {
        location: Some(path.to_path_buf()),
        reason: format!("{key} {what} is not a token id of this model (vocab_size {vocab})"),
    };
    let id = |v: &Value| {
        v.as_u64()
            .filter(|&x| x < vocab as u64)
            .map(|x| x as u32)
            .ok_or_else(|| bad(v))
    };
    match gen.and_then(|g| g.get(key)) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a.iter().map(id).collect(),
        Some(v) => Ok(vec![id(v)?]),
    }
}

fn st_dtype(dtype: safetensors::Dtype) -> Option<DType> {
    Some(match dtype {
        safetensors::Dtype::F32 => DType::F32,
        safetensors::Dtype::F16 => DType::F16,
        safetensors::Dtype::BF16 => DType::BF16,
        safetensors::Dtype::F64 => DType::F64,
        _ => return None,
    })
}

/// Reads every tensor of one safetensors file onto the CPU, in its stored dtype.
///
/// The file is mapped, not read into a buffer first: loading holds the
/// tensors and the page cache's copy of the file (which the kernel can
/// drop), not the file twice (its bytes in a buffer beside the tensors
/// made from them: 30 GB of memory for a 15 GB model). A file
/// that cannot be mapped (a pipe, an empty file) is read whole instead.
/// The file must not be cut short while it is read (the weights toolgym
/// writes are renamed into place whole, never rewritten).
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ModelError::MissingFile {
                path: path.to_path_buf(),
                what: "a weights file".into(),
            }
        } else {
            ModelError::io("read", path, e)
        }
    })?;
    let mapped = match file.metadata() {
        Ok(m) if m.is_file() && m.len() > 0 => {
            // SAFETY: the map is read only while this function runs, and
            // only through the slice; the file is not written meanwhile
            // (see above: a file cut short under the map would fault).
            #[allow(unsafe_code)]
            unsafe { memmap2::Mmap::map(&file) }.ok()
        }
        _ => None,
    };
    match mapped {
        Some(map) => safetensors_from_bytes(&map, path),
        None => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut &file, &mut bytes)
                .map_err(|e| ModelError::io("read", path, e))?;
            safetensors_from_bytes(&bytes, path)
        }
    }
}

/// [`read_safetensors`] of a file's bytes already in memory (`path` names
/// the file in errors): a header that does not describe the bytes (a file
/// cut short, a size or offset past its end, an element count that
/// overflows) is an error naming the file, as is an unsupported dtype.
/// Tensor data need not be aligned in `bytes`.
pub fn safetensors_from_bytes(bytes: &[u8], path: &Path) -> Result<HashMap<String, Tensor>> {
    let bad = |reason: String| ModelError::Safetensors {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.starts_with(b"version https://git-lfs") {
        return Err(bad(
            "a Git LFS pointer, not the weights: the file was never downloaded (`git lfs pull` \
             in the model's repository, or download it with huggingface-cli)"
                .into(),
        ));
    }
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let dtype = st_dtype(view.dtype()).ok_or_else(|| {
            bad(format!(
                "tensor `{name}` has unsupported dtype {:?}",
                view.dtype()
            ))
        })?;
        let t = Tensor::from_raw_buffer(view.data(), dtype, view.shape(), &Device::Cpu)
            .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Reads the weights of a model directory (single file or shards).
pub fn read_weights(dir: &Path) -> Result<HashMap<String, Tensor>> {
    let single = dir.join(WEIGHTS_FILE);
    let index = dir.join(WEIGHTS_INDEX_FILE);
    if single.is_file() {
        return read_safetensors(&single);
    }
    if !index.is_file() {
        return Err(ModelError::MissingFile {
            path: single,
            what: format!(
                "the model weights ({WEIGHTS_FILE} or {WEIGHTS_INDEX_FILE}; pytorch .bin checkpoints are not supported)"
            ),
        });
    }
    let idx = read_json(&index)?;
    let map = idx
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| ModelError::Safetensors {
            path: index.clone(),
            reason: "no `weight_map` object".into(),
        })?;
    let mut files: BTreeSet<&str> = BTreeSet::new();
    for (tensor, file) in map {
        let Some(file) = file.as_str() else {
            return Err(ModelError::Safetensors {
                path: index.clone(),
                reason: format!("weight_map[{tensor:?}] is not a file name (got {file})"),
            });
        };
        files.insert(file);
    }
    let mut out = HashMap::new();
    for f in files {
        if f.contains("..") || Path::new(f).is_absolute() {
            return Err(ModelError::Safetensors {
                path: index.clone(),
                reason: format!("shard path `{f}` leaves the model directory"),
            });
        }
        let shard = dir.join(f);
        for (name, tensor) in read_safetensors(&shard)? {
            // Each tensor once, where the index says (one it does not list,
            // as transformers allows, if in one shard only): a tensor in two
            // shards would be whichever was read last.
            let listed = map.get(&name);
            if listed.is_some_and(|l| l.as_str() != Some(f)) || out.contains_key(&name) {
                return Err(ModelError::Safetensors {
                    path: shard,
                    reason: format!(
                        "holds tensor `{name}`, which {} puts {}",
                        index.display(),
                        match listed {
                            Some(other) => format!("in {other}"),
                            None => "in no shard, and another shard holds it too".to_string(),
                        }
                    ),
                });
            }
            out.insert(name, tensor);
        }
    }
    if let Some(name) = map.keys().find(|name| !out.contains_key(*name)) {
        return Err(ModelError::Safetensors {
            path: dir.join(map[name].as_str().unwrap_or_default()),
            reason: format!(
                "has no tensor `{name}`, which {} puts there",
                index.display()
            ),
        });
    }
    Ok(out)
}

/// The error for a file given where a model directory belongs. A small file
/// naming a directory beside it (a checkpoint's `latest`) gets that
/// directory as a hint.
fn not_a_directory(path: &Path) -> ModelError {
    let named = std::fs::metadata(path)
        .ok()
        .filter(|m| m.len() <= 256)
        .and_then(|_| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_string())
        .filter(|name| !name.is_empty() && !name.contains(['/', '\\']))
        .and_then(|name| Some(path.parent()?.join(name)))
        .filter(|dir| dir.join("config.json").is_file());
    let hint = match named {
        Some(dir) => format!("; it names {}, the model directory to give", dir.display()),
        None => String::new(),
    };
    ModelError::InvalidInput(format!(
        "{} is a file, not a model directory (one holding config.json and the weights){hint}",
        path.display()
    ))
}

/// Refuses weights that config.json leaves unused, as loading them would
/// silently run (and, once trained and saved, keep) another model: layers
/// past `num_hidden_layers`, an `lm_head.weight` that differs from the
/// embedding it is tied to, or tensors of another architecture. Rotary
/// `inv_freq` buffers (older exports) and a tied head equal to the
/// embedding are not weights and pass.
fn check_all_used(
    config: &Qwen2Config,
    tensors: &HashMap<String, Tensor>,
    location: &str,
) -> Result<()> {
    let expected: std::collections::HashSet<String> = crate::qwen2::expected_tensors(config)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut unused: Vec<&str> = tensors
        .keys()
        .map(String::as_str)
        .filter(|name| !expected.contains(*name) && !name.ends_with(".rotary_emb.inv_freq"))
        .collect();
    if config.tie_word_embeddings {
        if let (Some(head), Some(embed)) = (
            tensors.get("lm_head.weight"),
            tensors.get("model.embed_tokens.weight"),
        ) {
            let same = head.dims() == embed.dims()
                && head.dtype() == embed.dtype()
                && head.eq(embed)?.flatten_all()?.min(0)?.to_scalar::<u8>()? == 1;
            if same {
                unused.retain(|name| *name != "lm_head.weight");
            }
        }
    }
    if unused.is_empty() {
        return Ok(());
    }
    unused.sort_unstable();
    let layers = unused
        .iter()
        .filter_map(|name| {
            name.strip_prefix("model.layers.")?
                .split('.')
                .next()?
                .parse()
                .ok()
        })
        .max()
        .map(|top: usize| top + 1);
    let hint = if unused.contains(&"lm_head.weight") && config.tie_word_embeddings {
        " (config.json ties lm_head to the embedding, tie_word_embeddings = true, but the \
         weights hold an lm_head.weight that differs from it)"
            .to_string()
    } else if let Some(n) = layers.filter(|&n| n > config.num_hidden_layers) {
        format!(
            " (config.json's num_hidden_layers is {} but the weights hold {n} layers)",
            config.num_hidden_layers
        )
    } else {
        String::new()
    };
    let shown: Vec<String> = unused.iter().take(3).map(|n| format!("`{n}`")).collect();
    let more = match unused.len() {
        n if n > 3 => format!(" and {} more", n - 3),
        _ => String::new(),
    };
    Err(ModelError::InvalidConfig {
        location: Some(Path::new(location).join("config.json")),
        reason: format!(
            "{} tensor(s) of the weights would be left unused: {}{more}{hint}",
            unused.len(),
            shown.join(", ")
        ),
    })
}

impl Qwen2ForCausalLM {
    /// Loads config.json and the weights of a HF model directory.
    pub fn load(dir: impl AsRef<Path>, opts: &ModelOptions) -> Result<Self> {
        let dir = dir.as_ref();
        if dir.is_file() {
            return Err(not_a_directory(dir));
        }
        if !dir.is_dir() {
            return Err(ModelError::MissingFile {
                path: dir.to_path_buf(),
                what: "the model directory".into(),
            });
        }
        let config = Qwen2Config::from_file(dir.join("config.json"))?;
        let tensors = read_weights(dir)?;
        let location = dir.display().to_string();
        validate_tensors(&config, &tensors, &location)?;
        check_all_used(&config, &tensors, &location)?;
        Self::from_tensors(&config, tensors, opts)
    }

    /// Writes config.json and model.safetensors (HF layout, weights in the
    /// model dtype, tied head omitted) into `dir`, creating it if needed.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io("create", dir, e))?;
        let mut config = self.config.clone();
        let dtype_name = match self.dtype() {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            _ => "float32",
        };
        let keys: Vec<&str> = ["torch_dtype", "dtype"]
            .into_iter()
            .filter(|k| config.extra.contains_key(*k))
            .collect();
        for k in if keys.is_empty() {
            vec!["torch_dtype"]
        } else {
            keys
        } {
            config
                .extra
                .insert(k.to_string(), Value::String(dtype_name.into()));
        }
        let cfg_path = dir.join("config.json");
        std::fs::write(&cfg_path, config.to_json_string()?)
            .map_err(|e| ModelError::io("write", &cfg_path, e))?;
        write_safetensors(
            &dir.join(WEIGHTS_FILE),
            self.params.iter().map(|(n, t)| (n, t)),
        )
    }
}

/// Writes `tensors` (on any device, in any layout) to a safetensors file
/// at `path` with Hugging Face's `format: pt` metadata, with the
/// permissions [`as_created`] gives. A failed write (a full disk) is an
/// I/O error naming the file, not an invalid-file error.
pub fn write_safetensors<'a>(
    path: &Path,
    tensors: impl IntoIterator<Item = (&'a String, &'a Tensor)>,
) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| Ok((n.clone(), t.detach().to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(tensors, Some(meta), path).map_err(|e| match e {
        safetensors::SafeTensorError::IoError(io) => ModelError::io("write", path, io),
        other => ModelError::Safetensors {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })?;
    as_created(path);
    Ok(())
}

/// Gives `path` the permissions a file made by [`std::fs::File::create`]
/// in its folder gets (the process's umask applied, 0644 under the usual
/// 022), where its writer went through a private temporary file:
/// `safetensors` writes through `tempfile`, whose files are 0600, so
/// trained weights could not be read by another user (a server, a team
/// folder). Best effort: where permissions cannot be read or set (some
/// network or FUSE file systems), the file stays as written. Nothing to
/// do off Unix.
pub fn as_created(path: &Path) {
    #[cfg(unix)]
    {
        let probe = path.with_extension(format!("permissions-probe-{}", std::process::id()));
        let wanted = std::fs::File::create(&probe).and_then(|f| f.metadata());
        let _ = std::fs::remove_file(&probe);
        let now = std::fs::metadata(path).map(|m| m.permissions());
        if let (Ok(wanted), Ok(now)) = (wanted, now) {
            if wanted.permissions() != now {
                let _ = std::fs::set_permissions(path, wanted.permissions());
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Loads a model directory with its tokenizer and generation settings.
pub fn load_pretrained(dir: impl AsRef<Path>, opts: &ModelOptions) -> Result<Pretrained> {
    let dir = dir.as_ref();
    let model = Qwen2ForCausalLM::load(dir, opts)?;
    let vocab = model.config().vocab_size;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = if tok_path.is_file() {
        let t = Tokenizer::from_file(&tok_path)?;
        // Text would encode to ids past the embedding rows: found at the
        // first prompt otherwise, naming no file.
        if let Some(id) = t.max_regular_id().filter(|&id| id as usize >= vocab) {
            return Err(ModelError::InvalidConfig {
                location: Some(tok_path),
                reason: format!(
                    "token id {id} is past the model's vocab_size {vocab} ({}): the tokenizer \
                     is not this model's",
                    dir.join("config.json").display()
                ),
            });
        }
        Some(t)
    } else {
        None
    };
    let gen_path = dir.join("generation_config.json");
    let generation_config = if gen_path.is_file() {
        Some(read_json(&gen_path)?)
    } else {
        None
    };
    let gen = generation_config.as_ref();
    let mut eos = generation_ids(gen, "eos_token_id", &gen_path, vocab)?;
    let more = tokenizer
        .iter()
        .flat_map(|t| t.eos_token_ids().iter().copied())
        .chain(model.config().eos_token_id.iter().copied());
    for id in more {
        if !eos.contains(&id) {
            eos.push(id);
        }
    }
    // A tokenizer may name special tokens past the embedding rows of a
    // smaller model; the model cannot emit those, so they are not eos ids.
    eos.retain(|&id| (id as usize) < vocab);
    let pad_token_id = generation_ids(gen, "pad_token_id", &gen_path, vocab)?
        .first()
        .copied()
        .or_else(|| tokenizer.as_ref().and_then(Tokenizer::pad_token_id))
        .filter(|&id| (id as usize) < vocab)
        .unwrap_or(0);
    Ok(Pretrained {
        model,
        tokenizer,
        generation_config,
        eos_token_ids: eos,
        pad_token_id,
    })
}

/// Saves a model directory: config.json, model.safetensors, the tokenizer
/// files when a tokenizer is given, and generation_config.json (the given
/// one, else one naming `eos_token_ids`).
pub fn save_pretrained(
    dir: impl AsRef<Path>,
    model: &Qwen2ForCausalLM,
    tokenizer: Option<&Tokenizer>,
    generation_config: Option<&Value>,
    eos_token_ids: &[u32],
) -> Result<PathBuf> {
    let dir = dir.as_ref();
    model.save(dir)?;
    if let Some(tk) = tokenizer {
        tk.save(dir)?;
    }
    let gen = match generation_config {
        Some(g) => Some(g.clone()),
        None if !eos_token_ids.is_empty() => Some(serde_json::json!({
            "eos_token_id": eos_token_ids,
            "pad_token_id": tokenizer.and_then(Tokenizer::pad_token_id),
        })),
        None => None,
    };
    if let Some(g) = gen {
        let path = dir.join("generation_config.json");
        let text = serde_json::to_string_pretty(&g).map_err(|source| ModelError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text).map_err(|e| ModelError::io("write", &path, e))?;
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that fails (here: no such folder; a full disk alike) is an
    /// I/O error naming the file, not a claim that the file is invalid.
    #[test]
    fn a_failed_tensor_write_is_an_io_error_naming_the_file() {
        let path = std::env::temp_dir()
            .join(format!("toolgym-no-such-dir-{}", std::process::id()))
            .join("optimizer.safetensors");
        let t = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let name = "m.weight".to_string();
        match write_safetensors(&path, [(&name, &t)]) {
            Err(ModelError::Io {
                action, path: p, ..
            }) => {
                assert_eq!(action, "write");
                assert_eq!(p, path);
            }
            other => panic!("{other:?}"),
        }
    }
}
