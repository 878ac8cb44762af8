//! ToolACE (`Team-ACE/ToolACE`): a JSON list of
//! `{"system", "conversations": [{"from", "value"}, ...]}` dialogues.
//!
//! The candidate tools are a JSON list inside the system prompt, after
//! `Here is a list of functions in JSON format that you can invoke:\n` and
//! before `. \nShould you decide to return the function call(s)...`.
//! Speakers are `user`/`assistant`/`tool` (or `human`/`gpt`/`observation`,
//! and `function_call` turns holding JSON calls). An assistant turn that is
//! a bracketed list of Python calls — `[get_weather(city="Paris")]` — is a
//! tool call, read with [`super::pycall`] (the reward crate's Python
//! parser with ToolACE's relaxations: free-form tool and parameter names,
//! JSON constants).
//!
//! The released Tool-N1 data script reads these calls with regular
//! expressions and `ast.literal_eval` per value, so its ground truths
//! differ from this parser's on some turns: it keeps `true`/`null` as the
//! strings `"true"`/`"null"` (JSON constants here), cuts a value at its
//! first `)` (`q='Paris (France)'` gave `"Paris (France"` and lost the
//! arguments after it), reads a tuple as a string, splits a quoted value
//! at a comma, and reads a tool name with a space by its last word; and
//! it keeps what this parser drops with `call_parse_error`: bare words
//! (`base=CHF` as `"CHF"`), positional arguments (ignored), a repeated
//! keyword (the last wins), `1e999` (infinity) and integers past 64 bits.
//! Tasks kept here have the values the turn's Python means; counts of what
//! was dropped are in `dropped.jsonl` by reason.
//!
//! As in the paper, every call turn becomes one single-step task whose
//! context is the turns before it (earlier calls as structured assistant
//! messages, tool results as tool messages). The system text before the
//! tool list is kept as the task's system message when it differs from
//! [`crate::template::TOOL_N1_DEFAULT_SYSTEM`].

use super::{for_each_record, pycall, DataError, DropReason, Dropped, Loaded};
use crate::message::{Message, Role};
use crate::task::Task;
use crate::template::TOOL_N1_DEFAULT_SYSTEM;
use crate::tool::ToolSpec;
use serde_json::Value;
use std::path::Path;
use toolgym_reward::Call;

/// The `source` of ToolACE tasks.
pub const SOURCE: &str = "toolace";

/// The text that introduces the tool list in ToolACE system prompts.
pub const TOOLS_MARKER: &str = "Here is a list of functions in JSON format that you can invoke:";

/// Options for [`convert_record`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolAceOptions {
    /// Also make a "no call" task (empty ground truth) of every plain-text
    /// assistant turn that follows a user turn (Tool-N1's `include_nocall`,
    /// off by default as in the paper's main runs).
    pub no_call_tasks: bool,
}

/// What one record gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Converted {
    /// One task per usable call turn.
    pub tasks: Vec<Task>,
    /// The record (`turn: None`) or the steps that were dropped.
    pub dropped: Vec<Dropped>,
}

/// The tools listed in a ToolACE system prompt, and the system text up to
/// and including the marker line.
///
/// ```
/// let system = "You are an expert. \nHere is a list of functions in JSON format that you can invoke:\n\
///     [{\"name\": \"GetCompetitions\", \"description\": \"List competitions.\", \"parameters\": {\"type\": \"dict\", \"properties\": {}, \"required\": []}, \"required\": null}]. \
///     \nShould you decide to return the function call(s). \nPut it in the format of [func1(params_name=params_value)]\n";
/// let (preamble, tools) = toolgym_env::data::toolace::tools_from_system(system).unwrap();
/// assert_eq!(tools[0].name, "GetCompetitions");
/// assert_eq!(tools[0].parameters["type"], "object");
/// assert!(preamble.ends_with("invoke:\n"));
/// ```
pub fn tools_from_system(system: &str) -> Result<(String, Vec<ToolSpec>), (DropReason, String)> {
    let Some(at) = system.find(TOOLS_MARKER) else {
        return Err((
            DropReason::NoTools,
            "no tool list in the system prompt".into(),
        ));
    };
    let mut end = at + TOOLS_MARKER.len();
    // The line break after the marker stays with the preamble, in either
    // convention.
    if let Some(nl) = ["\r\n", "\n"]
        .into_iter()
        .find(|nl| system[end..].starts_with(nl))
    {
        end += nl.len();
    }
    let preamble = system[..end].to_string();
    let rest = &system[end..];
    // The list follows the marker (after whitespace): a `[` further on
    // (the format line's `[func1(…)]`, say) is not a tool list.
    let open = rest.len() - rest.trim_start().len();
    if !rest[open..].starts_with('[') {
        return Err((
            DropReason::NoTools,
            "no JSON list right after the tool marker".into(),
        ));
    }
    let mut stream = serde_json::Deserializer::from_str(&rest[open..]).into_iter::<Value>();
    let list = match stream.next() {
        Some(Ok(v)) => {
            let text = &rest[open..open + stream.byte_offset()];
            super::exactly_read(text.as_bytes(), &v)
                .map_err(|e| (DropReason::BadTools, format!("tool list: {e}")))?;
            v
        }
        Some(Err(e)) => {
            return Err((
                DropReason::BadTools,
                format!("tool list is not valid JSON: {e}"),
            ))
        }
        None => return Err((DropReason::NoTools, "empty tool list".into())),
    };
    let tools =
        ToolSpec::list_from_json(&list).map_err(|e| (DropReason::BadTools, e.to_string()))?;
    if tools.is_empty() {
        return Err((DropReason::NoTools, "empty tool list".into()));
    }
    Ok((preamble, tools))
}

/// Converts one dialogue into tasks (one per call turn), reporting every
/// dropped record or step.
pub fn convert_record(index: usize, record: &Value, options: ToolAceOptions) -> Converted {
    let mut out = Converted::default();
    let drop = |turn: Option<usize>, reason, detail: String| Dropped {
        source: SOURCE.into(),
        index,
        id: super::record_id(record),
        turn,
        reason,
        detail,
        file: None,
        line: None,
    };
    let (system, turns) = match (record.get("system"), record.get("conversations")) {
        (Some(Value::String(s)), Some(Value::Array(t))) => (s.as_str(), t),
        _ => {
            out.dropped.push(drop(
                None,
                DropReason::BadRecord,
                "expected an object with a string \"system\" and a list \"conversations\"".into(),
            ));
            return out;
        }
    };
    let (preamble, tools) = match tools_from_system(system) {
        Ok(x) => x,
        Err((reason, detail)) => {
            out.dropped.push(drop(None, reason, detail));
            return out;
        }
    };
    // Read the turns up to the first unreadable one: the steps before it
    // make tasks; it and every step after it (whose context would lack
    // it) are dropped as one, said so in the detail.
    let mut parsed = Vec::with_capacity(turns.len());
    let mut unreadable = None;
    for (i, turn) in turns.iter().enumerate() {
        let speaker = turn
            .get("from")
            .or_else(|| turn.get("role"))
            .and_then(Value::as_str);
        let text = turn
            .get("value")
            .or_else(|| turn.get("content"))
            .and_then(Value::as_str);
        match (speaker, text) {
            (Some(speaker), Some(text)) => match Role::parse(speaker) {
                Some(role) => {
                    // Read as Role::parse reads it: spaces around aside.
                    let json_call = speaker.trim().eq_ignore_ascii_case("function_call");
                    parsed.push((role, json_call, text))
                }
                None => {
                    unreadable = Some((i, format!("unknown speaker {speaker:?}")));
                    break;
                }
            },
            _ => {
                unreadable = Some((i, "turn without a string \"from\" and \"value\"".into()));
                break;
            }
        }
    }

    let mut context: Vec<Message> = Vec::new();
    if preamble != TOOL_N1_DEFAULT_SYSTEM {
        context.push(Message::system(preamble));
    }
    let known = |c: &Call| tools.iter().any(|t| t.name == c.name);
    for (i, (role, json_call, text)) in parsed.into_iter().enumerate() {
        // A request to answer: a user turn with text (as xLAM's query).
        let has_user = context
            .iter()
            .any(|m| m.role == Role::User && !m.content.trim().is_empty());
        if role != Role::Assistant {
            context.push(Message::new(role, text));
            continue;
        }
        let trimmed = text.trim();
        let looks_like_calls = json_call || (trimmed.starts_with('[') && trimmed.ends_with(']'));
        if !looks_like_calls {
            if options.no_call_tasks && has_user {
                let t = task(index, i, &tools, &context, Vec::new());
                out.keep_if_readable(t, |e| drop(Some(i), DropReason::Unreadable, e));
            }
            context.push(Message::assistant(text));
            continue;
        }
        let calls = if json_call {
            match super::wide_integer(trimmed) {
                Some(n) => Err(super::wide_integer_drop(n)),
                None => serde_json::from_str(trimmed)
                    .map_err(|e| format!("invalid JSON: {e}"))
                    .and_then(super::calls_exactly_read),
            }
        } else {
            pycall::parse_calls(trimmed).map_err(|e| e.to_string())
        };
        match calls {
            Err(e) => {
                out.dropped.push(drop(
                    Some(i),
                    DropReason::CallParseError,
                    format!("{e}: {}", excerpt(trimmed)),
                ));
                context.push(Message::assistant(text));
            }
            Ok(calls) => {
                if calls.is_empty() {
                    out.dropped
                        .push(drop(Some(i), DropReason::EmptyCallList, excerpt(trimmed)));
                } else if let Some(c) = calls.iter().find(|c| !known(c)) {
                    out.dropped.push(drop(
                        Some(i),
                        DropReason::UnknownTool,
                        format!("calls {:?}, not among the candidate tools", c.name),
                    ));
                } else if !has_user {
                    out.dropped.push(drop(
                        Some(i),
                        DropReason::BadConversation,
                        "a call before any user turn with a request (blank ones are none)".into(),
                    ));
                } else {
                    let t = task(index, i, &tools, &context, calls.clone());
                    out.keep_if_readable(t, |e| drop(Some(i), DropReason::Unreadable, e));
                }
                context.push(Message::assistant_calls("", calls));
            }
        }
    }
    if let Some((i, problem)) = unreadable {
        let later = turns.len() - i - 1;
        out.dropped.push(drop(
            Some(i),
            DropReason::BadConversation,
            format!(
                "{problem}: this turn and the {later} after it give no task (their context would \
                 lack it); the {i} before it are read"
            ),
        ));
    }
    if out.tasks.is_empty() && out.dropped.is_empty() {
        // Counted, so that raw records = kept + dropped ones.
        out.dropped.push(drop(
            None,
            DropReason::NoCall,
            "no assistant turn is a tool call (a bracketed call list alone)".into(),
        ));
    }
    out
}

impl Converted {
    /// Keeps `t`, or drops it (`dropped` of the reader's message) when it
    /// would not read back from a task file.
    fn keep_if_readable(&mut self, t: Task, dropped: impl FnOnce(String) -> Dropped) {
        match super::reads_back(&t) {
            Ok(()) => self.tasks.push(t),
            Err(e) => self.dropped.push(dropped(e)),
        }
    }
}

fn task(
    index: usize,
    turn: usize,
    tools: &[ToolSpec],
    context: &[Message],
    calls: Vec<Call>,
) -> Task {
    Task::new(
        format!("{SOURCE}-{index}-{turn}"),
        SOURCE,
        tools.to_vec(),
        context.to_vec(),
        calls,
    )
}

fn excerpt(s: &str) -> String {
    let mut e: String = s.chars().take(120).collect();
    if e.len() < s.len() {
        e.push('…');
    }
    e
}

/// Reads and converts a ToolACE file (a JSON list, or JSON Lines).
pub fn load(path: &Path, options: ToolAceOptions) -> Result<Loaded, DataError> {
    let mut tasks = Vec::new();
    let mut dropped = Vec::new();
    let raw_records = for_each_record(path, |index, line, record| match record {
        Ok(r) => {
            let c = convert_record(index, &r, options);
            tasks.extend(c.tasks);
            dropped.extend(c.dropped.into_iter().map(|d| Dropped {
                line: d.line.or(Some(line)),
                ..d
            }));
        }
        Err(message) => dropped.push(Dropped {
            source: SOURCE.into(),
            index,
            id: None,
            turn: None,
            reason: DropReason::BadRecord,
            detail: message,
            file: None,
            line: Some(line),
        }),
    })?;
    Ok(Loaded {
        raw_records,
        tasks,
        dropped,
    })
}
