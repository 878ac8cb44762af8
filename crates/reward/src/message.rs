//! Completions as inference servers return them: OpenAI-style assistant
//! messages (vLLM, SGLang, any OpenAI-compatible server with a tool parser)
//! and chat transcripts (TRL's conversational completions), read into the
//! raw-text form every rule scores.
//!
//! A server that parses tool calls returns
//! `{"role": "assistant", "content": …, "reasoning_content": …,
//! "tool_calls": [{"type": "function", "function": {"name": …,
//! "arguments": "<JSON string>"}}]}` instead of the model's text. Such a
//! message is rendered back into the Hermes / Tool-N1 text the model wrote:
//!
//! ```text
//! <think>{reasoning_content}</think>      (only when reasoning is present)
//! {content}                               (as is, may hold its own <think>)
//! <tool_call>
//! [{"name": …, "arguments": …}, …]         (all calls, in order, one block)
//! </tool_call>
//! ```
//!
//! and the rule scores that text, so every rule of the JSON format treats a
//! message exactly as it treats the equivalent raw reply:
//! - the `<think>` format check reads `reasoning_content` (or `reasoning`,
//!   vLLM's newer name) when present, else the `<think>` block in `content`;
//! - `binary` reads every `<tool_call>` block, so a `content` that still
//!   holds a block besides `tool_calls` counts both; `tool-n1` reads only
//!   the last, which is the `tool_calls` block;
//! - text in `content` besides a think block is "text outside the blocks"
//!   (a format error for `binary`, allowed by its free-text policy);
//! - `arguments` given as a JSON string (the OpenAI form) is embedded as the
//!   JSON it holds, verbatim (numbers keep their spelling: `1.0` stays a
//!   float); a string that is not JSON stays a string, which no rule
//!   matches against an object;
//! - `arguments: ""` (sent by some servers for a call without arguments)
//!   is `{}`;
//! - `<` inside a name or arguments is written `\u003c` (the same JSON
//!   value), so a string holding a tag cannot open or end a block;
//! - a call without `name` keeps its shape, and the rule reports the schema
//!   error.
//!
//! The rendering is the Hermes / Tool-N1 JSON form, so the rules that read
//! Python call syntax (`bfcl-ast-python`, `bfcl-ast-python-strict`) find no
//! Python calls in it and score a message 0; give those rules text.
//!
//! `content` may also be OpenAI's list of parts (`[{"type": "text",
//! "text": …}]`); the text parts are joined. A list of messages is read as a
//! transcript: its last assistant message (a message without `role` counts
//! as one) is the completion, or, scored as an episode ([`episode_texts`]),
//! each of its assistant messages is one reply.

use serde_json::{Map, Value};
use std::borrow::Cow;

/// Why a JSON value is not a completion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompletionError {
    /// The value is neither a string, a message object, nor a list of
    /// messages.
    #[error(
        "a completion must be a string, an assistant message object or a list of messages, not {0}"
    )]
    WrongType(&'static str),
    /// A message field has the wrong type.
    #[error("message field {field:?} must be {expected}")]
    Field {
        /// The field (`content`, `tool_calls`, `tool_calls[2]`, …).
        field: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A list of messages holds no assistant message.
    #[error("the list of {0} message(s) holds no assistant message")]
    NoAssistant(usize),
    /// A single message object whose `role` is not `assistant` (a user
    /// or tool message is not the model's reply).
    #[error("a completion message must be the assistant's, not role {0}")]
    NotAssistant(String),
}

/// The raw completion text of a JSON value: a string as is, an assistant
/// message or a transcript rendered as described in the [module
/// docs](self).
///
/// ```
/// use serde_json::json;
/// use toolgym_reward::{completion_text, rule_by_name, Call};
///
/// let message = json!({
///     "role": "assistant",
///     "reasoning_content": "The user wants the weather.",
///     "content": "",
///     "tool_calls": [{"id": "c1", "type": "function", "function": {
///         "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}],
/// });
/// let text = completion_text(&message).unwrap();
/// assert_eq!(text, "<think>The user wants the weather.</think>\n\
///                   <tool_call>\n[{\"name\":\"get_weather\",\"arguments\":{\"city\": \"Paris\"}}]\n</tool_call>");
/// let truth = vec![Call::new("get_weather", json!({"city": "Paris"})).unwrap()];
/// assert_eq!(rule_by_name("binary").unwrap().score(&text, &truth).reward, 1.0);
/// assert_eq!(rule_by_name("tool-n1").unwrap().score(&text, &truth).reward, 1.0);
/// ```
pub fn completion_text(value: &Value) -> Result<Cow<'_, str>, CompletionError> {
    match value {
        Value::String(s) => Ok(Cow::Borrowed(s)),
        Value::Object(message) => render_message(one_reply(message)?).map(Cow::Owned),
        Value::Array(messages) => {
            let last = messages
                .iter()
                .rev()
                .find_map(assistant)
                .ok_or(CompletionError::NoAssistant(messages.len()))?;
            render_message(last).map(Cow::Owned)
        }
        other => Err(CompletionError::WrongType(crate::json_type_name(other))),
    }
}

/// The model's replies of a completion, each as [`completion_text`]
/// renders it, for [`RewardRule::score_episode`](crate::RewardRule::score_episode):
/// a list of messages gives every assistant message (a message without
/// `role` counts as one), in order, the tool results between them left
/// out; a string gives its replies by [`chatml_replies`] (itself when it
/// holds no ChatML turn header); one message gives itself (one whose `role`
/// is not `assistant` is [`CompletionError::NotAssistant`]). Pass the completion, what
/// the model wrote after the prompt (as TRL's tool loop returns it), not a
/// transcript that repeats the prompt's earlier assistant messages.
///
/// ```
/// use serde_json::json;
/// use toolgym_reward::message::episode_texts;
///
/// let completion = json!([
///     {"role": "assistant", "content": "<tool_call>\n{\"name\": \"find\", \"arguments\": {}}\n</tool_call>"},
///     {"role": "tool", "name": "find", "content": "{\"id\": 7}"},
///     {"role": "assistant", "content": "Found it: 7."},
/// ]);
/// let turns = episode_texts(&completion).unwrap();
/// assert_eq!(turns.len(), 2);
/// assert_eq!(turns[1], "Found it: 7.");
/// ```
pub fn episode_texts(value: &Value) -> Result<Vec<Cow<'_, str>>, CompletionError> {
    match value {
        Value::String(text) => Ok(chatml_replies(text)
            .into_iter()
            .map(Cow::Borrowed)
            .collect()),
        Value::Array(messages) => {
            let turns = messages
                .iter()
                .filter_map(assistant)
                .map(|m| render_message(m).map(Cow::Owned))
                .collect::<Result<Vec<_>, _>>()?;
            if turns.is_empty() {
                return Err(CompletionError::NoAssistant(messages.len()));
            }
            Ok(turns)
        }
        other => completion_text(other).map(|t| vec![t]),
    }
}

/// Opens a ChatML turn: `<|im_start|>{role}\n`.
const TURN_START: &str = "<|im_start|>";

/// One turn of a ChatML text ([`chatml_turns`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatTurn<'a> {
    /// The role its header names (`assistant`, `user`, `tool`, …); `None`
    /// for the text before the first header (a response's first reply,
    /// whose header ended the prompt).
    pub role: Option<&'a str>,
    /// The turn's text after its header, up to the next header (end tokens
    /// and line ends included).
    pub text: &'a str,
}

/// The turns of a text written in ChatML (Qwen's template) with its
/// special tokens kept, as an RL engine's tool loop lays out a multi-turn
/// response (verl's agent loop: the first reply, then
/// `<|im_start|>user\n<tool_response>…<|im_end|>`, then
/// `<|im_start|>assistant\n` and the next reply, …).
///
/// A header is `<|im_start|>`, a role (letters, digits, `_`) and a line
/// end, at the start of the text or right after an end token
/// (`<|im_end|>` or `<|endoftext|>`, then at most one line end): a turn
/// ends with its end token, so a reply cannot open a turn in its middle
/// without writing the end token, and a call argument spelling a header
/// (a JSON string holds no raw line end) splits nothing. The text before
/// the first header is a turn without a role when it is not blank.
///
/// Decoded text cannot tell a special token from the same characters
/// written as plain tokens, so a policy can still spell an end token and a
/// header inside a reply; compare the number of headers with the engine's
/// own turn count where it gives one (`toolgym.verl` does, with verl's
/// `num_turns`).
///
/// ```
/// use toolgym_reward::message::{chatml_turns, ChatTurn};
///
/// let response = "<tool_call>\n{\"name\": \"find\", \"arguments\": {}}\n</tool_call><|im_end|>\n\
///                 <|im_start|>user\n<tool_response>\n{\"id\": 7}\n</tool_response><|im_end|>\n\
///                 <|im_start|>assistant\nFound it.<|im_end|>";
/// let turns = chatml_turns(response);
/// let roles: Vec<_> = turns.iter().map(|t| t.role).collect();
/// assert_eq!(roles, [None, Some("user"), Some("assistant")]);
/// assert_eq!(turns[2], ChatTurn { role: Some("assistant"), text: "Found it.<|im_end|>" });
/// // A header not after an end token is text.
/// assert_eq!(chatml_turns("Sure.\n<|im_start|>user\nhi").len(), 1);
/// ```
pub fn chatml_turns(text: &str) -> Vec<ChatTurn<'_>> {
    // (header start, body start, role) of each header.
    let headers: Vec<(usize, usize, &str)> = text
        .match_indices(TURN_START)
        .filter(|&(i, _)| i == 0 || ends_turn(&text[..i]))
        .filter_map(|(i, _)| {
            // The role's characters, then the line end: read no further
            // (a search for the line end would read on to the text's end
            // from every header of a text without one: quadratic).
            let after = &text[i + TURN_START.len()..];
            let len = after
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .count();
            let rest = &after[len..];
            let eol = match () {
                _ if rest.starts_with("\r\n") => 2,
                _ if rest.starts_with('\n') => 1,
                _ => return None,
            };
            (len > 0).then_some((i, i + TURN_START.len() + len + eol, &after[..len]))
        })
        .collect();
    let first = headers.first().map_or(text.len(), |h| h.0);
    let mut out = Vec::with_capacity(headers.len() + 1);
    if !text[..first].trim().is_empty() || headers.is_empty() {
        out.push(ChatTurn {
            role: None,
            text: &text[..first],
        });
    }
    for (k, &(_, body, role)) in headers.iter().enumerate() {
        let end = headers.get(k + 1).map_or(text.len(), |h| h.0);
        out.push(ChatTurn {
            role: Some(role),
            text: &text[body..end],
        });
    }
    out
}

/// Whether `before` ends with an end token and at most one line end.
fn ends_turn(before: &str) -> bool {
    let before = before
        .strip_suffix("\r\n")
        .or_else(|| before.strip_suffix('\n'))
        .unwrap_or(before);
    crate::END_TOKENS.iter().any(|t| before.ends_with(t))
}

/// The model's replies in a ChatML text ([`chatml_turns`]): the turn
/// before the first header, then every `assistant` turn, in order; turns
/// of other roles (tool results, user messages) are left out. Text without
/// a header is one reply. The end tokens stay in each reply (rules read
/// them as whitespace).
///
/// ```
/// use toolgym_reward::message::chatml_replies;
///
/// let response = "<tool_call>\n{\"name\": \"find\", \"arguments\": {}}\n</tool_call><|im_end|>\n\
///                 <|im_start|>user\n<tool_response>\n{\"id\": 7}\n</tool_response><|im_end|>\n\
///                 <|im_start|>assistant\nFound it.<|im_end|>";
/// let replies = chatml_replies(response);
/// assert_eq!(replies.len(), 2);
/// assert!(replies[0].starts_with("<tool_call>"));
/// assert_eq!(replies[1], "Found it.<|im_end|>");
/// assert_eq!(chatml_replies("no headers"), ["no headers"]);
/// ```
pub fn chatml_replies(text: &str) -> Vec<&str> {
    chatml_turns(text)
        .into_iter()
        .filter(|t| matches!(t.role, None | Some("assistant")))
        .map(|t| t.text)
        .collect()
}

/// A completion given as one message object: the assistant's (no `role`
/// counts as one), else [`CompletionError::NotAssistant`].
fn one_reply(message: &Map<String, Value>) -> Result<&Map<String, Value>, CompletionError> {
    match message.get("role") {
        None | Some(Value::Null) => Ok(message),
        Some(role) if role == "assistant" => Ok(message),
        Some(role) => Err(CompletionError::NotAssistant(role.to_string())),
    }
}

/// The message as an object when it is an assistant's (or has no role).
fn assistant(message: &Value) -> Option<&Map<String, Value>> {
    let m = message.as_object()?;
    match m.get("role") {
        None | Some(Value::Null) => Some(m),
        Some(role) => (role == "assistant").then_some(m),
    }
}

/// Renders one assistant message (see the module docs).
fn render_message(message: &Map<String, Value>) -> Result<String, CompletionError> {
    let mut out = String::new();
    let reasoning = ["reasoning_content", "reasoning"]
        .into_iter()
        .map(|key| text_field(message, key))
        .find(|r| !matches!(r, Ok(None)) && !matches!(r, Ok(Some(t)) if t.is_empty()));
    if let Some(reasoning) = reasoning {
        out.push_str(crate::THINK_OPEN);
        out.push_str(&reasoning?.unwrap_or_default());
        out.push_str(crate::THINK_CLOSE);
        out.push('\n');
    }
    if let Some(content) = text_field(message, "content")? {
        out.push_str(&content);
    }
    match message.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) if calls.is_empty() => {}
        Some(Value::Array(calls)) => {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(crate::TOOL_CALL_OPEN);
            out.push_str("\n[");
            for (i, call) in calls.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_call(call, i, &mut out)?;
            }
            out.push_str("]\n");
            out.push_str(crate::TOOL_CALL_CLOSE);
        }
        Some(_) => {
            return Err(CompletionError::Field {
                field: "tool_calls".into(),
                expected: "a list",
            })
        }
    }
    Ok(out)
}

/// A string field, or OpenAI's list of content parts (text parts joined).
fn text_field<'a>(
    message: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<Cow<'a, str>>, CompletionError> {
    match message.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s))),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match part.get("text") {
                    Some(Value::String(t)) => text.push_str(t),
                    _ if part.get("type").is_some_and(|t| t != "text") => {}
                    _ => {
                        return Err(CompletionError::Field {
                            field: key.to_string(),
                            expected:
                                "a string or a list of {\"type\": \"text\", \"text\": …} parts",
                        })
                    }
                }
            }
            Ok(Some(Cow::Owned(text)))
        }
        Some(_) => Err(CompletionError::Field {
            field: key.to_string(),
            expected: "a string or a list of text parts",
        }),
    }
}

/// One call as `{"name": …, "arguments": …}`, from OpenAI's
/// `{"type": "function", "function": {…}}` or the flat form.
fn render_call(call: &Value, index: usize, out: &mut String) -> Result<(), CompletionError> {
    let not_a_call = || CompletionError::Field {
        field: format!("tool_calls[{index}]"),
        expected: "an object",
    };
    let Value::Object(call) = call else {
        return Err(not_a_call());
    };
    let body = match call.get("function") {
        Some(Value::Object(f)) => f,
        Some(_) => {
            return Err(CompletionError::Field {
                field: format!("tool_calls[{index}].function"),
                expected: "an object",
            })
        }
        None => call,
    };
    out.push('{');
    let mut first = true;
    if let Some(name) = body.get("name") {
        out.push_str("\"name\":");
        push_json(out, &name.to_string());
        first = false;
    }
    if let Some(arguments) = body.get("arguments") {
        if !first {
            out.push(',');
        }
        out.push_str("\"arguments\":");
        match arguments {
            // Servers send "" for a call without arguments.
            Value::String(text) if text.trim().is_empty() => out.push_str("{}"),
            // The OpenAI form: JSON text, embedded verbatim when it is JSON.
            Value::String(text) if is_json(text) => push_json(out, text.trim()),
            other => push_json(out, &other.to_string()),
        }
    }
    out.push('}');
    Ok(())
}

/// Appends JSON text with every `<` written `\u003c` (the same JSON
/// value), so a name or argument holding `<tool_call>`, `</tool_call>` or
/// `<think>` cannot open or close a block. In JSON `<` occurs only inside
/// strings, so numbers keep their spelling.
fn push_json(out: &mut String, json: &str) {
    let mut rest = json;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        out.push_str("\\u003c");
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{rule_by_name, Call, Reason};
    use serde_json::json;

    fn truth() -> Vec<Call> {
        vec![Call::new("f", json!({"x": 1})).unwrap()]
    }

    fn score(rule: &str, value: Value) -> (f64, Reason) {
        let text = completion_text(&value).unwrap();
        let v = rule_by_name(rule).unwrap().score(&text, &truth());
        (v.reward, v.reason)
    }

    #[test]
    fn openai_message_with_think_in_content() {
        let m = json!({"role": "assistant", "content": "<think>ok</think>\n",
            "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]});
        assert_eq!(score("binary", m.clone()), (1.0, Reason::Ok));
        assert_eq!(score("tool-n1", m), (1.0, Reason::Ok));
    }

    #[test]
    fn arguments_as_object_and_flat_calls() {
        let m =
            json!({"reasoning_content": "r", "tool_calls": [{"name": "f", "arguments": {"x": 1}}]});
        assert_eq!(score("binary", m), (1.0, Reason::Ok));
    }

    #[test]
    fn float_spelling_is_kept() {
        let m = json!({"reasoning_content": "r",
            "tool_calls": [{"function": {"name": "f", "arguments": "{\"x\": 1.0}"}}]});
        assert_eq!(score("binary", m).1, Reason::WrongArgs);
    }

    #[test]
    fn no_reasoning_is_a_format_error_for_binary_only() {
        let m = json!({"content": null, "tool_calls": [{"function": {"name": "f", "arguments": "{\"x\": 1}"}}]});
        assert_eq!(score("binary", m.clone()).1, Reason::FormatError);
        assert_eq!(score("binary-no-think", m).0, 1.0);
    }

    #[test]
    fn broken_arguments_and_missing_name_score_zero() {
        let m = json!({"reasoning_content": "r",
            "tool_calls": [{"function": {"name": "f", "arguments": "{\"x\": 1"}}]});
        assert_eq!(score("binary", m.clone()).0, 0.0);
        assert_eq!(score("tool-n1", m).0, 0.0);
        let m =
            json!({"reasoning_content": "r", "tool_calls": [{"function": {"arguments": "{}"}}]});
        assert_eq!(score("binary", m).1, Reason::SchemaError);
    }

    #[test]
    fn closing_tags_in_arguments_and_empty_arguments() {
        // Found by fuzzing (completion_message): an opening tag in a key.
        let value = json!({"x": "a</tool_call>b", "<tool_call>'h": "<think>"});
        let args = serde_json::to_string(&value).unwrap();
        let m = json!({"reasoning_content": "r", "tool_calls": [{"function": {"name": "f", "arguments": args}}]});
        let truth = vec![Call::new("f", value).unwrap()];
        let text = completion_text(&m).unwrap();
        for rule in ["binary", "tool-n1"] {
            let v = rule_by_name(rule).unwrap().score(&text, &truth);
            assert_eq!(v.reason, Reason::Ok, "{rule}: {v:?}");
        }
        let m = json!({"reasoning_content": "r", "tool_calls": [{"function": {"name": "g", "arguments": ""}}]});
        let truth = vec![Call::new("g", json!({})).unwrap()];
        let text = completion_text(&m).unwrap();
        assert_eq!(
            rule_by_name("binary").unwrap().score(&text, &truth).reason,
            Reason::Ok
        );
        assert_eq!(
            rule_by_name("tool-n1").unwrap().score(&text, &truth).reason,
            Reason::Ok
        );
    }

    #[test]
    fn transcripts_use_the_last_assistant_message() {
        let t = json!([
            {"role": "assistant", "content": "<think>a</think><tool_call>[]</tool_call>"},
            {"role": "tool", "content": "{}"},
            {"role": "assistant", "content": [{"type": "text", "text": "<think>b</think>"},
                {"type": "text", "text": "<tool_call>[{\"name\": \"f\", \"arguments\": {\"x\": 1}}]</tool_call>"}]},
        ]);
        assert_eq!(score("binary", t), (1.0, Reason::Ok));
        assert_eq!(
            completion_text(&json!([{"role": "user", "content": "hi"}])),
            Err(CompletionError::NoAssistant(1))
        );
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        assert_eq!(
            completion_text(&json!(3)),
            Err(CompletionError::WrongType("a number"))
        );
        assert!(completion_text(&json!({"content": 3})).is_err());
        assert!(completion_text(&json!({"tool_calls": {}})).is_err());
        assert!(completion_text(&json!({"tool_calls": [3]})).is_err());
        assert!(completion_text(&json!({"tool_calls": [{"function": 3}]})).is_err());
    }
}
