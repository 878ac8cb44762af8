//! The built-in rules: the paper's binary reward, its Table 4 ablations on
//! the same parser, and combinators.
//!
//! For the released script's exact behaviour see [`crate::tooln1`].

use crate::matcher::{MatchOutcome, Matcher};
use crate::parse::{Completion, Diagnostic, ParseOptions, Severity};
use crate::{Call, Reason, RewardRule, Verdict};

/// What a completion must look like, shared by [`BinaryRule`] and
/// [`FineGrainedRule`].
#[derive(Clone, Debug, PartialEq)]
pub struct FormatPolicy {
    /// Require one `<think>…</think>` block before the tool calls. Default:
    /// true; false is the paper's "w/o reasoning format" ablation.
    pub require_think: bool,
    /// Allow non-whitespace text outside the blocks. Default: false.
    pub allow_text_outside: bool,
    /// When no call is expected, accept a reply with no `<tool_call>` block at
    /// all (any text after the think block is then the answer). Default:
    /// false, as in the paper, where "no call" is `<tool_call>[]</tool_call>`.
    pub no_call_without_block: bool,
    /// How to read the text.
    pub parse: ParseOptions,
}

impl Default for FormatPolicy {
    fn default() -> Self {
        Self {
            require_think: true,
            allow_text_outside: false,
            no_call_without_block: false,
            parse: ParseOptions::default(),
        }
    }
}

/// How a completion fared, before it is turned into a reward.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The first format problem, if any.
    pub format_error: Option<Diagnostic>,
    /// The first JSON or shape problem, if any.
    pub payload_error: Option<Diagnostic>,
    /// How the calls compare (None when the payload could not be read).
    pub outcome: Option<MatchOutcome>,
}

impl Judgement {
    /// Judges `completion` against `truth` under `policy` and `matcher`.
    pub fn of(completion: &str, truth: &[Call], policy: &FormatPolicy, matcher: &Matcher) -> Self {
        let c = Completion::parse_with(completion, &policy.parse);
        let no_block_ok =
            truth.is_empty() && policy.no_call_without_block && c.tool_call_blocks.is_empty();
        let relevant = |d: &&Diagnostic| match d {
            Diagnostic::MissingThink => policy.require_think,
            Diagnostic::TextOutsideBlocks { .. } => !policy.allow_text_outside && !no_block_ok,
            Diagnostic::MissingToolCall => !no_block_ok,
            d => d.severity() == Severity::Format,
        };
        let format_error = c.diagnostics.iter().find(relevant).cloned();
        let payload_error = c
            .diagnostics
            .iter()
            .find(|d| matches!(d.severity(), Severity::Json | Severity::Shape))
            .cloned();
        let outcome = match (&c.calls, &payload_error) {
            (_, Some(_)) => None,
            (Some(calls), None) => Some(matcher.compare(calls, truth)),
            (None, None) if no_block_ok => Some(MatchOutcome::Match),
            (None, None) => None,
        };
        Judgement {
            format_error,
            payload_error,
            outcome,
        }
    }

    /// The reason a strict rule gives: format first, then payload, then match.
    pub fn reason(&self) -> (Reason, String) {
        if let Some(d) = &self.format_error {
            return (Reason::FormatError, d.to_string());
        }
        if let Some(d) = &self.payload_error {
            let reason = if d.severity() == Severity::Json {
                Reason::JsonError
            } else {
                Reason::SchemaError
            };
            return (reason, d.to_string());
        }
        match self.outcome {
            Some(MatchOutcome::Match) => (Reason::Ok, String::new()),
            Some(o) => (o.reason(), describe(o).to_string()),
            None => (Reason::FormatError, "no tool calls found".to_string()),
        }
    }
}

fn describe(o: MatchOutcome) -> &'static str {
    match o {
        MatchOutcome::Match => "",
        MatchOutcome::Missing => "fewer calls than expected",
        MatchOutcome::Extra => "more calls than expected",
        MatchOutcome::WrongName => "a tool name is not in the ground truth",
        MatchOutcome::WrongArgs => "right tools, wrong arguments",
    }
}

/// The paper's reward: 1 iff the format is right (a think block, then the
/// tool-call block(s)) and the calls match the ground truth; else 0.
///
/// How it differs from the released script ([`crate::ToolN1Rule`]) is
/// listed in the crate documentation.
///
/// ```
/// use toolgym_reward::{BinaryRule, Call, RewardRule, Reason};
/// let truth = vec![Call::new("add", serde_json::json!({"a": 1, "b": 2})).unwrap()];
/// let rule = BinaryRule::default();
/// let good = "<think>add them</think>\n<tool_call>[{\"name\": \"add\", \"arguments\": {\"b\": 2, \"a\": 1}}]</tool_call>";
/// assert_eq!(rule.score(good, &truth).reward, 1.0);
/// let bad = "<tool_call>[{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}]</tool_call>";
/// assert_eq!(rule.score(bad, &truth).reason, Reason::FormatError);
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BinaryRule {
    /// What the completion must look like.
    pub format: FormatPolicy,
    /// How calls are compared.
    pub matcher: Matcher,
}

impl BinaryRule {
    /// The Table 4 ablation "binary w/o reasoning format": no think block needed.
    pub fn without_think() -> Self {
        let mut r = Self::default();
        r.format.require_think = false;
        r
    }
}

impl RewardRule for BinaryRule {
    fn name(&self) -> &str {
        if self.format.require_think {
            "binary"
        } else {
            "binary-no-think"
        }
    }

    fn score(&self, completion: &str, truth: &[Call]) -> Verdict {
        let (reason, detail) =
            Judgement::of(completion, truth, &self.format, &self.matcher).reason();
        if reason == Reason::Ok {
            Verdict::ok()
        } else {
            Verdict::fail(reason, detail)
        }
    }
}

/// The paper's fine-grained ablations (Table 4): `format_weight` for a right
/// format, plus `match_weight` for an exact match, plus (optionally)
/// `name_weight` when only the tool names match.
///
/// Format and match are judged independently, as in the released script's
/// v3 / v4: a correct call without the think block still earns the match part.
#[derive(Clone, Debug, PartialEq)]
pub struct FineGrainedRule {
    /// What the completion must look like for the format part.
    pub format: FormatPolicy,
    /// How calls are compared.
    pub matcher: Matcher,
    /// Reward for a right format (paper: 0.2).
    pub format_weight: f64,
    /// Reward for an exact match (paper: 0.8).
    pub match_weight: f64,
    /// Reward when names match but arguments do not (paper: 0.2, or 0).
    pub name_weight: f64,
}

impl FineGrainedRule {
    /// 0.2 for the format + 0.8 for a full match.
    pub fn format_and_match() -> Self {
        Self {
            format: FormatPolicy::default(),
            matcher: Matcher::default(),
            format_weight: 0.2,
            match_weight: 0.8,
            name_weight: 0.0,
        }
    }

    /// 0.2 for the format + 0.8 for a full match, or + 0.2 for right names.
    pub fn format_and_names() -> Self {
        Self {
            name_weight: 0.2,
            ..Self::format_and_match()
        }
    }
}

impl RewardRule for FineGrainedRule {
    fn name(&self) -> &str {
        if self.name_weight > 0.0 {
            "fine-grained-names"
        } else {
            "fine-grained"
        }
    }

    fn score(&self, completion: &str, truth: &[Call]) -> Verdict {
        let j = Judgement::of(completion, truth, &self.format, &self.matcher);
        let (reason, detail) = j.reason();
        let mut reward = if j.format_error.is_none() {
            self.format_weight
        } else {
            0.0
        };
        match j.outcome {
            Some(MatchOutcome::Match) => reward += self.match_weight,
            Some(o) if o.names_match() => reward += self.name_weight,
            _ => {}
        }
        Verdict::new(reward, reason, detail)
    }
}

/// Passes only when every rule passes: the reward is the smallest of the
/// rules' rewards, the reason the first non-ok one.
pub struct AllOf<T: ?Sized = [Call]> {
    name: String,
    rules: Vec<Box<dyn RewardRule<T>>>,
}

impl<T: ?Sized> AllOf<T> {
    /// Combines `rules` under `name`.
    pub fn new(name: impl Into<String>, rules: Vec<Box<dyn RewardRule<T>>>) -> Self {
        Self {
            name: name.into(),
            rules,
        }
    }
}

impl<T: ?Sized> RewardRule<T> for AllOf<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, completion: &str, truth: &T) -> Verdict {
        let mut out = Verdict::ok();
        let mut reward = f64::INFINITY;
        for rule in &self.rules {
            let v = rule.score(completion, truth);
            reward = reward.min(v.reward);
            if out.is_ok() && !v.is_ok() {
                out = Verdict::new(0.0, v.reason, format!("{}: {}", rule.name(), v.detail));
            }
        }
        out.reward = if self.rules.is_empty() { 1.0 } else { reward };
        out
    }
}

/// A weighted sum of rules' rewards; the reason is the first non-ok one.
/// Terms of weight 0 are skipped.
///
/// ```
/// use toolgym_reward::{BinaryRule, RewardRule, WeightedSum};
/// // Half the paper's reward plus half its no-think ablation.
/// let rule = WeightedSum::<[toolgym_reward::Call]>::new("mix", vec![
///     (0.5, Box::new(BinaryRule::default())),
///     (0.5, Box::new(BinaryRule::without_think())),
/// ]);
/// let v = rule.score("<tool_call>[]</tool_call>", &[]);
/// assert_eq!(v.reward, 0.5);
/// ```
pub struct WeightedSum<T: ?Sized = [Call]> {
    name: String,
    terms: Vec<(f64, Box<dyn RewardRule<T>>)>,
}

impl<T: ?Sized> WeightedSum<T> {
    /// Combines `(weight, rule)` terms under `name`.
    pub fn new(name: impl Into<String>, terms: Vec<(f64, Box<dyn RewardRule<T>>)>) -> Self {
        Self {
            name: name.into(),
            terms,
        }
    }
}

impl<T: ?Sized> RewardRule<T> for WeightedSum<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, completion: &str, truth: &T) -> Verdict {
        let mut out = Verdict::ok();
        let mut reward = 0.0;
        for (w, rule) in &self.terms {
            if *w == 0.0 {
                // A term of weight 0 takes no part: not its reward (a NaN
                // one included), not its reason.
                continue;
            }
            let v = rule.score(completion, truth);
            reward += w * v.reward;
            if out.is_ok() && !v.is_ok() {
                out = Verdict::new(0.0, v.reason, format!("{}: {}", rule.name(), v.detail));
            }
        }
        out.reward = reward;
        out
    }
}
