//! Loading the dialogues and cutting them into samples exactly as the
//! official loop does (`evaluator.py`, `Sample.from_chat_history`).
//!
//! For every `API` line at position `i` of a file, the loop builds two
//! samples: the call itself (history = lines `0..i`) and the line after it
//! (history = lines `0..=i`). Call mode scores the samples whose expected
//! line is an `API` line, so when two calls are adjacent the second one is
//! scored twice (once as "the line after" the first call, once as itself).
//! Sample ids are the positions in that per-file list.

use super::apis::{self, network};
use super::judge::{Judge, ReplyFormat};
use super::parse::{bracket_call, ParsedCall};
use super::value::{self, get, loads};
use super::world::ApiBankData;
use super::{ApiBankError, Network};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toolgym_reward::pycall::PyVal;
use toolgym_reward::Call;

/// Where the level-1 Call-mode samples are, under the API-Bank root.
pub const SAMPLES_DIR: &str = "lv1-lv2-samples/level-1-given-desc";
/// Where the initial databases are, under the API-Bank root.
pub const DATABASE_DIR: &str = "init_database";

/// One line of a dialogue.
#[derive(Clone, Debug, PartialEq)]
pub enum Turn {
    /// `{"role": "User", "text"}`.
    User(String),
    /// `{"role": "AI", "text"}`.
    Ai(String),
    /// `{"role": "API", "api_name", "param_dict", "result"}`: a call made
    /// earlier in the dialogue, with its recorded result.
    Api {
        /// The API.
        api_name: String,
        /// The parameters as recorded (strings), in file order.
        param_dict: Vec<(String, PyVal)>,
        /// The recorded result `{"api_name"?, "input", "output", "exception"}`.
        result: PyVal,
    },
}

/// One Call-mode sample: a dialogue prefix and the API call that should
/// come next.
#[derive(Clone, Debug)]
pub struct ApiBankSample {
    /// `<file stem>#<index>`, e.g. `AddAlarm-level-1-1#2`.
    pub id: String,
    /// The file name (`AddAlarm-level-1-1.jsonl`).
    pub file: String,
    /// The sample's id in the official per-file sample list.
    pub index: usize,
    /// 1-based line of the expected call in the file.
    pub line: usize,
    /// The lines before it (earlier calls included, with their results).
    pub history: Vec<Turn>,
    /// The APIs the file calls anywhere, in order of first use (their
    /// descriptions go into the prompt; the official order is Python's set
    /// order, which changes between runs).
    pub apis: Vec<String>,
    /// The expected API.
    pub api_name: String,
    /// The expected parameters, as recorded (strings).
    pub param_dict: Vec<(String, PyVal)>,
    /// The recorded result of the expected call.
    pub result: PyVal,
    /// For the second copy of a call scored twice (see the module docs):
    /// the index of the first copy.
    pub duplicate_of: Option<usize>,
    /// Why no reply can pass this sample under the official rules (the
    /// recorded call itself fails: a check that cannot succeed, or a result
    /// that depended on earlier calls), `None` when it can pass.
    pub never_passes: Option<String>,
    pub(crate) data: Arc<ApiBankData>,
}

impl ApiBankSample {
    /// Whether the file is one of the `-level-1-` ones (the others in the
    /// folder are `-level-2-` dialogues with several calls; the official
    /// loop scores them all).
    pub fn in_level1_file(&self) -> bool {
        self.file.contains("-level-1-")
    }

    /// Whether the expected API needs the network in the original
    /// (Dictionary, Translate): answered from recorded results here.
    pub fn uses_network(&self) -> bool {
        network::is_network(&self.api_name)
    }

    /// The shared databases.
    pub fn data(&self) -> &Arc<ApiBankData> {
        &self.data
    }

    /// The expected call with the recorded (string) parameters.
    pub fn expected_call(&self) -> ParsedCall {
        ParsedCall {
            name: self.api_name.clone(),
            params: self
                .param_dict
                .iter()
                .map(|(k, v)| (k.clone(), v.py_str()))
                .collect(),
        }
    }

    /// The expected call in the benchmark's form, as a model should write
    /// it: `[Name(k='v', …)]`, list values unquoted (so the official parser
    /// reads back the recorded strings).
    pub fn expected_reply(&self) -> String {
        let call = self.expected_call();
        bracket_call(
            &call.name,
            call.params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// The expected call as a toolgym [`Call`] with JSON-typed arguments:
    /// `int` parameters as numbers, `bool` as booleans, lists as the
    /// recorded lists (from the result's typed `input`), strings as they
    /// are. [`crate::data::apibank::json_argument`] turns these back into
    /// the recorded strings.
    pub fn expected_tool_call(&self) -> Call {
        tool_call_of(&self.api_name, &self.param_dict, &self.result)
    }
}

/// A recorded call as a toolgym [`Call`] (see
/// [`ApiBankSample::expected_tool_call`]).
pub(crate) fn tool_call_of(api_name: &str, param_dict: &[(String, PyVal)], result: &PyVal) -> Call {
    let info = apis::info(api_name);
    let typed = get(result, "input");
    let mut args = serde_json::Map::new();
    for (k, v) in param_dict {
        let text = v.py_str();
        let ty = info.and_then(|i| i.param(k)).map(|p| p.ty);
        let json = match ty {
            Some(apis::ParamType::Int) => text
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(text)),
            Some(apis::ParamType::Bool) if text == "True" || text == "False" => {
                Value::Bool(text == "True")
            }
            Some(apis::ParamType::List | apis::ParamType::ListStr) => {
                match typed.and_then(|t| get(t, k)) {
                    Some(list @ PyVal::List(_)) => value::to_json(list),
                    _ => Value::String(text),
                }
            }
            _ => Value::String(text),
        };
        args.insert(k.clone(), json);
    }
    Call {
        name: api_name.to_string(),
        arguments: args,
    }
}

/// Reads a file's lines as Python's text-mode iteration does (universal
/// newlines).
fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

fn str_field(item: &PyVal, key: &str) -> Result<String, String> {
    match get(item, key) {
        Some(PyVal::Str(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "{key:?} is a {}, not a string",
            other.py_type().name()
        )),
        None => Err(format!("no {key:?}")),
    }
}

/// One parsed line.
fn turn(item: &PyVal) -> Result<Turn, String> {
    if !matches!(item, PyVal::Dict(_)) {
        return Err(format!(
            "a line must be a JSON object, found a {}",
            item.py_type().name()
        ));
    }
    let role = str_field(item, "role")?;
    match role.as_str() {
        "User" => Ok(Turn::User(str_field(item, "text")?)),
        "AI" => Ok(Turn::Ai(str_field(item, "text")?)),
        "API" => {
            let api_name = str_field(item, "api_name")?;
            if apis::info(&api_name).is_none() {
                return Err(format!(
                    "API {api_name:?} is not one of the {} APIs the level-1 samples use",
                    apis::APIS.len()
                ));
            }
            let param_dict = match get(item, "param_dict") {
                Some(PyVal::Dict(e)) => e.iter().map(|(k, v)| (k.py_str(), v.clone())).collect(),
                _ => return Err("an API line needs a \"param_dict\" object".into()),
            };
            let result = get(item, "result").cloned().unwrap_or(PyVal::None);
            if get(&result, "output").is_none() {
                return Err("an API line needs a \"result\" object with an \"output\"".into());
            }
            Ok(Turn::Api {
                api_name,
                param_dict,
                result,
            })
        }
        other => Err(format!("unknown role {other:?} (User, AI or API)")),
    }
}

/// Reads one dialogue file.
pub(crate) fn read_dialogue(path: &Path) -> Result<Vec<Turn>, ApiBankError> {
    let bytes = std::fs::read(path).map_err(|source| ApiBankError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        // Named by line, as the other faults of a dialogue file are.
        // The text before the bad byte is UTF-8; its lines are counted as
        // `lines` reads them (a `\r\n` cannot be split there: `\n` is valid).
        let at = e.utf8_error().valid_up_to();
        let before = std::str::from_utf8(&e.as_bytes()[..at]).unwrap_or_default();
        let done = lines(before);
        let (line, column) = if before.ends_with(['\n', '\r']) {
            (done.len() + 1, 0)
        } else {
            (done.len().max(1), done.last().map_or(0, |l| l.len()))
        };
        ApiBankError::Line {
            path: path.to_path_buf(),
            line,
            message: format!("invalid UTF-8 at byte {} of the line", column + 1),
        }
    })?;
    let mut out = Vec::new();
    for (n, line) in lines(&text).into_iter().enumerate() {
        let bad = |message: String| ApiBankError::Line {
            path: path.to_path_buf(),
            line: n + 1,
            message,
        };
        if n == 0 && line.starts_with('\u{feff}') {
            return Err(bad(
                "not JSON: the file starts with a UTF-8 byte-order mark (the official \
                 evaluator's json.loads refuses it too); save it without one"
                    .into(),
            ));
        }
        let item = loads(line).map_err(|m| bad(format!("not JSON: {m}")))?;
        out.push(turn(&item).map_err(bad)?);
    }
    if let Some(Turn::Api { .. }) = out.last() {
        return Err(ApiBankError::Line {
            path: path.to_path_buf(),
            line: out.len(),
            message: "the last line is an API call (the official loop needs the line after it)"
                .into(),
        });
    }
    Ok(out)
}

/// The Call-mode samples of one dialogue.
fn cut(file: &str, turns: &[Turn], data: &Arc<ApiBankData>) -> Vec<ApiBankSample> {
    let mut apis: Vec<String> = Vec::new();
    for t in turns {
        if let Turn::Api { api_name, .. } = t {
            if !apis.contains(api_name) {
                apis.push(api_name.clone());
            }
        }
    }
    let stem = file.strip_suffix(".jsonl").unwrap_or(file);
    // (history length, expected line) of the official sample list.
    let mut list: Vec<(usize, usize)> = Vec::new();
    for (i, t) in turns.iter().enumerate() {
        if matches!(t, Turn::Api { .. }) {
            list.push((i, i));
            list.push((i + 1, i + 1));
        }
    }
    let mut out: Vec<ApiBankSample> = Vec::new();
    for (index, &(hist, at)) in list.iter().enumerate() {
        let Some(Turn::Api {
            api_name,
            param_dict,
            result,
        }) = turns.get(at)
        else {
            continue;
        };
        let duplicate_of = out.last().filter(|p| p.line == at + 1).map(|p| p.index);
        out.push(ApiBankSample {
            id: format!("{stem}#{index}"),
            file: file.to_string(),
            index,
            line: at + 1,
            history: turns[..hist].to_vec(),
            apis: apis.clone(),
            api_name: api_name.clone(),
            param_dict: param_dict.clone(),
            result: result.clone(),
            duplicate_of,
            never_passes: None,
            data: data.clone(),
        });
    }
    out
}

/// The `.jsonl` files of a folder, sorted by name. An entry named
/// `*.jsonl` that is not a file (a directory, a dangling link) is an error
/// naming it: the official evaluator stops at it too, where skipping it
/// would judge a smaller benchmark silently.
fn jsonl_files(dir: &Path) -> Result<Vec<PathBuf>, ApiBankError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ApiBankError::Io { path, source }
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        if !path.is_file() {
            return Err(ApiBankError::NotAFile(path));
        }
        files.push(path);
    }
    files.sort();
    Ok(files)
}

/// Loads the samples of an API-Bank folder: `data_dir` is the benchmark's
/// root, holding `lv1-lv2-samples/level-1-given-desc/*.jsonl` and
/// `init_database/*.json`. At most `limit` samples (the first ones, files in
/// name order).
pub fn load_samples(
    data_dir: &Path,
    limit: Option<usize>,
) -> Result<Vec<ApiBankSample>, ApiBankError> {
    load_samples_from(
        &data_dir.join(SAMPLES_DIR),
        &data_dir.join(DATABASE_DIR),
        limit,
    )
}

/// [`load_samples`] with the two folders given separately.
pub fn load_samples_from(
    samples_dir: &Path,
    database_dir: &Path,
    limit: Option<usize>,
) -> Result<Vec<ApiBankSample>, ApiBankError> {
    if !samples_dir.is_dir() {
        return Err(ApiBankError::MissingDir(samples_dir.to_path_buf()));
    }
    if !database_dir.is_dir() {
        return Err(ApiBankError::MissingDir(database_dir.to_path_buf()));
    }
    let mut data = ApiBankData::load(database_dir)?;
    let mut dialogues = Vec::new();
    for path in jsonl_files(samples_dir)? {
        let turns = read_dialogue(&path)?;
        for t in &turns {
            if let Turn::Api {
                api_name, result, ..
            } = t
            {
                data.recorded.add(api_name, result);
            }
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        dialogues.push((name, turns));
    }
    if dialogues.is_empty() {
        return Err(ApiBankError::NoSamples(samples_dir.to_path_buf()));
    }
    let data = Arc::new(data);
    let mut samples: Vec<ApiBankSample> = dialogues
        .iter()
        .flat_map(|(name, turns)| cut(name, turns, &data))
        .collect();
    samples.truncate(limit.unwrap_or(usize::MAX));
    let judge = Judge {
        format: ReplyFormat::Bracket,
        network: Network::Recorded,
    };
    for s in &mut samples {
        let v = judge.judge(s, Some(&s.expected_reply()));
        if !v.valid {
            s.never_passes = Some(v.error.unwrap_or_else(|| "the recorded call fails".into()));
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::{lines, read_dialogue};

    /// A byte that is not UTF-8 is named by its line, as a bad line is.
    #[test]
    fn a_dialogue_that_is_not_utf8_is_named_by_line() {
        let path =
            std::env::temp_dir().join(format!("toolgym-apibank-utf8-{}.jsonl", std::process::id()));
        for end in ["\n", "\r\n", "\r"] {
            let text = [
                format!("{{\"role\": \"User\", \"text\": \"hi\"}}{end}").into_bytes(),
                b"{\"role\": \"AI\", \"text\": \"b\xff\"}\n".to_vec(),
            ]
            .concat();
            std::fs::write(&path, text).unwrap();
            let e = read_dialogue(&path).unwrap_err().to_string();
            assert!(
                e.contains(":2:") && e.contains("invalid UTF-8 at byte 26 of the line"),
                "{end:?}: {e}"
            );
        }
        std::fs::remove_file(&path).ok();
    }

    /// A byte-order mark is named as such, on line 1.
    #[test]
    fn a_dialogue_with_a_byte_order_mark_says_so() {
        let path =
            std::env::temp_dir().join(format!("toolgym-apibank-bom-{}.jsonl", std::process::id()));
        std::fs::write(&path, "\u{feff}{\"role\": \"User\", \"text\": \"hi\"}\n").unwrap();
        let e = read_dialogue(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).ok();
        assert!(e.contains(":1:") && e.contains("byte-order mark"), "{e}");
    }

    #[test]
    fn universal_newlines() {
        assert_eq!(lines("a\nb\r\nc\rd\n"), ["a", "b", "c", "d"]);
        assert_eq!(lines("a\n\nb"), ["a", "", "b"]);
        assert!(lines("").is_empty());
    }
}
