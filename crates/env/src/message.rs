//! Chat messages: the conversation a model sees.

use serde::{Deserialize, Serialize};
use std::fmt;
use toolgym_reward::Call;

/// Who speaks a [`Message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that precede the conversation.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, sent back to the model.
    Tool,
}

impl Role {
    /// The lowercase name used in chat templates (`system`, `user`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// Reads a role as the datasets name it: `user`/`human`,
    /// `assistant`/`gpt`/`function_call`, `tool`/`observation`/`function`,
    /// `system`. Case-insensitive.
    ///
    /// ```
    /// use toolgym_env::Role;
    /// assert_eq!(Role::parse("gpt"), Some(Role::Assistant));
    /// assert_eq!(Role::parse("Observation"), Some(Role::Tool));
    /// assert_eq!(Role::parse("narrator"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Role> {
        match name.trim().to_ascii_lowercase().as_str() {
            "system" => Some(Role::System),
            "user" | "human" => Some(Role::User),
            "assistant" | "gpt" | "function_call" | "model" => Some(Role::Assistant),
            "tool" | "observation" | "function" | "ipython" => Some(Role::Tool),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of a conversation.
///
/// An assistant message that called tools carries the parsed calls in
/// `tool_calls`; its `content` is the raw reply text when known (a model's
/// completion during an episode) or empty (a dataset turn, rendered by the
/// template in the canonical format).
///
/// ```
/// use toolgym_env::{Message, Role};
/// let m = Message::user("What's the weather in Paris?");
/// assert_eq!(m.role, Role::User);
/// let json = serde_json::to_string(&m).unwrap();
/// assert_eq!(json, r#"{"role":"user","content":"What's the weather in Paris?"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// Calls made in this (assistant) message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Call>>,
    /// For a tool message: the tool that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A message with a role and text.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: None,
            name: None,
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// An assistant message that calls tools; `content` is the raw reply
    /// text, or empty to let the template render the calls.
    pub fn assistant_calls(content: impl Into<String>, calls: Vec<Call>) -> Self {
        Self {
            tool_calls: Some(calls),
            ..Self::new(Role::Assistant, content)
        }
    }

    /// A tool-result message from tool `name`.
    pub fn tool(name: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::new(Role::Tool, content)
        }
    }
}
