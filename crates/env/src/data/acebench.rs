//! Evaluating a model on ACEBench with the official semantics: the logic of
//! `toolgym eval acebench`, free of any model.
//!
//! 1. [`load_cases`]: the cases of an ACEBench English data folder
//!    (`data_<category>.json` plus `possible_answer/data_<category>.json`,
//!    JSON Lines; the upstream `data_all/data_en` or a copy's `data_en`).
//! 2. Prompts: [`AcePrompt::Official`] — ACEBench's own system and user
//!    prompts (functions as a Python `repr`, the `[ApiName(key='value')]`
//!    output format) — or a toolgym template ([`AcePrompt::Template`],
//!    e.g. the Tool-N1 prompt with the functions as tools); [`task`] makes
//!    the [`Task`] a local model is prompted with.
//! 3. [`AceJudge::judge`]: the official verdict ([`toolgym_reward::acebench`])
//!    as an [`AceVerdict`] line.
//! 4. [`summarize`]: per-category scores and the official summary columns,
//!    printed as a table by [`AceReport`]'s `Display`.
//!
//! ```
//! use toolgym_env::data::acebench::{summarize, AceCase, AceJudge};
//! use toolgym_reward::acebench::AceCategory;
//! use toolgym_reward::pycall::PyVal;
//! let case = AceCase {
//!     id: "normal_single_turn_single_function_0".into(),
//!     category: AceCategory::SingleFunction,
//!     question: "user: Play Yesterday.".into(),
//!     functions: PyVal::from_json(&serde_json::json!([{"name": "play", "description": "Plays a song.",
//!         "parameters": {"type": "object", "properties": {"song": {"type": "string"}}, "required": ["song"]}}])),
//!     answer: PyVal::from_json(&serde_json::json!({"play": {"song": "Yesterday"}})),
//!     time: String::new(),
//!     profile: String::new(),
//! };
//! let v = AceJudge::default().judge(&case, Some("[play(song='Yesterday')]"));
//! assert!(v.valid);
//! let report = summarize(&[case], &[v]);
//! assert_eq!(report.summary.single_turn, None); // parallel_function was not run
//! ```

use super::completions::CompletionsError;
use super::reply_env::ReplyEnvs;
use super::{read_strict_lines, StrictLinesError};
use crate::task::Task;
use crate::template::ChatTemplate;
use crate::tool::ToolSpec;
use crate::Message;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toolgym_reward::acebench::{
    conversation_of, judge, score_category, summarize_scores, AceCategory, AceDecoder, AceSummary,
    CategoryScore,
};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::{pyjson, Reason, Verdict};

/// ACEBench's system prompt for the normal categories
/// (`SYSTEM_PROMPT_FOR_NORMAL_DATA_EN`), with `{time}` and `{function}`.
pub const SYSTEM_PROMPT_NORMAL: &str = "You are an AI assistant with the role name \"assistant.\" Based on the provided API specifications and conversation history from steps 1 to t, generate the API requests that the assistant should call in step t+1. The API requests should be output in the format [ApiName(key1='value1', key2='value2', ...)], replacing ApiName with the actual API name, key1, key2, etc., with the actual parameter names, and value1, value2, etc., with the actual parameter values. The output should start with a square bracket \"[\" and end with a square bracket \"]\".\nIf there are multiple API requests, separate them with commas, for example: [ApiName(key1='value1', key2='value2', ...), ApiName(key1='value1', key2='value2', ...), ...]. Do not include any other explanations, prompts, or API call results in the output.\nIf the API parameter description does not specify otherwise, the parameter is optional (parameters mentioned in the user input need to be included in the output; if not mentioned, they do not need to be included).\nIf the API parameter description does not specify the required format for the value, use the user's original text for the parameter value.\nIf the API requires no parameters, output the API request directly in the format [ApiName()], and do not invent any nonexistent parameter names.\n\n{time}\n\nRole Descriptions:\nuser: User\nassistant: The AI assistant role that makes API requests\ntool: Provides the results returned from tool calls\n\nAPI Specifications:\n{function}";

/// ACEBench's system prompt for `normal_preference`
/// (`SYSTEM_PROMPT_FOR_PREFERENCE_DATA_EN`), with `{profile}` and
/// `{function}`.
pub const SYSTEM_PROMPT_PREFERENCE: &str = "You are an AI assistant, and your role is called assistant. Based on the given API description, dialogue history 1..t, and character profile, generate the API requests that the assistant should call in step t+1. The API requests should be output in the format [ApiName(key1='value1', key2='value2', ...)], where ApiName is replaced with the actual API name, and key1, key2, etc., are replaced with the actual parameter names, and value1, value2 are replaced with the actual parameter values. The output should start with a \"[\" and end with a \"]\".\nIf there are multiple API requests, they should be separated by commas, e.g., [ApiName(key1='value1', key2='value2', ...), ApiName(key1='value1', key2='value2', ...), ...]. Do not output any other explanations, hints, or results of the API calls in the output.\nIf the API parameter description does not specify special instructions, the parameter is optional (parameters mentioned in the user input or character profile should be included in the output, and if not mentioned, they should not be included).\nIf the API parameter description does not specify the format for the parameter value, the parameter value should be taken from the user's original text or character profile.\nIf the API requires no parameters, the API request should be output as [ApiName()], with no fabricated parameter names.\n\nCharacter Profile:\n{profile}\n\nRole Description:\nuser: User\nassistant: AI assistant performing API calls\ntool: Provides the results of tool calls\n\nAPI Description:\n{function}";

/// ACEBench's system prompt for the special categories
/// (`SYSTEM_PROMPT_FOR_SPECIAL_DATA_EN`), with `{time}` and `{function}`.
pub const SYSTEM_PROMPT_SPECIAL: &str = "You are an AI assistant with the role name \"assistant\". Based on the provided API specifications and conversation history from steps 1 to t, generate the API requests that the assistant should call in step t+1. Below are two specific scenarios:\n1. When the information provided by the user is clear and unambiguous, and the problem can be resolved using the list of candidate functions:\n   - If the API parameter description does not specify the required format for the value, use the user's original text for the parameter value.\n   - When multiple tools in the candidate list can satisfy the user's needs, output all API requests.\n   - API requests should be output in the format [ApiName(key1='value1', key2='value2', ...), ApiName(key1='value1', key2='value2', ...), ...], replacing ApiName with the actual API name, key1, key2, etc., with the actual parameter names, and value1, value2, etc., with the actual parameter values. The output should start with a square bracket \"[\" and end with a square bracket \"]\". At this time, the output must not contain any other content.\n\n2. When the information provided by the user is unclear, incomplete, or incorrect, or the user's question exceeds the capabilities of the provided functions, you need to clearly point out these issues. The following is your strategy:\n   (1) If the user's instructions include the key details required to call the API, but the type or form of the parameter values does not match the API's definitions, ask in-depth questions to clarify and correct the details. The output format should be: [\"There is incorrect value (value) for the parameters (key) in the conversation history.\"]\n   (2) If the user's instructions lack the key details required by the API, ask questions to obtain the necessary information. The output format should be: [\"Missing necessary parameters (key1, key2, ...) for the api (ApiName)\"], replacing key1, key2 with the names of the missing parameters and ApiName with the actual API name.\n   (3) If the user's request exceeds the current capabilities of your APIs, inform them that you cannot fulfill the request. The output format should be: [\"Due to the limitations of the function, I cannot solve this problem.\"]\n   Note: The above steps have a priority order. You need to first determine whether scenario (1) applies. If it does, output according to the requirements in (1). Pay attention to distinguishing between scenarios (1) and (2).\n\n{time}\n\nRole Descriptions:\nuser: User\nassistant: The AI assistant role that makes API requests\n\nAPI Specifications:\n{function}";

/// ACEBench's user prompt (`USER_PROMPT_EN`), with `{question}`.
pub const USER_PROMPT: &str = "Conversation history 1..t:\n{question}";

/// The `error_type` of a case that has no completion.
pub const NO_COMPLETION: &str = "toolgym:no_completion";

/// The `error_type` of a case on which the official evaluation itself
/// raises (a data problem; see [`toolgym_reward::acebench::OfficialCrash`]).
pub const OFFICIAL_CRASH: &str = "toolgym:official_crash";

/// Why ACEBench data cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AceError {
    /// A folder or file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A line is not a usable record.
    #[error("{path}:{line}: {message}")]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A category name is not one of the supported ones.
    #[error("unknown ACEBench category {name:?}; supported: {known}")]
    UnknownCategory {
        /// The name given.
        name: String,
        /// The supported names, comma-separated.
        known: String,
    },
    /// No category file in the folder.
    #[error("{0}: no data_<category>.json of a supported category (is this ACEBench's data_en?)")]
    NoData(PathBuf),
    /// The folder is ACEBench's Chinese data.
    #[error(
        "{0}: ACEBench's Chinese cases (data_zh), and no English ones (data_en) beside \
         them; toolgym evaluates the English ones: its prompts and the special categories' \
         phrases are the English evaluation's, so a score on these cases would be neither \
         ACEBench's `--language zh` figure nor its English one. Give the data_en folder, or \
         a folder above it that holds data_en or data_all/data_en"
    )]
    Chinese(PathBuf),
    /// A completions file could not be read.
    #[error(transparent)]
    Completions(#[from] CompletionsError),
}

/// One ACEBench case.
#[derive(Clone, Debug, PartialEq)]
pub struct AceCase {
    /// The case id (`normal_atom_bool_0`).
    pub id: String,
    /// Its category.
    pub category: AceCategory,
    /// The dialogue so far (`user: …\nsystem: …\n`), as one text.
    pub question: String,
    /// The function descriptions, key order kept (the prompt shows their
    /// Python `repr`).
    pub functions: PyVal,
    /// The possible answer (`ground_truth`).
    pub answer: PyVal,
    /// The `time` field ("" when absent).
    pub time: String,
    /// The `profile` field of the preference category ("" when absent).
    pub profile: String,
}

/// Parses category names (`normal_atom_bool`, with or without `data_`;
/// `all` for every category; `normal`, `special`, `atom`, `single_turn`,
/// `multi_turn` for the official groups), keeping order, dropping repeats.
///
/// ```
/// use toolgym_env::data::acebench::parse_categories;
/// use toolgym_reward::acebench::AceCategory;
/// assert_eq!(parse_categories(&["special"]).unwrap().len(), 3);
/// assert_eq!(parse_categories(&["normal_atom_bool"]).unwrap(), [AceCategory::AtomBool]);
/// assert!(parse_categories(&["agent_multi_turn"]).is_err());
/// ```
pub fn parse_categories<S: AsRef<str>>(names: &[S]) -> Result<Vec<AceCategory>, AceError> {
    let mut out: Vec<AceCategory> = Vec::new();
    for name in names {
        let name = name.as_ref().trim();
        let group: Vec<AceCategory> = AceCategory::ALL
            .into_iter()
            .filter(|c| match name {
                "all" => true,
                "normal" => !c.is_special(),
                "special" => c.is_special(),
                "atom" => c.is_atom(),
                "multi_turn" => c.is_multi_turn(),
                "single_turn" => matches!(
                    c,
                    AceCategory::SingleFunction | AceCategory::ParallelFunction
                ),
                _ => false,
            })
            .collect();
        let found = if group.is_empty() {
            vec![
                AceCategory::from_name(name).ok_or_else(|| AceError::UnknownCategory {
                    name: name.to_string(),
                    known: AceCategory::ALL.map(AceCategory::as_str).join(", "),
                })?,
            ]
        } else {
            group
        };
        for c in found {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// The folder holding the `data_<category>.json` files: `dir` itself, or
/// its `data_en` / `data_all/data_en`.
fn data_folder(dir: &Path) -> PathBuf {
    for sub in ["data_en", "data_all/data_en"] {
        let d = dir.join(sub);
        if d.is_dir() {
            return d;
        }
    }
    dir.to_path_buf()
}

/// ACEBench's Chinese data, where `data` is that folder (by its real
/// name: `.` or a link inside it count) or a root that holds it and no
/// English data.
fn chinese_data(data: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    if real.file_name().is_some_and(|n| n == "data_zh") {
        return Some(data.to_path_buf());
    }
    if data.join("possible_answer").is_dir() {
        return None;
    }
    ["data_zh", "data_all/data_zh"]
        .iter()
        .map(|sub| data.join(sub))
        .find(|d| d.is_dir())
}

/// The records of a JSON Lines file, key order kept. A bad line (not JSON,
/// not an object, not UTF-8, over
/// [`MAX_LINE_BYTES`](toolgym_reward::jsonl::MAX_LINE_BYTES)) is an error
/// naming it: the scores would not be comparable with a case left out.
/// Each record comes with its line number (blank lines are skipped).
fn read_records(path: &Path) -> Result<Vec<(usize, PyVal)>, AceError> {
    let records = read_strict_lines(path, |text| {
        let v = pyjson::loads(text).map_err(|e| format!("not JSON: {e}"))?;
        match PyVal::from_pyjson(&v) {
            d @ PyVal::Dict(_) => Ok(d),
            _ => Err("not a JSON object".to_string()),
        }
    })
    .map_err(|e| match e {
        StrictLinesError::Io(source) => AceError::Io {
            path: path.to_path_buf(),
            source,
        },
        StrictLinesError::Line { line, message } => AceError::Record {
            path: path.to_path_buf(),
            line,
            message,
        },
    })?;
    Ok(records)
}

/// How many of a category's records `limit` takes ([`load_cases`]):
/// whole conversations in a multi-turn category.
fn limited(records: &[(usize, PyVal)], category: AceCategory, limit: Option<usize>) -> usize {
    let Some(n) = limit else {
        return records.len();
    };
    let mut end = n.min(records.len());
    if category.is_multi_turn() && end > 0 {
        let conversation = |i: usize| {
            records[i]
                .1
                .dict_get("id")
                .and_then(PyVal::as_str)
                .map(conversation_of)
        };
        while end < records.len() && conversation(end) == conversation(end - 1) {
            end += 1;
        }
    }
    end
}

/// Loads the cases of `categories` (none: every category with a file),
/// at most `limit` per category, in file order (in a multi-turn category,
/// up to the end of the conversation the `limit`th record is a turn of:
/// the official score counts a conversation solved only when every turn
/// is, so half a conversation could count as solved). The question and answer
/// files are paired line by line, as the official evaluation does; a
/// missing answer file, a count or id mismatch, an id that repeats, or a
/// line that is not a record is an error naming the file and line (the
/// figures would not be comparable otherwise).
pub fn load_cases(
    dir: &Path,
    categories: &[AceCategory],
    limit: Option<usize>,
) -> Result<Vec<AceCase>, AceError> {
    let data = data_folder(dir);
    if let Some(zh) = chinese_data(&data) {
        return Err(AceError::Chinese(zh));
    }
    let explicit = !categories.is_empty();
    let wanted: &[AceCategory] = if explicit {
        categories
    } else {
        &AceCategory::ALL
    };
    let mut out = Vec::new();
    let mut found = 0;
    // Each id once across the categories: the summary keeps one verdict
    // per id, so a case in two files was scored by whichever came last.
    let mut seen: std::collections::HashMap<String, (PathBuf, usize)> = Default::default();
    for &category in wanted {
        let name = format!("data_{}.json", category.as_str());
        let qpath = data.join(&name);
        if !qpath.is_file() && !explicit {
            continue;
        }
        found += 1;
        let apath = data.join("possible_answer").join(&name);
        let questions = read_records(&qpath)?;
        let answers = read_records(&apath)?;
        if questions.is_empty() {
            // A broken download: its category would vanish from the table.
            return Err(AceError::Record {
                path: qpath,
                line: 1,
                message: "the category file holds no case".into(),
            });
        }
        if questions.len() != answers.len() {
            // The first record without a partner, or where the shorter
            // file would hold it.
            let paired = answers.len().min(questions.len());
            let line = match answers.get(paired) {
                Some((line, _)) => *line,
                None => answers.last().map_or(1, |(line, _)| line + 1),
            };
            return Err(AceError::Record {
                path: apath,
                line,
                message: format!(
                    "{} answers for {} questions in {}",
                    answers.len(),
                    questions.len(),
                    qpath.display()
                ),
            });
        }
        for ((qline, q), (aline, a)) in questions
            .iter()
            .zip(&answers)
            .take(limited(&questions, category, limit))
        {
            let text = |v: &PyVal, k: &str| v.dict_get(k).and_then(PyVal::as_str).map(String::from);
            let bad = |path: &Path, line: usize, message: String| AceError::Record {
                path: path.to_path_buf(),
                line,
                message,
            };
            let in_q = |message: String| bad(&qpath, *qline, message);
            let in_a = |message: String| bad(&apath, *aline, message);
            let id = text(q, "id").ok_or_else(|| in_q("no string \"id\"".into()))?;
            if let Some((file, first)) = seen.insert(id.clone(), (qpath.clone(), *qline)) {
                return Err(in_q(match file == qpath {
                    true => format!("id {id:?} repeats line {first}"),
                    false => format!("id {id:?} is a case of {}:{first} too", file.display()),
                }));
            }
            if text(a, "id").as_deref() != Some(id.as_str()) {
                return Err(in_a(format!("the answer's id is not {id:?}")));
            }
            let answer = a
                .dict_get("ground_truth")
                .cloned()
                .ok_or_else(|| in_a(format!("{id}: no \"ground_truth\"")))?;
            let functions = q
                .dict_get("function")
                .cloned()
                .ok_or_else(|| in_q(format!("{id}: no \"function\"")))?;
            // Absent is empty; any other value than a string would be
            // written into the prompt as something the data never says.
            let optional = |k: &str| match q.dict_get(k) {
                None => Ok(String::new()),
                Some(v) => v
                    .as_str()
                    .map(String::from)
                    .ok_or_else(|| in_q(format!("{id}: \"{k}\" is not a string"))),
            };
            out.push(AceCase {
                question: text(q, "question")
                    .ok_or_else(|| in_q(format!("{id}: no string \"question\"")))?,
                time: optional("time")?,
                profile: optional("profile")?,
                id,
                category,
                functions,
                answer,
            });
        }
    }
    if found == 0 {
        return Err(AceError::NoData(data));
    }
    Ok(out)
}

/// How a case is put to a model.
#[derive(Clone)]
pub enum AcePrompt {
    /// ACEBench's own prompt: its system prompt for the category and
    /// `Conversation history 1..t:\n{question}` as the user turn, no tools
    /// (answers in `[ApiName(key='value')]` form).
    Official,
    /// A toolgym chat template: the functions as the task's tools and the
    /// question as the user turn (answers as the template asks, e.g.
    /// Tool-N1 `<tool_call>` JSON).
    Template(Arc<dyn ChatTemplate>),
}

/// ACEBench's two prompt messages for `case` (system, user).
///
/// ```
/// use toolgym_env::data::acebench::{official_messages, AceCase};
/// use toolgym_reward::acebench::AceCategory;
/// use toolgym_reward::pycall::PyVal;
/// let case = AceCase { id: "special_irrelevant_0".into(), category: AceCategory::Irrelevant,
///     question: "user: Hi".into(), functions: PyVal::from_json(&serde_json::json!([{"name": "f"}])),
///     answer: PyVal::Str("x".into()), time: String::new(), profile: String::new() };
/// let m = official_messages(&case);
/// assert!(m[0].content.ends_with("API Specifications:\n[{'name': 'f'}]"));
/// assert_eq!(m[1].content, "Conversation history 1..t:\nuser: Hi");
/// ```
pub fn official_messages(case: &AceCase) -> Vec<Message> {
    let functions = case.functions.repr();
    let system = if case.category.is_special() {
        SYSTEM_PROMPT_SPECIAL
            .replacen("{time}", &case.time, 1)
            .replacen("{function}", &functions, 1)
    } else if case.category == AceCategory::Preference {
        SYSTEM_PROMPT_PREFERENCE
            .replacen("{profile}", &case.profile, 1)
            .replacen("{function}", &functions, 1)
    } else {
        SYSTEM_PROMPT_NORMAL
            .replacen("{time}", &case.time, 1)
            .replacen("{function}", &functions, 1)
    };
    vec![
        Message::system(system),
        Message::user(USER_PROMPT.replacen("{question}", &case.question, 1)),
    ]
}

/// What a case's official prompt gives the model besides the functions
/// and the answer format, for a template's prompt: the special
/// categories' instructions (which phrases to answer with when a
/// parameter is missing or wrong, or no function fits: the checker looks
/// for them), the user's profile (`normal_preference`: values are taken
/// from it) and the current time (relative dates). `None` when the case
/// has none of them.
///
/// ```
/// use toolgym_env::data::acebench::{template_context, AceCase};
/// use toolgym_reward::acebench::AceCategory;
/// use toolgym_reward::pycall::PyVal;
/// let case = AceCase { id: "special_incomplete_0".into(), category: AceCategory::Incomplete,
///     question: "user: Hi".into(), functions: PyVal::List(vec![]), answer: PyVal::None,
///     time: "The current time is July 20, 2021, Tuesday.".into(), profile: String::new() };
/// let text = template_context(&case).unwrap();
/// assert!(text.contains("Missing necessary parameters") && text.ends_with("Tuesday."));
/// ```
pub fn template_context(case: &AceCase) -> Option<String> {
    let mut parts = Vec::new();
    if case.category.is_special() {
        // Scenario 2 of the official special prompt, as it is written.
        let from = SYSTEM_PROMPT_SPECIAL.find("2. When the information")?;
        let to = SYSTEM_PROMPT_SPECIAL.find("\n\n{time}")?;
        parts.push(SYSTEM_PROMPT_SPECIAL[from + 3..to].to_string());
    }
    if case.category == AceCategory::Preference && !case.profile.is_empty() {
        parts.push(format!("Character Profile:\n{}", case.profile));
    }
    if !case.time.is_empty() {
        parts.push(case.time.clone());
    }
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// The case's functions as tool specs (`parameters`, or `arguments` where
/// a description has that instead).
pub fn tools(case: &AceCase) -> Result<Vec<ToolSpec>, String> {
    let PyVal::List(items) = &case.functions else {
        return Err("\"function\" is not a list".into());
    };
    items
        .iter()
        .map(|f| {
            let mut v = f
                .to_json()
                .map_err(|e| format!("a function is not JSON: {}", e.0))?;
            if let Some(o) = v.as_object_mut() {
                if !o.contains_key("parameters") {
                    if let Some(args) = o.shift_remove("arguments") {
                        o.insert("parameters".into(), args);
                    }
                }
            }
            ToolSpec::from_json(&v).map_err(|e| e.to_string())
        })
        .collect()
}

/// The [`Task`] a model is prompted with: for [`AcePrompt::Official`] the
/// two official messages and no tools (render it with a template that
/// adds nothing, such as `qwen2.5`); for a template, the functions as
/// tools and one user turn: what the case's official prompt tells the
/// model besides the functions ([`template_context`]), then the question.
/// (Not a system turn: a template's own system text, such as Tool-N1's,
/// would give way to it.)
pub fn task(case: &AceCase, prompt: &AcePrompt) -> Result<Task, String> {
    let (tools, messages) = match prompt {
        AcePrompt::Official => (Vec::new(), official_messages(case)),
        AcePrompt::Template(_) => {
            let turn = match template_context(case) {
                Some(context) => format!("{context}\n\n{}", case.question),
                None => case.question.clone(),
            };
            (tools(case)?, vec![Message::user(turn)])
        }
    };
    let mut t = Task::new(case.id.clone(), "acebench", tools, messages, Vec::new());
    t.meta
        .insert("acebench_category".into(), case.category.as_str().into());
    Ok(t)
}

/// The verdict on one case, as a line of the verdicts file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AceVerdict {
    /// The case id.
    pub id: String,
    /// The category.
    #[serde(serialize_with = "category_name")]
    pub category: AceCategory,
    /// Whether the case counts as correct.
    pub valid: bool,
    /// The official error type (`None` when valid; [`NO_COMPLETION`],
    /// [`OFFICIAL_CRASH`] for those cases).
    pub error_type: Option<String>,
    /// The official error text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The reply holds a construct the official decoder evaluates and
    /// this port's does not ([`toolgym_reward::acebench::AceOutcome::decoder_gap`]):
    /// the official verdict may differ.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub decoder_gap: bool,
}

fn category_name<S: serde::Serializer>(c: &AceCategory, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.as_str())
}

/// How replies are judged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AceJudge {
    /// How a reply becomes calls (the official decoder by default).
    pub decoder: AceDecoder,
}

impl AceJudge {
    /// The verdict on `reply` (`None`: no completion, a wrong answer).
    pub fn judge(&self, case: &AceCase, reply: Option<&str>) -> AceVerdict {
        let mut v = AceVerdict {
            id: case.id.clone(),
            category: case.category,
            valid: false,
            error_type: None,
            error: String::new(),
            decoder_gap: false,
        };
        let Some(reply) = reply else {
            v.error_type = Some(NO_COMPLETION.into());
            return v;
        };
        match judge(
            case.category,
            &case.functions,
            &case.answer,
            reply,
            self.decoder,
        ) {
            Ok(o) => {
                v.valid = o.valid;
                v.decoder_gap = o.decoder_gap;
                if !o.valid {
                    v.error_type = Some(o.error_type);
                    v.error = o.error;
                }
            }
            Err(crash) => {
                v.error_type = Some(OFFICIAL_CRASH.into());
                v.error = crash.to_string();
            }
        }
        v
    }

    /// The verdict as a reward [`Verdict`].
    pub fn verdict(&self, case: &AceCase, reply: &str) -> Verdict {
        let v = self.judge(case, Some(reply));
        if v.valid {
            Verdict::ok()
        } else {
            let reason = match v.error_type.as_deref() {
                Some("wrong_output_format") => Reason::FormatError,
                Some(OFFICIAL_CRASH) => Reason::InputError,
                Some(
                    "function_mismatch"
                    | "wrong functions number"
                    | "wrong_function_name"
                    | "simple_function_checker:unclear",
                ) => Reason::WrongName,
                _ => Reason::WrongArgs,
            };
            Verdict::fail(
                reason,
                format!("{}: {}", v.error_type.unwrap_or_default(), v.error),
            )
        }
    }
}

/// Scores of a set of verdicts: per category and the official columns.
#[derive(Clone, Debug, PartialEq)]
pub struct AceReport {
    /// The official summary (per-category scores inside).
    pub summary: AceSummary,
    /// Cases judged without a completion ([`NO_COMPLETION`]), per category
    /// (categories without any left out).
    pub no_completion: BTreeMap<AceCategory, usize>,
    /// Replies with a [decoder gap](AceVerdict::decoder_gap): judged wrong
    /// here, possibly right by the official evaluation.
    pub decoder_gaps: usize,
}

/// Scores `verdicts` (one per case of `cases`, any order) per category
/// the official way (multi-turn conversations from the cases' file order).
/// The cases may be owned or borrowed (`&[AceCase]`, `&[&AceCase]`).
pub fn summarize<C: std::borrow::Borrow<AceCase>>(
    cases: &[C],
    verdicts: &[AceVerdict],
) -> AceReport {
    let valid: HashMap<&str, bool> = verdicts.iter().map(|v| (v.id.as_str(), v.valid)).collect();
    let mut no_completion = BTreeMap::new();
    for v in verdicts {
        if v.error_type.as_deref() == Some(NO_COMPLETION) {
            *no_completion.entry(v.category).or_default() += 1;
        }
    }
    let mut per: BTreeMap<AceCategory, Vec<(&str, bool)>> = BTreeMap::new();
    for c in cases.iter().map(|c| c.borrow()) {
        if let Some(ok) = valid.get(c.id.as_str()) {
            per.entry(c.category)
                .or_default()
                .push((c.id.as_str(), *ok));
        }
    }
    let scores: BTreeMap<AceCategory, CategoryScore> = per
        .iter()
        .map(|(c, v)| (*c, score_category(*c, v)))
        .collect();
    AceReport {
        summary: summarize_scores(&scores),
        no_completion,
        decoder_gaps: verdicts.iter().filter(|v| v.decoder_gap).count(),
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "N/A".into(), |v| format!("{:.1}%", 100.0 * v))
}

impl AceReport {
    /// The report as JSON: per category `{accuracy, correct, total,
    /// no_completion, process?, conversations?}` and the summary columns
    /// (`null` when not computable).
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.summary;
        let cats: serde_json::Map<String, serde_json::Value> = s
            .categories
            .iter()
            .map(|(c, sc)| {
                (
                    c.as_str().to_string(),
                    serde_json::json!({"accuracy": sc.accuracy, "correct": sc.correct, "total": sc.total,
                        "no_completion": self.no_completion.get(c).copied().unwrap_or(0),
                        "process_accuracy": sc.process, "conversations": sc.conversations}),
                )
            })
            .collect();
        serde_json::json!({
            "categories": cats,
            "atom": s.atom, "single_turn": s.single_turn, "multi_turn": s.multi_turn,
            "normal_summary": s.normal, "special_summary": s.special, "summary": s.summary,
            "decoder_gaps": self.decoder_gaps,
        })
    }
}

impl fmt::Display for AceReport {
    /// The table printed by `toolgym eval acebench`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<38} {:>6} {:>6} {:>9}",
            "category", "cases", "valid", "accuracy"
        );
        for (c, sc) in &s.categories {
            let extra = match (sc.conversations, sc.process) {
                (Some(n), Some(p)) => format!("  ({n} conversations, process {:.1}%)", 100.0 * p),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<38} {:>6} {:>6} {:>9}{extra}",
                c.as_str(),
                sc.total,
                sc.correct,
                pct(Some(sc.accuracy))
            );
        }
        let _ = writeln!(
            out,
            "\nOfficial columns (ACEBench generate_result_csv; N/A = a category not run)"
        );
        for (name, v) in [
            ("atom", s.atom),
            ("single_turn", s.single_turn),
            ("multiple_turn", s.multi_turn),
            ("normal_summary", s.normal),
            ("special_summary", s.special),
            ("Summary (agent categories not run: 0)", s.summary),
        ] {
            let _ = writeln!(out, "  {name:<38} {:>9}", pct(v));
        }
        if self.decoder_gaps > 0 {
            let note = toolgym_reward::bfcl::decoder_gap_note(self.decoder_gaps);
            let _ = writeln!(out, "\n{note}");
        }
        f.write_str(&out)
    }
}

/// ACEBench cases as single-turn environments, to generate replies with a
/// local model through the rollout engine: each env renders its case's
/// prompt and scores one reply with the official judge.
pub type AceEnvs = ReplyEnvs<AceCase>;

/// [`AceEnvs`] for `cases`, prompted with `prompt`: for
/// [`AcePrompt::Official`] the tasks are rendered with `render` (a
/// template that adds nothing to a system message without tools, e.g.
/// `qwen2.5`), for a template with that template.
pub fn ace_envs(
    cases: &[AceCase],
    prompt: &AcePrompt,
    judge: AceJudge,
    render: Arc<dyn ChatTemplate>,
) -> AceEnvs {
    let template = match prompt {
        AcePrompt::Template(t) => t.clone(),
        AcePrompt::Official => render,
    };
    ReplyEnvs::new(
        "acebench",
        cases.iter().map(|c| (c.id.clone(), c.clone())).collect(),
        cases
            .iter()
            .map(|c| task(c, prompt).map(Arc::new))
            .collect(),
        template,
        Arc::new(move |case: &AceCase, reply: &str| judge.verdict(case, reply)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A category file with no case is an error (its category vanished
    /// from the table); an id in two category files is an error naming
    /// both (the summary keeps one verdict per id, so both were scored by
    /// whichever came last).
    #[test]
    fn empty_category_files_and_ids_in_two_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data_en");
        std::fs::create_dir_all(data.join("possible_answer")).unwrap();
        let copy = |from: &str, to: &str| {
            for sub in ["", "possible_answer/"] {
                std::fs::copy(
                    Path::new(DATA)
                        .join("data_en")
                        .join(format!("{sub}data_{from}.json")),
                    data.join(format!("{sub}data_{to}.json")),
                )
                .unwrap();
            }
        };
        copy("normal_atom_bool", "normal_atom_bool");
        assert!(load_cases(dir.path(), &[], None).is_ok());
        // The Chinese cases, given as their folder or as the only data of
        // a root, are refused: English prompts and phrases would score
        // them as neither evaluation does.
        let zh = tempfile::tempdir().unwrap();
        let zh_data = zh.path().join("data_all/data_zh");
        std::fs::create_dir_all(zh_data.join("possible_answer")).unwrap();
        let inside = zh_data.join("possible_answer/..");
        for root in [zh.path().to_path_buf(), zh_data.clone(), inside] {
            let e = load_cases(&root, &[], None).unwrap_err().to_string();
            assert!(e.contains("ACEBench's Chinese cases (data_zh)"), "{e}");
        }
        // Beside English data, the English data is read.
        let en = zh.path().join("data_all/data_en");
        std::fs::create_dir_all(&en).unwrap();
        std::fs::rename(&data, &en).unwrap();
        assert!(load_cases(zh.path(), &[], None).is_ok());
        std::fs::rename(&en, &data).unwrap();
        for sub in ["", "possible_answer/"] {
            std::fs::write(data.join(format!("{sub}data_normal_atom_enum.json")), "").unwrap();
        }
        let e = load_cases(dir.path(), &[], None).unwrap_err().to_string();
        assert!(
            e.contains("data_normal_atom_enum.json:1: the category file holds no case"),
            "{e}"
        );
        copy("normal_atom_bool", "normal_atom_enum");
        let e = load_cases(dir.path(), &[], None).unwrap_err().to_string();
        assert!(
            e.contains("data_normal_atom_enum.json:1:")
                && e.contains("is a case of")
                && e.contains("data_normal_atom_bool.json:1 too"),
            "{e}"
        );
    }

    /// A reply whose arithmetic holds a call (the official decoder `eval`s
    /// it to 3) is judged wrong here and marked: the verdict, the report's
    /// count, its table and its JSON say so.
    #[test]
    fn replies_the_official_decoder_reads_and_this_one_does_not_are_marked() {
        use toolgym_reward::pycall::PyVal;
        let case = AceCase {
            id: "normal_single_turn_single_function_0".into(),
            category: AceCategory::SingleFunction,
            question: "user: Weather in Paris for 3 days.".into(),
            functions: PyVal::from_json(
                &serde_json::json!([{"name": "get_weather", "description": "Weather.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"]}}]),
            ),
            answer: PyVal::from_json(
                &serde_json::json!({"get_weather": {"city": "Paris", "days": 3}}),
            ),
            time: String::new(),
            profile: String::new(),
        };
        let judge = AceJudge::default();
        let plain = judge.judge(&case, Some("[get_weather(city='Paris', days=3)]"));
        assert!(plain.valid && !plain.decoder_gap);
        let gap = judge.judge(&case, Some("[get_weather(city='Paris', days=int('3')+0)]"));
        assert_eq!(gap.error_type.as_deref(), Some("wrong_output_format"));
        assert!(gap.decoder_gap, "{gap:?}");
        let wrong = judge.judge(&case, Some("[get_weather(city='Rome', days=3)]"));
        assert!(!wrong.valid && !wrong.decoder_gap);
        let cases = [case.clone(), case.clone(), case];
        let mut verdicts = vec![plain, gap, wrong];
        for (i, v) in verdicts.iter_mut().enumerate() {
            v.id = format!("normal_single_turn_single_function_{i}");
        }
        let cases: Vec<AceCase> = cases
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                c.id = format!("normal_single_turn_single_function_{i}");
                c
            })
            .collect();
        let report = summarize(&cases, &verdicts);
        assert_eq!(report.decoder_gaps, 1);
        assert_eq!(report.to_json()["decoder_gaps"], 1);
        assert!(
            report
                .to_string()
                .contains("note: 1 reply holds a construct"),
            "{report}"
        );
        assert_eq!(
            serde_json::to_value(&verdicts[1]).unwrap()["decoder_gap"],
            true
        );
        assert!(serde_json::to_value(&verdicts[0])
            .unwrap()
            .get("decoder_gap")
            .is_none());
    }

    const DATA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../reward/tests/fixtures/acebench"
    );

    #[test]
    fn the_fixture_excerpt_loads_with_every_category() {
        let cases = load_cases(Path::new(DATA), &[], None).unwrap();
        assert_eq!(cases.len(), 15 * 20);
        let bool0 = &cases[0];
        assert_eq!(bool0.id, "normal_atom_bool_0");
        // Key order kept: the prompt shows the functions as Python does.
        assert!(official_messages(bool0)[0]
            .content
            .contains("API Specifications:\n[{'name': '"));
        let limited = load_cases(Path::new(DATA), &[AceCategory::Irrelevant], Some(2)).unwrap();
        assert_eq!(limited.len(), 2);
        assert!(tools(&limited[0]).is_ok());
    }

    /// `--limit` takes whole conversations of a multi-turn category: the
    /// official score counts a conversation solved only when all its
    /// turns are, so a cut one could count as solved on its first turns.
    #[test]
    fn a_limit_takes_whole_conversations_in_multi_turn_categories() {
        let ids = |category: AceCategory, limit: usize| -> Vec<String> {
            load_cases(Path::new(DATA), &[category], Some(limit))
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect()
        };
        // Conversation 2 has three turns: a limit of 5 ends in it.
        let adjust = ids(AceCategory::MultiTurnUserAdjust, 5);
        assert_eq!(adjust.len(), 7, "{adjust:?}");
        assert_eq!(adjust.last().unwrap(), "normal_multi_turn_user_adjust_2_2");
        // A limit at a conversation's end takes no more.
        assert_eq!(ids(AceCategory::MultiTurnUserAdjust, 4).len(), 4);
        // Other categories take exactly the limit.
        assert_eq!(ids(AceCategory::AtomBool, 1).len(), 1);
    }

    #[test]
    fn categories_parse_by_name_and_group() {
        assert_eq!(parse_categories(&["all"]).unwrap().len(), 15);
        assert_eq!(
            parse_categories(&["atom", "normal_atom_bool"])
                .unwrap()
                .len(),
            6
        );
        let err = parse_categories(&["nope"]).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("normal_atom_bool"),
            "{err}"
        );
    }

    #[test]
    fn missing_folder_and_bad_lines_are_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("toolgym-ace-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("possible_answer")).unwrap();
        let err = load_cases(&dir, &[], None).unwrap_err();
        assert!(matches!(err, AceError::NoData(_)), "{err}");
        std::fs::write(
            dir.join("data_normal_atom_bool.json"),
            "{\"id\": \"a\", \"question\": \"q\", \"function\": []}\nnot json\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("possible_answer/data_normal_atom_bool.json"),
            "{\"id\": \"a\", \"ground_truth\": {}}\n",
        )
        .unwrap();
        let err = load_cases(&dir, &[], None).unwrap_err().to_string();
        assert!(
            err.contains("data_normal_atom_bool.json:2") && err.contains("not JSON"),
            "{err}"
        );

        // Errors name the record's own line, blank lines counted; a repeated
        // id is refused (it would be judged twice); a count mismatch names
        // the first answer without a question.
        let fails = |questions: &str, answers: &str| {
            std::fs::write(dir.join("data_normal_atom_bool.json"), questions).unwrap();
            std::fs::write(
                dir.join("possible_answer/data_normal_atom_bool.json"),
                answers,
            )
            .unwrap();
            load_cases(&dir, &[], None).unwrap_err().to_string()
        };
        let q = |id: &str| format!("{{\"id\": \"{id}\", \"question\": \"q\", \"function\": []}}\n");
        let a = |id: &str| format!("{{\"id\": \"{id}\", \"ground_truth\": {{}}}}\n");
        let err = fails(
            &format!("{}\n\n{{\"id\": \"b\", \"function\": []}}\n", q("a")),
            &format!("{}{}", a("a"), a("b")),
        );
        assert!(
            err.contains("data_normal_atom_bool.json:4")
                && err.contains("b: no string \"question\""),
            "{err}"
        );
        let err = fails(
            &format!("{}{}", q("a"), q("a")),
            &format!("{}{}", a("a"), a("a")),
        );
        assert!(
            err.contains("data_normal_atom_bool.json:2") && err.contains("id \"a\" repeats line 1"),
            "{err}"
        );
        let err = fails(&q("a"), &format!("{}\n{}", a("a"), a("b")));
        assert!(
            err.contains("possible_answer/data_normal_atom_bool.json:3")
                && err.contains("2 answers for 1 questions"),
            "{err}"
        );
        // `time` and `profile` go into the prompt: absent is empty, any
        // value but a string is refused.
        for (field, value) in [("time", "5"), ("profile", "{}"), ("time", "null")] {
            let err = fails(
                &format!(
                    "{{\"id\": \"a\", \"question\": \"q\", \"function\": [], \"{field}\": {value}}}\n"
                ),
                &a("a"),
            );
            assert!(
                err.contains("data_normal_atom_bool.json:1")
                    && err.contains(&format!("a: \"{field}\" is not a string")),
                "{err}"
            );
        }
        let err = fails(&format!("{}{}", q("a"), q("b")), &a("a"));
        assert!(
            err.contains("possible_answer/data_normal_atom_bool.json:2")
                && err.contains("1 answers for 2 questions"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
