//! Prompts: the official Call-mode prompt (`evaluator.py`), as chat
//! messages and as a [`Task`] with a template that renders it, and a
//! Tool-N1 variant whose tools are the file's APIs.

use super::apis;
use super::parse::{bracket_call, json_argument};
use super::samples::{tool_call_of, ApiBankSample, Turn};
use super::value::{self, get};
use crate::json::dumps;
use crate::message::{Message, Role};
use crate::task::Task;
use crate::template::{ChatTemplate, IM_END, IM_START};
use crate::tool::ToolSpec;
use serde_json::{json, Value};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::Call;

/// The official instruction (`api_call_prompt` in `evaluator.py`),
/// verbatim: it starts with a newline, has trailing spaces after
/// "parameters.", "output." and "Input:", and spells "utterence". The API
/// descriptions follow it.
pub const API_CALL_PROMPT: &str = "\nBased on the given API description and the existing conversation history 1..t, please generate the API request that the AI should call in step t+1 and output it in the format of [ApiName(key1='value1', key2='value2', ...)], replace the ApiName with the actual API name, and replace the key and value with the actual parameters. \nYour output should start with a square bracket \"[\" and end with a square bracket \"]\". Do not output any other explanation or prompt or the result of the API call in your output. \nThis year is 2023.\nInput: \nUser: [User's utterence]\nAI: [AI's utterence]\n\nExpected output:\n[ApiName(key1='value1', key2='value2', ...)]\n\nAPI descriptions:\n";

/// `ToolManager.get_api_description(name)` (`None` for an API outside the
/// 49 the samples use).
pub fn api_description(name: &str) -> Option<String> {
    apis::info(name).map(|a| a.description_line())
}

/// The description lines of the sample's APIs, joined by newlines, in the
/// order of first use in the file (the official order is Python's set
/// order, which changes from run to run).
pub fn api_descriptions(sample: &ApiBankSample) -> String {
    sample
        .apis
        .iter()
        .filter_map(|a| api_description(a))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The system message: [`API_CALL_PROMPT`] then [`api_descriptions`].
pub fn system_prompt(sample: &ApiBankSample) -> String {
    format!("{API_CALL_PROMPT}{}", api_descriptions(sample))
}

/// An earlier call as the official prompt shows it:
/// `[Name(k='v', …)] Response: {str(output)}` (values unescaped, Python
/// `str()` of the output).
pub fn history_call_line(api_name: &str, param_dict: &[(String, PyVal)], result: &PyVal) -> String {
    let params: Vec<String> = param_dict
        .iter()
        .map(|(k, v)| format!("{k}='{}'", v.py_str()))
        .collect();
    let output = get(result, "output").map(PyVal::py_str).unwrap_or_default();
    format!("[{api_name}({})] Response: {output}", params.join(", "))
}

/// The official prompt as chat messages: the system prompt, then each
/// history line (`User` → user, `AI` → assistant, `API` → system
/// [`history_call_line`]).
pub fn prompt_messages(sample: &ApiBankSample) -> Vec<Message> {
    let mut out = vec![Message::system(system_prompt(sample))];
    for t in &sample.history {
        out.push(match t {
            Turn::User(text) => Message::user(text.clone()),
            Turn::Ai(text) => Message::assistant(text.clone()),
            Turn::Api {
                api_name,
                param_dict,
                result,
            } => Message::system(history_call_line(api_name, param_dict, result)),
        });
    }
    out
}

fn meta(sample: &ApiBankSample, style: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("file".into(), json!(sample.file));
    m.insert("sample_index".into(), json!(sample.index));
    m.insert("api_name".into(), json!(sample.api_name));
    m.insert("prompt_style".into(), json!(style));
    m
}

/// The official prompt as a task (render it with [`ApiBankTemplate`]): no
/// tools, [`prompt_messages`], the expected call as ground truth.
pub fn official_task(sample: &ApiBankSample) -> Task {
    Task {
        meta: meta(sample, "official"),
        ..Task::new(
            sample.id.clone(),
            "api-bank",
            Vec::new(),
            prompt_messages(sample),
            vec![sample.expected_tool_call()],
        )
    }
}

/// The sample's APIs as toolgym tools, in order of first use.
pub fn tool_specs(sample: &ApiBankSample) -> Vec<ToolSpec> {
    sample
        .apis
        .iter()
        .filter_map(|a| apis::info(a).map(|i| i.tool_spec()))
        .collect()
}

/// What the official prompt ([`API_CALL_PROMPT`]) tells the model of the
/// date: the dialogues' dates leave the year out ("March 5th"), and the
/// expected calls hold 2023.
pub const THIS_YEAR: &str = "This year is 2023.";

/// The Tool-N1 variant: the file's APIs as tools ([`tool_specs`]), the
/// dialogue as messages (an earlier call is an assistant message with that
/// call, then a tool message `{"name": api, "result": output}`), the
/// expected call as ground truth. Render it with any Tool-N1 template.
/// The first user turn starts with [`THIS_YEAR`], as the official prompt
/// says it (not a system turn: a template's own system text, such as
/// Tool-N1's, would give way to it).
pub fn tool_n1_task(sample: &ApiBankSample) -> Task {
    let mut messages = Vec::new();
    for t in &sample.history {
        match t {
            Turn::User(text) => {
                let text = if messages.iter().any(|m: &Message| m.role == Role::User) {
                    text.clone()
                } else {
                    format!("{THIS_YEAR}\n\n{text}")
                };
                messages.push(Message::user(text))
            }
            Turn::Ai(text) => messages.push(Message::assistant(text.clone())),
            Turn::Api {
                api_name,
                param_dict,
                result,
            } => {
                let call = tool_call_of(api_name, param_dict, result);
                messages.push(Message::assistant_calls("", vec![call]));
                let output = get(result, "output")
                    .map(value::to_json)
                    .unwrap_or(Value::Null);
                let obs = json!({"name": api_name, "result": output});
                messages.push(Message::tool(api_name.clone(), dumps(&obs, false)));
            }
        }
    }
    Task {
        meta: meta(sample, "tool-n1"),
        ..Task::new(
            sample.id.clone(),
            "api-bank",
            tool_specs(sample),
            messages,
            vec![sample.expected_tool_call()],
        )
    }
}

/// Which prompt a sample gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PromptStyle {
    /// The official prompt ([`official_task`]), replies in the bracket form.
    #[default]
    Official,
    /// The Tool-N1 prompt ([`tool_n1_task`]), replies in `<tool_call>`.
    ToolN1,
}

impl PromptStyle {
    /// The sample as a task in this style.
    pub fn task(self, sample: &ApiBankSample) -> Task {
        match self {
            PromptStyle::Official => official_task(sample),
            PromptStyle::ToolN1 => tool_n1_task(sample),
        }
    }

    /// By name: `official`, `tool-n1`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "official" => Some(PromptStyle::Official),
            "tool-n1" => Some(PromptStyle::ToolN1),
            _ => None,
        }
    }
}

/// Renders official-style tasks as ChatML (Qwen2.5's layout, every message
/// as its own turn, the system prompt included verbatim, no tool section)
/// and writes replies in the benchmark's `[ApiName(key='value')]` form
/// (parameters in the API's declared order), so SFT targets and generation
/// match [`Judge::official`].
///
/// ```
/// use toolgym_env::data::apibank::ApiBankTemplate;
/// use toolgym_env::{ChatTemplate, Message};
/// use toolgym_reward::Call;
/// let t = ApiBankTemplate;
/// let p = t.render_prompt(&[], &[Message::system("S"), Message::user("hi")]);
/// assert_eq!(p, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
/// let call = Call::new("PlayMusic", serde_json::json!({"music_name": "Yesterday"})).unwrap();
/// assert_eq!(t.render_reply(None, &[call]), "[PlayMusic(music_name='Yesterday')]");
/// ```
///
/// [`Judge::official`]: crate::data::apibank::Judge::official
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiBankTemplate;

impl ChatTemplate for ApiBankTemplate {
    fn name(&self) -> &str {
        "api-bank"
    }

    fn render_prompt(&self, tools: &[ToolSpec], messages: &[Message]) -> String {
        let mut out = self.render_transcript(tools, messages);
        out.push_str(IM_START);
        out.push_str("assistant\n");
        out
    }

    fn render_transcript(&self, _tools: &[ToolSpec], messages: &[Message]) -> String {
        let mut out = String::new();
        for m in messages {
            let content = match m.role {
                Role::Assistant => self.assistant_text(m),
                _ => m.content.clone(),
            };
            out.push_str(IM_START);
            out.push_str(m.role.as_str());
            out.push('\n');
            out.push_str(&content);
            out.push_str(IM_END);
            out.push('\n');
        }
        out
    }

    /// A raw reply in this format writes each call `Name(…)`.
    fn holds_calls(&self, content: &str, calls: &[Call]) -> bool {
        calls
            .iter()
            .all(|c| content.contains(&format!("{}(", c.name)))
    }

    fn render_reply(&self, _reasoning: Option<&str>, calls: &[Call]) -> String {
        calls
            .iter()
            .map(|c| {
                let mut params: Vec<(String, String)> = c
                    .arguments
                    .iter()
                    .map(|(k, v)| (k.clone(), json_argument(v)))
                    .collect();
                // The API's own parameter order (unknown keys last).
                if let Some(api) = apis::info(&c.name) {
                    let rank = |k: &str| {
                        api.inputs
                            .iter()
                            .position(|p| p.name == k)
                            .unwrap_or(usize::MAX)
                    };
                    params.sort_by_key(|(k, _)| rank(k));
                }
                bracket_call(
                    &c.name,
                    params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn end_of_turn(&self) -> &str {
        IM_END
    }

    fn uses_reasoning(&self) -> bool {
        false
    }
}
