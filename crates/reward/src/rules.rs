//! The built-in rules: the paper's binary reward, its Table 4 ablations on
//! the same parser, and combinators.
//!
//! For the released script's exact behaviour see [`crate::tooln1`].

use crate::matcher::{MatchOutcome, Matcher, NumberMatch};
use crate::parse::{Completion, Diagnostic, ParseOptions, Severity};
use crate::{Call, Reason, RewardRule, Verdict};
use std::convert::Infallible;

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

impl FormatPolicy {
    /// Whether `d` breaks this format. `answer`: the reply is an answer
    /// that needs no tool-call block (a "no call" reply where the policy
    /// accepts one, or the closing answer of an episode), so a missing
    /// block and its text are not faults. JSON and shape problems of a
    /// payload are not format faults ([`is_payload_fault`] tells those).
    ///
    /// ```
    /// use toolgym_reward::{Completion, FormatPolicy};
    /// let policy = FormatPolicy::default();
    /// let reply = Completion::parse("<think>done</think>\nYour balance is 40.");
    /// // Fine as an episode's closing answer, not as a reply that must call.
    /// assert!(!reply.diagnostics.iter().any(|d| policy.is_format_fault(d, true)));
    /// assert!(reply.diagnostics.iter().any(|d| policy.is_format_fault(d, false)));
    /// ```
    pub fn is_format_fault(&self, d: &Diagnostic, answer: bool) -> bool {
        match d {
            Diagnostic::MissingThink => self.require_think,
            Diagnostic::TextOutsideBlocks { .. } => !self.allow_text_outside && !answer,
            Diagnostic::MissingToolCall => !answer,
            d => d.severity() == Severity::Format,
        }
    }

    /// The first format fault ([`FormatPolicy::is_format_fault`]) and the
    /// first payload fault ([`is_payload_fault`]) of a parsed reply.
    fn first_faults(
        &self,
        c: &Completion<'_>,
        answer: bool,
    ) -> (Option<Diagnostic>, Option<Diagnostic>) {
        let find =
            |fault: &dyn Fn(&Diagnostic) -> bool| c.diagnostics.iter().find(|d| fault(d)).cloned();
        (
            find(&|d| self.is_format_fault(d, answer)),
            find(&is_payload_fault),
        )
    }
}

/// Whether `d` is a payload problem: a tool-call block that is not JSON
/// ([`Severity::Json`]) or not a call list ([`Severity::Shape`]).
pub fn is_payload_fault(d: &Diagnostic) -> bool {
    matches!(d.severity(), Severity::Json | Severity::Shape)
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
        let (format_error, payload_error) = policy.first_faults(&c, no_block_ok);
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

/// How a multi-step episode fared: the model's replies in order (calls,
/// more calls after the tool results, then an answer), judged as one
/// against the calls of the whole episode.
///
/// - Every reply that calls is held to the format a one-step reply is held
///   to (think block when required, nothing outside the blocks unless
///   allowed, readable call lists).
/// - The last reply may be the answer instead: no tool-call block, so its
///   text is not a fault, but the think block (when required) and the tags
///   still are. A reply before the last without a block is a format error
///   (only the last reply may answer).
/// - The calls of all replies together are compared with the ground truth,
///   order-free, as one reply's calls are.
/// - Each reply is read whole ([`ParseOptions::REPLY`]: a reply never
///   holds its prompt, so an assistant turn header in it is text).
/// - An episode of one reply is judged exactly as [`Judgement::of`] judges
///   that reply, so scoring episodes agrees with scoring one reply on
///   single-step tasks (an episode of no reply is judged as one empty
///   reply). A lone reply that answers in words is therefore a "no call"
///   reply, right only under
///   [`FormatPolicy::no_call_without_block`] (the multi-turn envs accept it
///   as an answer): set that option where an episode may rightly make no
///   call.
/// - The calls are compared as a multiset: nothing checks that an argument
///   taken from an earlier tool result (an account id) was read from it,
///   nor in which reply a call was made. A policy that knows the id may
///   make both calls in its first reply (so may the envs' `CallsMatch`);
///   check the order or the results with a rule of your own where it
///   matters.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeJudgement {
    /// The first fault over the replies, and how all the calls compare.
    pub judgement: Judgement,
    /// The reply (0-based) of `judgement.format_error`.
    pub format_turn: Option<usize>,
    /// The reply (0-based) of `judgement.payload_error`.
    pub payload_turn: Option<usize>,
    /// How many replies were judged.
    pub turns: usize,
}

impl EpisodeJudgement {
    /// Judges the replies `turns` against the episode's calls `truth`.
    /// Each reply is read whole ([`ParseOptions::REPLY`]): an assistant
    /// turn header inside one is text, not where it starts.
    ///
    /// ```
    /// use serde_json::json;
    /// use toolgym_reward::{Call, EpisodeJudgement, FormatPolicy, Matcher, Reason};
    ///
    /// let truth = vec![
    ///     Call::new("find", json!({"name": "Ann"})).unwrap(),
    ///     Call::new("pay", json!({"to": 7})).unwrap(),
    /// ];
    /// let turns = [
    ///     "<think>look her up</think><tool_call>[{\"name\": \"find\", \"arguments\": {\"name\": \"Ann\"}}]</tool_call>",
    ///     "<think>id 7</think><tool_call>[{\"name\": \"pay\", \"arguments\": {\"to\": 7}}]</tool_call>",
    ///     "<think>paid</think>Done: Ann was paid.",
    /// ];
    /// let policy = FormatPolicy::default();
    /// let j = EpisodeJudgement::of(&turns, &truth, &policy, &Matcher::default());
    /// assert_eq!(j.reason().0, Reason::Ok);
    /// // The right calls, then an answer without its think block.
    /// let j = EpisodeJudgement::of(&[turns[0], turns[1], "Done."], &truth, &policy, &Matcher::default());
    /// assert_eq!(j.reason(), (Reason::FormatError, "reply 3 of 3: no <think> block".into()));
    /// // A step left out.
    /// let j = EpisodeJudgement::of(&[turns[0], turns[2]], &truth, &policy, &Matcher::default());
    /// assert_eq!(j.reason().0, Reason::MissingCall);
    /// ```
    pub fn of(turns: &[&str], truth: &[Call], policy: &FormatPolicy, matcher: &Matcher) -> Self {
        // Each reply is read whole (`ParseOptions::REPLY`), whatever the
        // policy says of completions that may hold their prompt.
        let policy = &FormatPolicy {
            parse: ParseOptions::REPLY,
            ..policy.clone()
        };
        // No reply at all (a ChatML text without an assistant turn) is
        // the empty reply: no format credit, no calls.
        let turns: &[&str] = if turns.is_empty() { &[""] } else { turns };
        if let [only] = turns {
            let judgement = Judgement::of(only, truth, policy, matcher);
            return Self {
                format_turn: judgement.format_error.as_ref().map(|_| 0),
                payload_turn: judgement.payload_error.as_ref().map(|_| 0),
                judgement,
                turns: 1,
            };
        }
        let mut format_error = None;
        let mut payload_error = None;
        let mut calls: Option<Vec<Call>> = None;
        for (i, turn) in turns.iter().enumerate() {
            let c = Completion::parse_with(turn, &policy.parse);
            let answer = i + 1 == turns.len() && c.tool_call_blocks.is_empty();
            let (format, payload) = policy.first_faults(&c, answer);
            format_error = format_error.or(format.map(|d| (i, d)));
            payload_error = payload_error.or(payload.map(|d| (i, d)));
            if let Some(more) = c.calls {
                calls.get_or_insert_with(Vec::new).extend(more);
            }
        }
        let outcome = match (&calls, &payload_error) {
            (Some(calls), None) => Some(matcher.compare(calls, truth)),
            _ => None,
        };
        let (format_turn, format_error) = format_error.unzip();
        let (payload_turn, payload_error) = payload_error.unzip();
        Self {
            judgement: Judgement {
                format_error,
                payload_error,
                outcome,
            },
            format_turn,
            payload_turn,
            turns: turns.len(),
        }
    }

    /// [`Judgement::reason`], its detail naming the reply at fault
    /// (`reply 2 of 3: no <think> block`) in an episode of several.
    pub fn reason(&self) -> (Reason, String) {
        let (reason, detail) = self.judgement.reason();
        let turn = if self.judgement.format_error.is_some() {
            self.format_turn
        } else if self.judgement.payload_error.is_some() {
            self.payload_turn
        } else {
            None
        };
        match turn {
            Some(i) if self.turns > 1 => (
                reason,
                format!("reply {} of {}: {detail}", i + 1, self.turns),
            ),
            _ if self.turns > 1 && reason != Reason::Ok => {
                (reason, format!("the episode's calls: {detail}"))
            }
            _ => (reason, detail),
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
    /// `binary` or `binary-no-think`, `binary-tolerant` where numbers
    /// compare by value (`binary-tolerant-no-think` for both, which no
    /// registered name gives).
    fn name(&self) -> &str {
        let tolerant = matches!(self.matcher.numbers, NumberMatch::Tolerant { .. });
        match (tolerant, self.format.require_think) {
            (false, true) => "binary",
            (false, false) => "binary-no-think",
            (true, true) => "binary-tolerant",
            (true, false) => "binary-tolerant-no-think",
        }
    }

    fn score(&self, completion: &str, truth: &[Call]) -> Verdict {
        binary_verdict(Judgement::of(completion, truth, &self.format, &self.matcher).reason())
    }

    /// 1 iff every reply is well formed and the calls of all replies
    /// together match the ground truth ([`EpisodeJudgement`]).
    fn score_episode(&self, turns: &[&str], truth: &[Call]) -> Option<Verdict> {
        let j = EpisodeJudgement::of(turns, truth, &self.format, &self.matcher);
        Some(binary_verdict(j.reason()))
    }
}

fn binary_verdict((reason, detail): (Reason, String)) -> Verdict {
    if reason == Reason::Ok {
        Verdict::ok()
    } else {
        Verdict::fail(reason, detail)
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
        self.weighted(&j, j.reason())
    }

    /// The format part when every reply is well formed, the match (or
    /// names) part for the calls of all replies together
    /// ([`EpisodeJudgement`]).
    fn score_episode(&self, turns: &[&str], truth: &[Call]) -> Option<Verdict> {
        let j = EpisodeJudgement::of(turns, truth, &self.format, &self.matcher);
        Some(self.weighted(&j.judgement, j.reason()))
    }
}

impl FineGrainedRule {
    fn weighted(&self, j: &Judgement, (reason, detail): (Reason, String)) -> Verdict {
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
        let Ok(v) = self.combine(|rule| Ok::<_, Infallible>(rule.score(completion, truth)));
        v
    }

    /// Combines the rules' episode verdicts; `None` when one of them
    /// scores no episodes.
    fn score_episode(&self, turns: &[&str], truth: &T) -> Option<Verdict> {
        self.combine(|rule| rule.score_episode(turns, truth).ok_or(()))
            .ok()
    }
}

impl<T: ?Sized> AllOf<T> {
    /// The verdict of the rules' verdicts, or the first error `score`
    /// gives (a rule that scores no episodes).
    fn combine<E>(
        &self,
        score: impl Fn(&dyn RewardRule<T>) -> Result<Verdict, E>,
    ) -> Result<Verdict, E> {
        let mut out = Verdict::ok();
        let mut reward = f64::INFINITY;
        for rule in &self.rules {
            let v = score(rule.as_ref())?;
            reward = reward.min(v.reward);
            if out.is_ok() && !v.is_ok() {
                out = Verdict::new(0.0, v.reason, format!("{}: {}", rule.name(), v.detail));
            }
        }
        out.reward = if self.rules.is_empty() { 1.0 } else { reward };
        Ok(out)
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
        let Ok(v) = self.combine(|rule| Ok::<_, Infallible>(rule.score(completion, truth)));
        v
    }

    /// Combines the terms' episode verdicts; `None` when one of them
    /// scores no episodes (terms of weight 0 are skipped, as in `score`).
    fn score_episode(&self, turns: &[&str], truth: &T) -> Option<Verdict> {
        self.combine(|rule| rule.score_episode(turns, truth).ok_or(()))
            .ok()
    }
}

impl<T: ?Sized> WeightedSum<T> {
    /// The verdict of the rules' verdicts, or the first error `score`
    /// gives (a rule that scores no episodes).
    fn combine<E>(
        &self,
        score: impl Fn(&dyn RewardRule<T>) -> Result<Verdict, E>,
    ) -> Result<Verdict, E> {
        let mut out = Verdict::ok();
        let mut reward = 0.0;
        for (w, rule) in &self.terms {
            if *w == 0.0 {
                // A term of weight 0 takes no part: not its reward (a NaN
                // one included), not its reason.
                continue;
            }
            let v = score(rule.as_ref())?;
            reward += w * v.reward;
            if out.is_ok() && !v.is_ok() {
                out = Verdict::new(0.0, v.reason, format!("{}: {}", rule.name(), v.detail));
            }
        }
        out.reward = reward;
        Ok(out)
    }
}
