//! Reading a model's reply: the benchmark's `[ApiName(key='value', …)]`
//! form with the official regular expressions' exact semantics, and the
//! Tool-N1 `<tool_call>` JSON form.
//!
//! The official code (`api_call_extraction.py`) finds the call with
//! `re.search(r"\[(\w+)\((.*)\)\]", text)` and reads its parameters with
//! `re.finditer(r"(\w+)\s*=\s*['\"](.+?)['\"]|(\w+)\s*=\s*(\[.*\])|(\w+)\s*=\s*(\w+)", params)`.
//! This module finds the same matches by direct scanning (linear time):
//!
//! * the call is the leftmost `[` followed by a maximal run of word
//!   characters, `(`, and then the **last** `)]` on the same line;
//! * a quoted value runs from its opening quote to the **first** quote of
//!   either kind after at least one character (`'Don't'` gives `Don`);
//! * a `[...]` value runs to the last `]` of the line and stays a string;
//! * a bare value is a run of word characters (`0.5` gives `0`, `-3`
//!   nothing);
//! * a repeated key keeps its last value; nothing else is an error.
//!
//! `\w` is approximated by `char::is_alphanumeric` or `_` (Python's adds no
//! combining marks; the two differ only on letters such as Indic vowel
//! signs). Every value comes out as a string, as in the official parser.

use toolgym_reward::pycall::{float_repr, PyVal};
use toolgym_reward::pyjson::is_py_space;
use toolgym_reward::{Call, Completion, Severity};

/// A call read from a reply: the API name and the parameters, every value
/// a string (the official parser's output; JSON arguments are turned into
/// strings by [`json_argument`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCall {
    /// The API name.
    pub name: String,
    /// `(key, value)` in first-seen order (a repeated key keeps its first
    /// position and its last value, like the official dict).
    pub params: Vec<(String, String)>,
}

impl ParsedCall {
    /// The call written back in the benchmark's form,
    /// `[Name(k='v', k2='v2')]` (values starting with `[` are left
    /// unquoted, as a model writes lists).
    pub fn to_bracket(&self) -> String {
        bracket_call(
            &self.name,
            self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
}

/// `[Name(k='v', …)]`: values that start with `[` are written bare (the
/// parser reads them back as the same string); others are quoted with `'`.
pub fn bracket_call<'a>(
    name: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let parts: Vec<String> = params
        .into_iter()
        .map(|(k, v)| {
            if v.starts_with('[') {
                format!("{k}={v}")
            } else {
                format!("{k}='{v}'")
            }
        })
        .collect();
    format!("[{name}({})]", parts.join(", "))
}

fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn is_quote(c: char) -> bool {
    c == '\'' || c == '"'
}

/// `get_api_call`: the text of the first `[Name(...)]` match (the official
/// `match.group(0)`), or `None` ("No API call found"), with the name and the
/// parameter text.
pub fn find_call(text: &str) -> Option<(&str, &str, &str)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let byte = |i: usize| chars.get(i).map_or(text.len(), |c| c.0);
    // For each position, the last `)]` that starts at or after it on the
    // same line (computed backwards, reset at each newline).
    let mut last_close = vec![None; n + 1];
    let mut current: Option<usize> = None;
    for i in (0..n).rev() {
        if chars[i].1 == '\n' {
            current = None;
        } else if chars[i].1 == ')'
            && chars.get(i + 1).is_some_and(|c| c.1 == ']')
            && current.is_none()
        {
            current = Some(i);
        }
        last_close[i] = current;
    }
    let mut i = 0;
    while i < n {
        if chars[i].1 != '[' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < n && is_word(chars[j].1) {
            j += 1;
        }
        if j > i + 1 && j < n && chars[j].1 == '(' {
            if let Some(close) = last_close[j + 1] {
                let whole = &text[byte(i)..byte(close + 2)];
                let name = &text[byte(i + 1)..byte(j)];
                let params = &text[byte(j + 1)..byte(close)];
                return Some((whole, name, params));
            }
        }
        i += 1;
    }
    None
}

/// `parse_api_call` on the parameter text: the official regex's matches.
pub fn parse_params(params: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = params.chars().collect();
    let n = chars.len();
    // End of the word run starting at each position.
    let mut word_end = vec![0; n + 1];
    word_end[n] = n;
    for i in (0..n).rev() {
        word_end[i] = if is_word(chars[i]) {
            word_end[i + 1]
        } else {
            i
        };
    }
    // Next quote at or after each position, and the next newline.
    let mut next_quote = vec![n; n + 1];
    let mut next_newline = vec![n; n + 1];
    for i in (0..n).rev() {
        next_quote[i] = if is_quote(chars[i]) {
            i
        } else {
            next_quote[i + 1]
        };
        next_newline[i] = if chars[i] == '\n' {
            i
        } else {
            next_newline[i + 1]
        };
    }
    // Last `]` of the line at or after each position.
    let mut last_bracket = vec![None; n + 1];
    let mut current = None;
    for i in (0..n).rev() {
        if chars[i] == '\n' {
            current = None;
        } else if chars[i] == ']' && current.is_none() {
            current = Some(i);
        }
        last_bracket[i] = current;
    }
    let skip_space = |mut k: usize| {
        while k < n && is_py_space(chars[k]) {
            k += 1;
        }
        k
    };
    let text = |a: usize, b: usize| chars[a..b].iter().collect::<String>();

    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < n {
        let key_end = word_end[i];
        if key_end == i {
            i += 1;
            continue;
        }
        let eq = skip_space(key_end);
        if eq >= n || chars[eq] != '=' {
            // No position inside this word can start a match either: they
            // all reach the same word end.
            i = key_end;
            continue;
        }
        let v = skip_space(eq + 1);
        let mut matched: Option<(usize, usize, usize)> = None; // (value start, value end, match end)
        if v < n && is_quote(chars[v]) {
            // `['\"](.+?)['\"]`: at least one character (not a newline),
            // then the first quote after it.
            if v + 1 < n && chars[v + 1] != '\n' {
                let close = next_quote[v + 2];
                if close < n && next_newline[v + 1] > close {
                    matched = Some((v + 1, close, close + 1));
                }
            }
        }
        if matched.is_none() && v < n && chars[v] == '[' {
            if let Some(close) = last_bracket[v] {
                matched = Some((v, close + 1, close + 1));
            }
        }
        if matched.is_none() && v < n && is_word(chars[v]) {
            let end = word_end[v];
            matched = Some((v, end, end));
        }
        match matched {
            Some((a, b, end)) => {
                let key = text(i, key_end);
                let value = text(a, b);
                match out.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = value,
                    None => out.push((key, value)),
                }
                i = end;
            }
            // Every position inside this word reaches the same `=` and value.
            None => i = key_end,
        }
    }
    out
}

/// The official reading of a reply: `get_api_call` then `parse_api_call`.
/// `None` is "No API call found".
///
/// ```
/// use toolgym_env::data::apibank::parse_bracket;
/// let c = parse_bracket("Sure. [SendEmail(receiver='a@b.com', content='Don't forget', n=0.5)]").unwrap();
/// assert_eq!(c.name, "SendEmail");
/// assert_eq!(c.params, [("receiver".into(), "a@b.com".into()), ("content".into(), "Don".into()), ("n".into(), "0".into())]);
/// assert!(parse_bracket("[SendEmail(\nreceiver='a')]").is_none());
/// ```
pub fn parse_bracket(reply: &str) -> Option<ParsedCall> {
    let (_, name, params) = find_call(reply)?;
    Some(ParsedCall {
        name: name.to_string(),
        params: parse_params(params),
    })
}

/// A JSON argument as the string the official parser would have produced
/// for the same value written in Python syntax: a string is itself (whole:
/// no quote truncation), an integer its digits, a float its `repr`, a
/// boolean `True` / `False`, `null` `None`, a list or object its Python
/// `repr` (`['a', 'b']`). The API's type conversion then applies as for
/// the bracket form (`int` needs digits, `bool` is `== 'True'`, lists stay
/// strings).
///
/// ```
/// use serde_json::json;
/// use toolgym_env::data::apibank::json_argument;
/// assert_eq!(json_argument(&json!(3)), "3");
/// assert_eq!(json_argument(&json!(true)), "True");
/// assert_eq!(json_argument(&json!(["a", "b"])), "['a', 'b']");
/// assert_eq!(json_argument(&json!("Don't")), "Don't");
/// ```
pub fn json_argument(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => float_repr(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => {
            let py = PyVal::from_json(other);
            match py {
                PyVal::Str(s) => s,
                p => p.repr(),
            }
        }
    }
}

/// A Tool-N1 call as a [`ParsedCall`] (arguments through
/// [`json_argument`]).
pub fn from_tool_call(call: &Call) -> ParsedCall {
    ParsedCall {
        name: call.name.clone(),
        params: call
            .arguments
            .iter()
            .map(|(k, v)| (k.clone(), json_argument(v)))
            .collect(),
    }
}

/// Why a Tool-N1 reply gives no single call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolCallProblem {
    /// No complete `<tool_call>` block.
    NoBlock,
    /// A block is not valid JSON, or not a list of calls.
    Unreadable(String),
    /// The blocks hold no call, or more than one (API-Bank's Call mode
    /// expects exactly one).
    CallCount(usize),
}

/// The one call of a Tool-N1 reply (`<think>` and surrounding text are
/// ignored).
pub fn parse_tool_n1(reply: &str) -> Result<ParsedCall, ToolCallProblem> {
    let c = Completion::parse(reply);
    if let Some(d) = c
        .diagnostics
        .iter()
        .find(|d| matches!(d.severity(), Severity::Json | Severity::Shape))
    {
        return Err(ToolCallProblem::Unreadable(d.to_string()));
    }
    let calls = c.calls.ok_or(ToolCallProblem::NoBlock)?;
    match calls.as_slice() {
        [one] => Ok(from_tool_call(one)),
        other => Err(ToolCallProblem::CallCount(other.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(String, String)> {
        parse_params(s)
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn regex_semantics() {
        assert_eq!(p("a='', b='c'"), kv(&[("a", "', b=")]));
        assert_eq!(
            p("a = \"x\" , b=[1, 2], c=True"),
            kv(&[("a", "x"), ("b", "[1, 2]"), ("c", "True")])
        );
        assert_eq!(p("x=[1], y=[2]"), kv(&[("x", "[1], y=[2]")]));
        assert_eq!(p("n=-3, m=0.5"), kv(&[("m", "0")]));
        assert_eq!(p("a='1', a='2'"), kv(&[("a", "2")]));
        assert_eq!(p("k.key='v'"), kv(&[("key", "v")]));
        assert_eq!(p("a='x\ny', b='z'"), kv(&[("b", "z")]));
        assert_eq!(p("a='\"'"), kv(&[("a", "\"")]));
        assert_eq!(p("a='"), kv(&[]));
        assert_eq!(p("a=''x'"), kv(&[("a", "'x")]));
        let (whole, name, params) = find_call("x [A(b='1')] and [C(d='2')] end").unwrap();
        assert_eq!(
            (whole, name, params),
            ("[A(b='1')] and [C(d='2')]", "A", "b='1')] and [C(d='2'")
        );
        assert!(find_call("[A (b='1')]").is_none());
        assert!(find_call("[(b='1')]").is_none());
        assert_eq!(find_call("[A(b)]\n[B()]").map(|c| c.1), Some("A"));
        assert_eq!(find_call("[A(\n)] [B()]").map(|c| c.1), Some("B"));
        assert_eq!(find_call("[é_1()]").map(|c| c.1), Some("é_1"));
    }
}
