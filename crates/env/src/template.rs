//! Prompts: rendering tools and conversations into the text a model reads
//! (Qwen2.5 ChatML), and the reply text it should write.
//!
//! [`ChatMlTemplate::tool_n1`] reproduces the Tool-N1 prompt: the system
//! message is the dataset's system text (or xLAM's default one) followed by
//! the Tool-N1 tool instructions, tools listed one JSON object per line
//! inside `<tools></tools>`; the conversation is laid out as Qwen2.5's chat
//! template does (tool results grouped into a user turn of
//! `<tool_response>` blocks); the prompt ends with `<|im_start|>assistant\n`.
//!
//! Three known differences from the released pipeline: a ToolACE tool's
//! own top-level keys beside its name, description and parameters (its
//! `"required": null`) are not listed, where the released script dumped
//! the whole tool object ([`crate::ToolSpec`] keeps those three); earlier
//! assistant call turns in a task's context (ToolACE dialogues) are
//! rendered as `<tool_call>\n[...]\n</tool_call>`, where the released
//! script wrote them as `json.dumps` of the already JSON-encoded call list
//! (a quoted, escaped string); and a call argument holding markup-like
//! text (`</tool_call>`, `<think>`, `<|…`) has that `<` written `\u003c`
//! ([`calls_json`]), so the reply reads back as its calls.
//!
//! Implement [`ChatTemplate`] for any other format, or build a
//! [`ChatMlTemplate`] with your own texts.

use crate::json::{dumps, write_string};
use crate::message::{Message, Role};
use crate::task::Task;
use crate::tool::ToolSpec;
use serde_json::Value;
use toolgym_reward::Call;

/// ChatML turn start.
pub const IM_START: &str = "<|im_start|>";
/// ChatML turn end.
pub const IM_END: &str = "<|im_end|>";

/// The default system text of the Tool-N1 data pipeline (used for xLAM,
/// whose records carry none), verbatim from `DEFAULT_PROMPT` in
/// `data_process/data_process.py` of NVlabs/Tool-N1 (read from the public
/// fork `jiangxin3/Tool-N1`). It is ToolACE's own system preamble, with
/// one newline turned into a space as in the script.
pub const TOOL_N1_DEFAULT_SYSTEM: &str = "You are an expert in composing functions. You are given a question and a set of possible functions. \nBased on the question, you will need to make one or more function/tool calls to achieve the purpose. \nIf none of the function can be used, point it out. If the given question lacks the parameters required by the function,\nalso point it out. You should only return the function call in tools call sections. Here is a list of functions in JSON format that you can invoke:\n";

/// The Tool-N1 tool instructions appended to the system text, verbatim
/// from `qwen_tool_prompts` in
/// `verl/examples/data_preprocess/toolcall_preprocess.py` of NVlabs/Tool-N1
/// (read from the public fork `jiangxin3/Tool-N1`), after Python's
/// `str.format` (so `{{` became `{`). `{tools}` marks where the tools go.
pub const TOOL_N1_INSTRUCTIONS: &str = "# Tool\n\nYou are provided with function signatures within <tools></tools> XML tags:\n\n<tools>\n{tools}\n</tools>\n\nIn each action step, you MUST: \n1. Think about the reasoning process in the mind and enclosed your reasoning within <think> </think> XML tags.\n2. Then, provide a json object with function names and arguments within <tool_call></tool_call> XML tags. i.e., <tool_call>[{\"name\": <function-name>, \"arguments\": <args-json-object>}, {\"name\": <function-name2>, \"arguments\": <args-json-object2>}, ...]</tool_call>\n3. Make sure both the reasoning and the tool call steps are included together in one single reply.\nA complete reply example is: <think>To address the query, I need to send the email to Bob and then buy the banana through walmart. </think> <tool_call> [{\"name\": \"email\", \"arguments\": {\"receiver\": \"Bob\", \"content\": \"I will bug banana through walmart\"}}, {\"name\": \"walmart\", \"arguments\": {\"input\": \"banana\"}}]</tool_call>. Please make sure the type of the arguments is correct. \n";

/// The tool instructions of the paper's "w/o reasoning format" ablation.
/// The released code does not include this prompt; it is
/// [`TOOL_N1_INSTRUCTIONS`] with the reasoning step and the think block of
/// the example removed, nothing else changed.
pub const TOOL_N1_NO_REASONING_INSTRUCTIONS: &str = "# Tool\n\nYou are provided with function signatures within <tools></tools> XML tags:\n\n<tools>\n{tools}\n</tools>\n\nIn each action step, you MUST: \n1. Provide a json object with function names and arguments within <tool_call></tool_call> XML tags. i.e., <tool_call>[{\"name\": <function-name>, \"arguments\": <args-json-object>}, {\"name\": <function-name2>, \"arguments\": <args-json-object2>}, ...]</tool_call>\n2. Make sure the tool call step is included in one single reply.\nA complete reply example is: <tool_call> [{\"name\": \"email\", \"arguments\": {\"receiver\": \"Bob\", \"content\": \"I will bug banana through walmart\"}}, {\"name\": \"walmart\", \"arguments\": {\"input\": \"banana\"}}]</tool_call>. Please make sure the type of the arguments is correct. \n";

/// The Tool-N1 tool instructions adapted to multi-turn episodes: the
/// paper's text says every step MUST call a tool, but an episode ends on a
/// reply without one. Here each step either calls tools and waits for
/// their results, or answers in plain text, which ends the episode. The
/// rest of [`TOOL_N1_INSTRUCTIONS`] is unchanged.
pub const TOOL_N1_MULTI_TURN_INSTRUCTIONS: &str = "# Tool\n\nYou are provided with function signatures within <tools></tools> XML tags:\n\n<tools>\n{tools}\n</tools>\n\nIn each action step, you MUST: \n1. Think about the reasoning process in the mind and enclosed your reasoning within <think> </think> XML tags.\n2. Then, either provide a json object with function names and arguments within <tool_call></tool_call> XML tags, i.e., <tool_call>[{\"name\": <function-name>, \"arguments\": <args-json-object>}, {\"name\": <function-name2>, \"arguments\": <args-json-object2>}, ...]</tool_call>, and wait: the results come back within <tool_response></tool_response> XML tags; or, once no further call is needed, answer the user in plain text without any <tool_call>, which ends the conversation.\n3. Make sure both the reasoning and the tool call (or the answer) are included together in one single reply.\nA complete reply example is: <think>To address the query, I need to send the email to Bob and then buy the banana through walmart. </think> <tool_call> [{\"name\": \"email\", \"arguments\": {\"receiver\": \"Bob\", \"content\": \"I will bug banana through walmart\"}}, {\"name\": \"walmart\", \"arguments\": {\"input\": \"banana\"}}]</tool_call>. Please make sure the type of the arguments is correct. \n";

/// Short multi-turn tool instructions for tiny models: call tools and read
/// their results, then answer without a call to finish.
pub const COMPACT_MULTI_TURN_INSTRUCTIONS: &str = "<tools>\n{tools}\n</tools>\nReply <think>why</think> then <tool_call>[{\"name\": ..., \"arguments\": {...}}]</tool_call>; results come back in <tool_response>. When done, reply <think>why</think> then the answer, without a tool call.\n";

/// Qwen2.5-Instruct's default system text.
pub const QWEN2_5_DEFAULT_SYSTEM: &str =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

/// Qwen2.5-Instruct's tool instructions, as its chat template appends them
/// to the system text when tools are given.
pub const QWEN2_5_TOOL_INSTRUCTIONS: &str = "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>";

/// A short system text for tiny models (the built-in demo).
pub const COMPACT_SYSTEM: &str = "You can call tools.\n";

/// Short tool instructions for tiny models, with reasoning.
pub const COMPACT_INSTRUCTIONS: &str = "<tools>\n{tools}\n</tools>\nReply <think>why</think> then <tool_call>[{\"name\": ..., \"arguments\": {...}}]</tool_call>. Use [] if no tool fits.\n";

/// Short tool instructions for tiny models, without reasoning.
pub const COMPACT_NO_REASONING_INSTRUCTIONS: &str = "<tools>\n{tools}\n</tools>\nReply <tool_call>[{\"name\": ..., \"arguments\": {...}}]</tool_call>. Use [] if no tool fits.\n";

/// Turns tools and a conversation into prompt text, and calls into the
/// reply text a model should produce. Implement it for a custom format
/// (for training, see [`ChatTemplate::end_of_turn`]; the `"\n"` below
/// suits scoring and prompts only).
///
/// ```
/// use toolgym_env::{ChatTemplate, Message, ToolSpec};
/// use toolgym_reward::Call;
///
/// /// A bare-bones template: tool names, then the question.
/// struct Plain;
/// impl ChatTemplate for Plain {
///     fn name(&self) -> &str { "plain" }
///     fn render_prompt(&self, tools: &[ToolSpec], messages: &[Message]) -> String {
///         let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
///         let last = messages.last().map(|m| m.content.as_str()).unwrap_or("");
///         format!("tools: {}\nQ: {last}\nA: ", names.join(", "))
///     }
///     fn render_reply(&self, _reasoning: Option<&str>, calls: &[Call]) -> String {
///         toolgym_env::template::calls_json(calls)
///     }
///     fn end_of_turn(&self) -> &str { "\n" }
///     fn uses_reasoning(&self) -> bool { false }
/// }
/// assert_eq!(Plain.render_prompt(&[], &[Message::user("hi")]), "tools: \nQ: hi\nA: ");
/// ```
pub trait ChatTemplate: Send + Sync {
    /// A short name (`tool-n1`, `compact`, …).
    fn name(&self) -> &str;

    /// The prompt for generation: tools and the conversation so far, ending
    /// where the model's reply starts.
    fn render_prompt(&self, tools: &[ToolSpec], messages: &[Message]) -> String;

    /// The reply that makes `calls` (none: the "no tool fits" reply), with
    /// `reasoning` in the think block when the template uses one; without
    /// the end-of-turn token.
    fn render_reply(&self, reasoning: Option<&str>, calls: &[Call]) -> String;

    /// The token that ends a reply, appended to SFT targets. To train
    /// against the template it must be the text of one of the tokenizer's
    /// end-of-sequence tokens (`<|im_end|>` for ChatML): generation stops
    /// at those ids, not at this text, and the rollout engine expects the
    /// next prompt to continue with the decoded end token (an episode
    /// whose prompt does not is an env failure naming the mismatch).
    fn end_of_turn(&self) -> &str;

    /// Whether replies carry a `<think>` block (so the `binary` rule fits;
    /// otherwise `binary-no-think`).
    fn uses_reasoning(&self) -> bool;

    /// The reply that answers in plain text (no call), with `reasoning` in
    /// the think block when the template uses one; without the end-of-turn
    /// token. Default: `<think>reasoning</think>\ntext`.
    fn render_answer(&self, reasoning: Option<&str>, text: &str) -> String {
        match reasoning {
            Some(r) if self.uses_reasoning() => format!("<think>{r}</think>\n{text}"),
            _ => text.to_string(),
        }
    }

    /// The text of an assistant message as this template renders it: the
    /// raw reply it holds (a model's completion, its calls written in it);
    /// its calls in the canonical format when it has no text (a dataset
    /// turn); and, in OpenAI's form (text beside calls that the text does
    /// not hold, [`ChatTemplate::holds_calls`]), the text, a newline, then
    /// the calls, as Qwen2.5's template renders such a message (the calls
    /// were left out before, so the tool results after them answered calls
    /// the model never saw).
    ///
    /// ```
    /// use toolgym_env::{ChatMlTemplate, ChatTemplate, Message};
    /// use toolgym_reward::Call;
    /// let t = ChatMlTemplate::qwen2_5();
    /// let call = Call::new("get_weather", serde_json::json!({"city": "Oslo"})).unwrap();
    /// let m = Message::assistant_calls("Let me check.", vec![call]);
    /// assert_eq!(
    ///     t.assistant_text(&m),
    ///     "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"
    /// );
    /// ```
    fn assistant_text(&self, m: &Message) -> String {
        match &m.tool_calls {
            Some(calls) if m.content.is_empty() => self.render_reply(None, calls),
            Some(calls) if !calls.is_empty() && !self.holds_calls(&m.content, calls) => {
                format!("{}\n{}", m.content, self.render_reply(None, calls))
            }
            _ => m.content.clone(),
        }
    }

    /// Whether an assistant message's text `content` holds its `calls`
    /// (a raw reply does; OpenAI's form does not). Default: it has a
    /// `<tool_call>` tag.
    fn holds_calls(&self, content: &str, calls: &[Call]) -> bool {
        let _ = calls;
        content.contains(toolgym_reward::TOOL_CALL_OPEN)
    }

    /// The finished conversation, without the header that invites the next
    /// reply (what an episode's last observation shows). Default: the
    /// prompt; templates whose prompt ends with a generation header
    /// should leave it out.
    fn render_transcript(&self, tools: &[ToolSpec], messages: &[Message]) -> String {
        self.render_prompt(tools, messages)
    }

    /// The prompt of a task.
    fn prompt(&self, task: &Task) -> String {
        self.render_prompt(&task.tools, &task.messages)
    }

    /// The SFT target of a task: the canonical reply plus the end-of-turn
    /// token. The think block holds the task's reasoning, or
    /// [`default_reasoning`].
    fn target(&self, task: &Task) -> String {
        let reasoning = task
            .reasoning
            .clone()
            .unwrap_or_else(|| default_reasoning(&task.ground_truth));
        let mut out = self.render_reply(Some(&reasoning), &task.ground_truth);
        out.push_str(self.end_of_turn());
        out
    }
}

/// A reasoning text for tasks that have none: `I need to call f and g.`,
/// or `No tool fits the request.`
pub fn default_reasoning(calls: &[Call]) -> String {
    if calls.is_empty() {
        return "No tool fits the request.".to_string();
    }
    let mut names: Vec<&str> = Vec::new();
    for c in calls {
        if !names.contains(&c.name.as_str()) {
            names.push(&c.name);
        }
    }
    format!("I need to call {}.", names.join(" and "))
}

/// Calls as the JSON list a reply carries: `[{"name": ..., "arguments":
/// {...}}, ...]`, `name` first, Python `json.dumps` spacing, non-ASCII kept.
/// A string holding what a reply's reader takes for markup (`<tool_call>`,
/// `</tool_call>`, `<think>`, `</think>`, `<|…`) has that `<` written
/// `\u003c`, so the reply still reads as the calls it was written from.
///
/// ```
/// use toolgym_reward::Call;
/// let c = Call::new("add", serde_json::json!({"b": 2, "a": 1})).unwrap();
/// assert_eq!(toolgym_env::template::calls_json(&[c]),
///            r#"[{"name": "add", "arguments": {"b": 2, "a": 1}}]"#);
/// let c = Call::new("say", serde_json::json!({"x": "a</tool_call> < b"})).unwrap();
/// assert_eq!(toolgym_env::template::calls_json(&[c]),
///            r#"[{"name": "say", "arguments": {"x": "a\u003c/tool_call> < b"}}]"#);
/// ```
pub fn calls_json(calls: &[Call]) -> String {
    let mut out = String::from("[");
    for (i, c) in calls.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"name\": ");
        write_string(&mut out, &c.name, false);
        out.push_str(", \"arguments\": ");
        out.push_str(&dumps(&Value::Object(c.arguments.clone()), false));
        out.push('}');
    }
    out.push(']');
    escape_markup(out)
}

/// Calls as Qwen2.5 and Hermes write them ([`CallFormat::PerCall`]):
/// one `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>` block per
/// call, joined by newlines, each object as [`calls_json`] writes it.
///
/// ```
/// use toolgym_reward::Call;
/// let c = Call::new("add", serde_json::json!({"a": 1})).unwrap();
/// assert_eq!(toolgym_env::template::call_blocks(&[c.clone(), c]),
///            "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>\n\
///             <tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>");
/// ```
pub fn call_blocks(calls: &[Call]) -> String {
    calls
        .iter()
        .map(|c| {
            let list = calls_json(std::slice::from_ref(c));
            format!("<tool_call>\n{}\n</tool_call>", &list[1..list.len() - 1])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A value as the model reads it in a tool message: compact JSON (as
/// `json.dumps` writes it) with the `<` of markup-like text
/// (`<|im_end|>`, `<tool_call>`) written `\u003c`, the same string to a
/// JSON reader ([`escape_markup`]). A tool's output, or the model's own
/// text echoed back, then cannot become a control token or a fake call
/// block in the model's context. [`crate::MultiTurnEnv`] writes every
/// tool result and format feedback so; a `ToolEnv` written by hand that
/// puts tool output into its prompts should too.
///
/// ```
/// use serde_json::json;
/// let text = toolgym_env::tool_message_text(&json!({"note": "done<|im_end|>", "n": 1}));
/// assert_eq!(text, r#"{"note": "done\u003c|im_end|>", "n": 1}"#);
/// ```
pub fn tool_message_text(value: &serde_json::Value) -> String {
    escape_markup(crate::json::dumps(value, false))
}

/// `json` with the `<` of each markup-like sequence (`<|`, `<tool_call>`,
/// `</tool_call>`, `<tool_response>`, `<think>` and their closings)
/// written `\u003c`. JSON text has `<` only inside strings, where the
/// escape means the same: give it JSON text, not free text.
///
/// ```
/// let escaped = toolgym_env::escape_markup(r#"["a < b", "<tool_call>"]"#.to_string());
/// assert_eq!(escaped, r#"["a < b", "\u003ctool_call>"]"#);
/// ```
pub fn escape_markup(json: String) -> String {
    const MARKUP: [&str; 7] = [
        "tool_call",
        "/tool_call",
        "tool_response",
        "/tool_response",
        "think",
        "/think",
        "|",
    ];
    if !json.contains('<') {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    let mut rest = json.as_str();
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if MARKUP.iter().any(|m| after.starts_with(m)) {
            out.push_str("\\u003c");
        } else {
            out.push('<');
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// How a [`ChatMlTemplate`] writes a reply's calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallFormat {
    /// One block holding the JSON list of calls (Tool-N1):
    /// `<tool_call>\n[{"name": …, "arguments": …}, …]\n</tool_call>`.
    List,
    /// One block per call (Qwen2.5 / Hermes), joined by newlines:
    /// `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>`. A reply
    /// without calls is the reasoning text as a plain answer.
    PerCall,
}

/// How a [`ChatMlTemplate`] lists tools inside `<tools></tools>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolFormat {
    /// One `{"type": "function", "function": {...}}` JSON object per line,
    /// written by Python's `json.dumps` (Tool-N1).
    OpenAiJson {
        /// Render the parameters as the source gave them (xLAM / BFCL
        /// forms), as the released pipeline did; else the normalised schema.
        original_parameters: bool,
        /// Escape non-ASCII as `\uXXXX` (Python's default).
        ensure_ascii: bool,
    },
    /// One `name(param: type, optional?: type) - description` line per tool:
    /// short, for tiny models.
    Signature,
}

/// Qwen2.5-style ChatML: `<|im_start|>role\n…<|im_end|>\n` turns, a system
/// turn of `system text + tool instructions`, ending with
/// `<|im_start|>assistant\n`. Its public fields are the hook for custom
/// texts.
///
/// ```
/// use toolgym_env::{ChatMlTemplate, ChatTemplate, Message, ToolSpec};
/// let t = ChatMlTemplate::compact();
/// let tools = [ToolSpec::builder("add", "Adds.").required("a", "integer", "").required("b", "integer", "").build()];
/// let p = t.render_prompt(&tools, &[Message::user("2+3?")]);
/// assert_eq!(p, "<|im_start|>system\nYou can call tools.\n<tools>\nadd(a: integer, b: integer) - Adds.\n</tools>\n\
/// Reply <think>why</think> then <tool_call>[{\"name\": ..., \"arguments\": {...}}]</tool_call>. Use [] if no tool fits.\n<|im_end|>\n\
/// <|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ChatMlTemplate {
    /// The template's name.
    pub name: String,
    /// The system text when the conversation has no system message of its
    /// own (a leading system message replaces it).
    pub default_system: String,
    /// The tool instructions appended to the system text; `{tools}` is
    /// replaced by the tool list.
    pub tool_instructions: String,
    /// How tools are listed.
    pub tool_format: ToolFormat,
    /// How a reply's calls are written.
    pub call_format: CallFormat,
    /// Leave the tool instructions out when there are no tools (Qwen2.5);
    /// otherwise they are always there.
    pub instructions_only_with_tools: bool,
    /// Whether replies carry a think block.
    pub reasoning: bool,
}

impl ChatMlTemplate {
    /// The Tool-N1 prompt (see the module docs), replies
    /// `<think>…</think>\n<tool_call>\n[...]\n</tool_call>`.
    pub fn tool_n1() -> Self {
        Self {
            name: "tool-n1".into(),
            default_system: TOOL_N1_DEFAULT_SYSTEM.into(),
            tool_instructions: TOOL_N1_INSTRUCTIONS.into(),
            tool_format: ToolFormat::OpenAiJson {
                original_parameters: true,
                ensure_ascii: true,
            },
            call_format: CallFormat::List,
            instructions_only_with_tools: false,
            reasoning: true,
        }
    }

    /// The paper's "w/o reasoning format" ablation: no think instruction,
    /// replies `<tool_call>\n[...]\n</tool_call>`.
    pub fn tool_n1_no_reasoning() -> Self {
        Self {
            name: "tool-n1-no-think".into(),
            tool_instructions: TOOL_N1_NO_REASONING_INSTRUCTIONS.into(),
            reasoning: false,
            ..Self::tool_n1()
        }
    }

    /// A short prompt for tiny models: signature lines, one-line
    /// instructions, same reply format as [`ChatMlTemplate::tool_n1`].
    pub fn compact() -> Self {
        Self {
            name: "compact".into(),
            default_system: COMPACT_SYSTEM.into(),
            tool_instructions: COMPACT_INSTRUCTIONS.into(),
            tool_format: ToolFormat::Signature,
            call_format: CallFormat::List,
            instructions_only_with_tools: false,
            reasoning: true,
        }
    }

    /// Qwen2.5-Instruct's own tool format, as its Hugging Face chat
    /// template renders it: the default system text "You are Qwen, …", the
    /// tool section only when there are tools (one
    /// `{"type": "function", "function": …}` JSON line each, non-ASCII
    /// kept), one `<tool_call>` block per call, no think block. For
    /// Qwen2.5-Instruct checkpoints used with their native format; the
    /// paper's prompt is [`ChatMlTemplate::tool_n1`]. JSON objects (a
    /// tool's parameters, a call's arguments) keep the order their keys
    /// were given in, as the Hugging Face template's `tojson` does.
    pub fn qwen2_5() -> Self {
        Self {
            name: "qwen2.5".into(),
            default_system: QWEN2_5_DEFAULT_SYSTEM.into(),
            tool_instructions: QWEN2_5_TOOL_INSTRUCTIONS.into(),
            tool_format: ToolFormat::OpenAiJson {
                original_parameters: false,
                ensure_ascii: false,
            },
            call_format: CallFormat::PerCall,
            instructions_only_with_tools: true,
            reasoning: false,
        }
    }

    /// The Tool-N1 prompt for multi-turn episodes
    /// ([`TOOL_N1_MULTI_TURN_INSTRUCTIONS`]): call tools and read their
    /// results, answer without a call to finish.
    pub fn tool_n1_multi_turn() -> Self {
        Self {
            name: "tool-n1-multi-turn".into(),
            tool_instructions: TOOL_N1_MULTI_TURN_INSTRUCTIONS.into(),
            ..Self::tool_n1()
        }
    }

    /// The compact prompt for multi-turn episodes
    /// ([`COMPACT_MULTI_TURN_INSTRUCTIONS`]).
    pub fn compact_multi_turn() -> Self {
        Self {
            name: "compact-multi-turn".into(),
            tool_instructions: COMPACT_MULTI_TURN_INSTRUCTIONS.into(),
            ..Self::compact()
        }
    }

    /// [`ChatMlTemplate::compact`] without the think block.
    pub fn compact_no_reasoning() -> Self {
        Self {
            name: "compact-no-think".into(),
            tool_instructions: COMPACT_NO_REASONING_INSTRUCTIONS.into(),
            reasoning: false,
            ..Self::compact()
        }
    }

    /// The tool list as it goes inside `<tools></tools>`.
    pub fn render_tools(&self, tools: &[ToolSpec]) -> String {
        let lines: Vec<String> = tools
            .iter()
            .map(|t| match self.tool_format {
                ToolFormat::OpenAiJson {
                    original_parameters,
                    ensure_ascii,
                } => openai_line(t, original_parameters, ensure_ascii),
                ToolFormat::Signature => signature_line(t),
            })
            .collect();
        lines.join("\n")
    }

    /// The prompt as chat messages, for engines that apply the model's own
    /// chat template (verl's and TRL's datasets): one system message with
    /// the system text and the tool instructions, then the conversation
    /// (its own leading system message, if any, becomes the system text).
    ///
    /// ```
    /// use toolgym_env::{ChatMlTemplate, Message, Role};
    /// let t = ChatMlTemplate::tool_n1();
    /// let chat = t.chat_messages(&[], &[Message::user("hi")]);
    /// assert_eq!((chat[0].role, chat[1].role), (Role::System, Role::User));
    /// assert!(chat[0].content.contains("<tool_call>"));
    /// ```
    pub fn chat_messages(&self, tools: &[ToolSpec], messages: &[Message]) -> Vec<Message> {
        let (own_system, rest) = split_system(messages);
        let mut out = Vec::with_capacity(rest.len() + 1);
        out.push(Message::system(self.system_text(own_system, tools)));
        out.extend_from_slice(rest);
        out
    }

    fn system_text(&self, own: Option<&str>, tools: &[ToolSpec]) -> String {
        let mut s = own.unwrap_or(&self.default_system).to_string();
        if tools.is_empty() && self.instructions_only_with_tools {
            return s;
        }
        s.push_str(
            &self
                .tool_instructions
                .replacen("{tools}", &self.render_tools(tools), 1),
        );
        s
    }
}

/// A leading system message's text, and the rest of the conversation.
fn split_system(messages: &[Message]) -> (Option<&str>, &[Message]) {
    match messages.split_first() {
        Some((first, rest)) if first.role == Role::System => (Some(first.content.as_str()), rest),
        _ => (None, messages),
    }
}

/// The template names [`template_by_name`] knows, with a description.
pub const TEMPLATES: [(&str, &str); 7] = [
    (
        "tool-n1",
        "the Tool-N1 prompt (Qwen2.5 ChatML, JSON tools, think + tool_call)",
    ),
    (
        "tool-n1-no-think",
        "the Tool-N1 prompt without the reasoning instruction (ablation)",
    ),
    (
        "compact",
        "a short prompt for tiny models: signature lines, think + tool_call",
    ),
    (
        "compact-no-think",
        "the short prompt without the reasoning block",
    ),
    (
        "tool-n1-multi-turn",
        "the Tool-N1 prompt for multi-turn episodes (call, read results, answer to finish)",
    ),
    (
        "compact-multi-turn",
        "the short prompt for multi-turn episodes",
    ),
    (
        "qwen2.5",
        "Qwen2.5-Instruct's own tool format (one <tool_call> block per call, no think)",
    ),
];

/// A built-in template by name (see [`TEMPLATES`]).
///
/// ```
/// use toolgym_env::template::template_by_name;
/// use toolgym_env::ChatTemplate;
/// assert!(template_by_name("tool-n1").unwrap().uses_reasoning());
/// assert!(template_by_name("nope").is_none());
/// ```
pub fn template_by_name(name: &str) -> Option<ChatMlTemplate> {
    Some(match name {
        "tool-n1" => ChatMlTemplate::tool_n1(),
        "tool-n1-no-think" => ChatMlTemplate::tool_n1_no_reasoning(),
        "compact" => ChatMlTemplate::compact(),
        "compact-no-think" => ChatMlTemplate::compact_no_reasoning(),
        "tool-n1-multi-turn" => ChatMlTemplate::tool_n1_multi_turn(),
        "compact-multi-turn" => ChatMlTemplate::compact_multi_turn(),
        "qwen2.5" => ChatMlTemplate::qwen2_5(),
        _ => return None,
    })
}

impl ChatTemplate for ChatMlTemplate {
    fn name(&self) -> &str {
        &self.name
    }

    fn render_prompt(&self, tools: &[ToolSpec], messages: &[Message]) -> String {
        let mut out = self.render_transcript(tools, messages);
        out.push_str(IM_START);
        out.push_str("assistant\n");
        out
    }

    fn render_transcript(&self, tools: &[ToolSpec], messages: &[Message]) -> String {
        let (own_system, rest) = split_system(messages);
        let mut out = String::new();
        push_turn(&mut out, "system", &self.system_text(own_system, tools));
        for (i, m) in rest.iter().enumerate() {
            match (m.role, &m.tool_calls) {
                (Role::Tool, _) => {
                    if i == 0 || rest[i - 1].role != Role::Tool {
                        out.push_str(IM_START);
                        out.push_str("user");
                    }
                    out.push_str("\n<tool_response>\n");
                    out.push_str(&m.content);
                    out.push_str("\n</tool_response>");
                    if rest.get(i + 1).is_none_or(|n| n.role != Role::Tool) {
                        out.push_str(IM_END);
                        out.push('\n');
                    }
                }
                (Role::Assistant, Some(_)) => {
                    push_turn(&mut out, "assistant", &self.assistant_text(m));
                }
                (role, _) => push_turn(&mut out, role.as_str(), &m.content),
            }
        }
        out
    }

    fn render_reply(&self, reasoning: Option<&str>, calls: &[Call]) -> String {
        let block = match self.call_format {
            CallFormat::List => format!("<tool_call>\n{}\n</tool_call>", calls_json(calls)),
            CallFormat::PerCall if calls.is_empty() => {
                return reasoning.unwrap_or_default().to_string()
            }
            CallFormat::PerCall => call_blocks(calls),
        };
        match reasoning {
            Some(r) if self.reasoning => format!("<think>{r}</think>\n{block}"),
            _ => block,
        }
    }

    fn end_of_turn(&self) -> &str {
        IM_END
    }

    fn uses_reasoning(&self) -> bool {
        self.reasoning
    }
}

fn push_turn(out: &mut String, role: &str, content: &str) {
    out.push_str(IM_START);
    out.push_str(role);
    out.push('\n');
    out.push_str(content);
    out.push_str(IM_END);
    out.push('\n');
}

/// `{"type": "function", "function": {"name": …, "description": …,
/// "parameters": …}}` as `json.dumps` writes it.
fn openai_line(t: &ToolSpec, original: bool, ascii: bool) -> String {
    let params = if original {
        t.source_parameters()
    } else {
        &t.parameters
    };
    let mut out = String::from("{\"type\": \"function\", \"function\": {\"name\": ");
    write_string(&mut out, &t.name, ascii);
    out.push_str(", \"description\": ");
    write_string(&mut out, &t.description, ascii);
    out.push_str(", \"parameters\": ");
    out.push_str(&dumps(params, ascii));
    out.push_str("}}");
    out
}

/// `name(a: integer, b?: string) - description`.
fn signature_line(t: &ToolSpec) -> String {
    let props = t.parameters.get("properties").and_then(Value::as_object);
    let params: Vec<String> = t
        .parameter_names()
        .into_iter()
        .map(|(name, required)| {
            let schema = props.and_then(|p| p.get(&name));
            let ty = schema.map(type_hint).unwrap_or_else(|| "any".into());
            format!("{name}{}: {ty}", if required { "" } else { "?" })
        })
        .collect();
    let mut line = format!("{}({})", t.name, params.join(", "));
    if !t.description.is_empty() {
        line.push_str(" - ");
        line.push_str(&t.description);
    }
    line
}

fn type_hint(schema: &Value) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let vals: Vec<String> = values
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect();
        return vals.join("|");
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => match schema.get("items") {
            Some(items) => format!("array[{}]", type_hint(items)),
            None => "array".into(),
        },
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ => "any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_results_are_grouped_into_one_user_turn() {
        let t = ChatMlTemplate::compact_no_reasoning();
        let call = Call::new("f", json!({})).unwrap();
        let msgs = vec![
            Message::user("go"),
            Message::assistant_calls("", vec![call.clone(), call]),
            Message::tool("f", "1"),
            Message::tool("f", "2"),
            Message::assistant("done"),
            Message::user("again"),
        ];
        let p = t.render_prompt(&[], &msgs);
        let body = p.split_once("<|im_end|>\n").unwrap().1;
        assert_eq!(
            body,
            "<|im_start|>user\ngo<|im_end|>\n\
             <|im_start|>assistant\n<tool_call>\n[{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"f\", \"arguments\": {}}]\n</tool_call><|im_end|>\n\
             <|im_start|>user\n<tool_response>\n1\n</tool_response>\n<tool_response>\n2\n</tool_response><|im_end|>\n\
             <|im_start|>assistant\ndone<|im_end|>\n\
             <|im_start|>user\nagain<|im_end|>\n\
             <|im_start|>assistant\n"
        );
    }

    #[test]
    fn signatures() {
        let spec = ToolSpec::builder("convert", "Converts.")
            .required("value", "number", "")
            .param(
                "unit",
                json!({"type": "string", "enum": ["km", "mi"]}),
                true,
            )
            .param(
                "tags",
                json!({"type": "array", "items": {"type": "string"}}),
                false,
            )
            .build();
        assert_eq!(
            signature_line(&spec),
            "convert(value: number, unit: km|mi, tags?: array[string]) - Converts."
        );
    }
}
