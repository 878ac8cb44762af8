//! The released Tool-N1 reward script, reproduced bit for bit.
//!
//! `compute_score_v0` in `verl/verl/utils/reward_score/toolcall.py` of
//! NVlabs/Tool-N1 is the reward the paper trained with; `v2`, `v3` and `v4`
//! in the same file are the Table 4 ablations. [`ToolN1Rule`] replays their
//! logic on Python semantics ([`crate::pyjson`]):
//!
//! 1. Cut the text at the last `<|im_start|>assistant` (if present).
//! 2. Take the **last** non-overlapping `<tool_call>(.*?)</tool_call>` match,
//!    `str.strip()` it (Python's notion of whitespace) and `json.loads` it;
//!    a decode error means "no result".
//! 3. A `str` result is `json.loads`-ed once more; a `dict` is wrapped in a
//!    list.
//! 4. Think = both substrings `<think>` and `</think>` occur anywhere in the
//!    cut text (order and nesting are not checked).
//! 5. Every item must be a dict with keys `name` and `arguments`.
//! 6. Counter of `(name, json.dumps(arguments, sort_keys=True))` must equal
//!    the ground truth's; an empty result equals an empty ground truth.
//!
//! Where the script raises (a number or bool as payload reaches
//! `for item in result`; `json.loads` hits `RecursionError` or an integer
//! over 4300 digits), training would crash; here the score is 0 and the
//! verdict's detail names the exception.

use crate::parse::{cut_at_marker, THINK_CLOSE, THINK_OPEN, TOOL_CALL_CLOSE, TOOL_CALL_OPEN};
use crate::pyjson::{self, py_strip, PyJsonError, PyStr, PyValue};
use crate::{Call, MatchOutcome, Reason, RewardRule, Verdict};

/// Which function of the released script to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptVariant {
    /// `compute_score_v0`: the paper's reward (think substrings + exact match).
    V0,
    /// `compute_score_v2`: no think requirement (Table 4, "w/o reasoning").
    V2,
    /// `compute_score_v3`: 0.2 for think + 0.8 for an exact match.
    V3,
    /// `compute_score_v4`: as v3, or 0.2 + 0.2 when only the names match.
    V4,
}

/// The released script as a [`RewardRule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToolN1Rule {
    /// Which function of the script.
    pub variant: ScriptVariant,
}

impl ToolN1Rule {
    /// `compute_score_v0`, the paper's reward.
    pub const V0: ToolN1Rule = ToolN1Rule {
        variant: ScriptVariant::V0,
    };
}

/// What the script computes on the way to its score.
#[derive(Clone, Debug)]
pub struct ScriptTrace {
    /// `"<think>" in s and "</think>" in s`.
    pub think: bool,
    /// The extracted result (after the second decode and dict wrapping), or
    /// why there is none.
    pub result: Result<PyValue, NoResult>,
}

/// Why the script has no result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoResult {
    /// No `<tool_call>…</tool_call>` match.
    NoBlock,
    /// `json.JSONDecodeError` (or `null`): the script's `None`.
    Decode,
    /// `json.loads` raised something else: the script crashes.
    Raises(&'static str),
}

/// `validate_result`'s verdict plus the exception cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Validation {
    /// `validate_format` returned 0.
    BadFormat,
    /// `validate_format` raised `TypeError` (payload a number or bool).
    Raises,
    /// `validate_result` returned 0, 1 or 2, with the closest outcome.
    Level(u8, MatchOutcome),
}

impl ScriptTrace {
    /// Runs the extraction half of the script on `solution_str`.
    pub fn extract(solution_str: &str) -> ScriptTrace {
        let out = cut_at_marker(solution_str);
        let think = out.contains(THINK_OPEN) && out.contains(THINK_CLOSE);
        let result = match last_block(out) {
            None => Err(NoResult::NoBlock),
            Some(content) => decode(pyjson::loads(py_strip(content))).and_then(|v| match v {
                PyValue::Str(s) => decode(pyjson::loads_bytes(&s.0)),
                v => Ok(v),
            }),
        };
        let result = result.map(|v| match v {
            PyValue::Dict(_) => PyValue::List(vec![v]),
            v => v,
        });
        ScriptTrace { think, result }
    }

    fn validate(&self, truth: &[Call]) -> Validation {
        let Ok(result) = &self.result else {
            return Validation::BadFormat;
        };
        let items: &[PyValue] = match result {
            PyValue::List(items) => items,
            // Iterating a str yields 1-char strs, never dicts: only "" passes.
            PyValue::Str(s) if s.0.is_empty() => &[],
            PyValue::Str(_) => return Validation::BadFormat,
            // `for item in 5` raises TypeError.
            _ => return Validation::Raises,
        };
        let well_formed = items.iter().all(|it| {
            matches!(it, PyValue::Dict(_)) && it.get("name").is_some() && it.get("arguments").is_some()
        });
        if !well_formed {
            return Validation::BadFormat;
        }
        let level = validate_result(items, truth);
        Validation::Level(level, outcome(items.len(), truth.len(), level))
    }
}

fn decode(r: Result<PyValue, PyJsonError>) -> Result<PyValue, NoResult> {
    match r {
        Ok(PyValue::None) | Err(PyJsonError::Decode { .. }) => Err(NoResult::Decode),
        Ok(v) => Ok(v),
        Err(e) => Err(NoResult::Raises(e.python_exception())),
    }
}

/// The content of the last non-overlapping `<tool_call>(.*?)</tool_call>`
/// match, as Python's `re.finditer` finds them.
fn last_block(s: &str) -> Option<&str> {
    let mut pos = 0;
    let mut last = None;
    while let Some(open) = s[pos..].find(TOOL_CALL_OPEN) {
        let body = pos + open + TOOL_CALL_OPEN.len();
        let Some(close) = s[body..].find(TOOL_CALL_CLOSE) else {
            break;
        };
        last = Some(&s[body..body + close]);
        pos = body + close + TOOL_CALL_CLOSE.len();
    }
    last
}

/// `validate_result`: 2 = Counters of (name, dumps(arguments)) equal,
/// 1 = Counters of names equal, 0 = otherwise (or a name is unhashable).
fn validate_result(items: &[PyValue], truth: &[Call]) -> u8 {
    if items.is_empty() || truth.is_empty() {
        return if items.len() == truth.len() { 2 } else { 0 };
    }
    let names: Vec<&PyValue> = items.iter().map(|it| it.get("name").unwrap_or(&PyValue::None)).collect();
    if names.iter().any(|n| !n.is_hashable()) {
        return 0; // Counter raises TypeError; the script returns 0.
    }
    if items.len() != truth.len() {
        return 0;
    }
    // Ground-truth names are strings; a str key equals only an equal str
    // (Python compares numbers across int/float/bool, never with str).
    let truth_args: Vec<PyValue> = truth
        .iter()
        .map(|c| PyValue::from_serde_map(&c.arguments))
        .collect();
    let name_is = |n: &PyValue, c: &Call| matches!(n, PyValue::Str(PyStr(b)) if **b == *c.name.as_bytes());
    let full = greedy_multiset(items.len(), |i, j| {
        name_is(names[i], &truth[j])
            && items[i]
                .get("arguments")
                .is_some_and(|a| a.dumps_eq(&truth_args[j]))
    });
    if full {
        return 2;
    }
    if greedy_multiset(items.len(), |i, j| name_is(names[i], &truth[j])) {
        1
    } else {
        0
    }
}

/// Whether a perfect matching exists under an equivalence relation `eq`
/// (greedy is exact for equivalences).
fn greedy_multiset(n: usize, eq: impl Fn(usize, usize) -> bool) -> bool {
    let mut used = vec![false; n];
    (0..n).all(|i| match (0..n).find(|&j| !used[j] && eq(i, j)) {
        Some(j) => {
            used[j] = true;
            true
        }
        None => false,
    })
}

/// The closest [`MatchOutcome`], for the reason code.
fn outcome(predicted: usize, expected: usize, level: u8) -> MatchOutcome {
    use std::cmp::Ordering::*;
    match (predicted.cmp(&expected), level) {
        (Less, _) => MatchOutcome::Missing,
        (Greater, _) => MatchOutcome::Extra,
        (Equal, 2) => MatchOutcome::Match,
        (Equal, 1) => MatchOutcome::WrongArgs,
        (Equal, _) => MatchOutcome::WrongName,
    }
}

impl RewardRule for ToolN1Rule {
    fn name(&self) -> &str {
        match self.variant {
            ScriptVariant::V0 => "tool-n1",
            ScriptVariant::V2 => "tool-n1-no-think",
            ScriptVariant::V3 => "tool-n1-fine",
            ScriptVariant::V4 => "tool-n1-fine-names",
        }
    }

    fn score(&self, completion: &str, truth: &[Call]) -> Verdict {
        let trace = ScriptTrace::extract(completion);
        // Exceptions from json.loads happen before any check.
        if let Err(NoResult::Raises(exc)) = &trace.result {
            return Verdict::fail(
                Reason::JsonError,
                format!("the released script raises {exc} in json.loads here; scored 0"),
            );
        }
        let think_part = match self.variant {
            ScriptVariant::V3 | ScriptVariant::V4 if trace.think => 0.2,
            _ => 0.0,
        };
        let no_think = || Verdict::fail(Reason::FormatError, "no <think> and </think> in the reply");
        if self.variant == ScriptVariant::V0 && trace.result.is_ok() && !trace.think {
            return no_think();
        }
        // v3/v4 keep their 0.2 for think whatever else goes wrong.
        let fail = |reason: Reason, detail: String| Verdict::new(think_part, reason, detail);
        match &trace.result {
            Err(NoResult::NoBlock) => {
                return fail(Reason::FormatError, "no <tool_call>...</tool_call> block".into())
            }
            Err(_) => return fail(Reason::JsonError, "last <tool_call> payload is not JSON (or null)".into()),
            Ok(_) => {}
        }
        match trace.validate(truth) {
            Validation::Raises => Verdict::fail(
                Reason::SchemaError,
                "payload is a number or bool: the released script raises TypeError here; scored 0",
            ),
            Validation::BadFormat => fail(
                Reason::SchemaError,
                "payload is not a list of objects with \"name\" and \"arguments\"".into(),
            ),
            Validation::Level(2, _) => match self.variant {
                ScriptVariant::V0 | ScriptVariant::V2 => Verdict::ok(),
                _ if trace.think => Verdict::new(think_part + 0.8, Reason::Ok, ""),
                _ => Verdict::new(0.8, Reason::FormatError, "no <think> and </think> in the reply"),
            },
            Validation::Level(level, outcome) => {
                let names = if self.variant == ScriptVariant::V4 && level == 1 { 0.2 } else { 0.0 };
                let v = fail(outcome.reason(), format!("calls do not match ({})", outcome.reason()));
                Verdict { reward: v.reward + names, ..v }
            }
        }
    }
}
