//! The [`RewardRule`] trait that every rule implements, built-in or yours.

use crate::{Call, ToolN1Rule, Verdict};

/// A rule that scores a model's raw completion against what was expected.
///
/// `T` is the ground truth type: a list of calls ([`Call`]) for the Tool-N1
/// rules; other rules (e.g. BFCL's) may expect richer answers.
///
/// Implement it for your own rules; compose rules with
/// [`AllOf`](crate::AllOf) and [`WeightedSum`](crate::WeightedSum).
///
/// ```
/// use toolgym_reward::{Call, Reason, RewardRule, Verdict};
///
/// /// Rewards short answers.
/// struct Brevity;
/// impl RewardRule for Brevity {
///     fn name(&self) -> &str { "brevity" }
///     fn score(&self, completion: &str, _truth: &[Call]) -> Verdict {
///         if completion.len() < 200 { Verdict::ok() } else { Verdict::fail(Reason::FormatError, "too long") }
///     }
/// }
/// assert_eq!(Brevity.score("<think>x</think>", &[]).reward, 1.0);
/// ```
pub trait RewardRule<T: ?Sized = [Call]>: Send + Sync {
    /// A short name for logs and the CLI (e.g. `binary`).
    fn name(&self) -> &str;

    /// Scores one completion. Must not panic on any input.
    fn score(&self, completion: &str, truth: &T) -> Verdict;

    /// The released script's rule, when this is one: batch scorers then
    /// read ground truths straight into its canonical form
    /// ([`ToolN1Rule::score_canonical`]) instead of into [`Call`]s.
    /// Wrappers forward it; other rules keep the default, `None`.
    fn as_tool_n1(&self) -> Option<ToolN1Rule> {
        None
    }

    /// Scores a multi-step episode as one: `turns` are the model's replies
    /// in order (each assistant message of a transcript; the tool results
    /// between them are not the model's and are not scored), `truth` what
    /// the whole episode must achieve. `None` (the default) when the rule
    /// has no episode semantics: the released script's rules score one
    /// reply, and so do BFCL's. The built-in `binary` and `fine-grained`
    /// families judge episodes by [`EpisodeJudgement`](crate::EpisodeJudgement);
    /// [`AllOf`](crate::AllOf) and [`WeightedSum`](crate::WeightedSum)
    /// combine their rules' episode verdicts. Whether it gives `None` must
    /// not depend on `turns` or `truth` ([`scores_episodes`] asks once, with
    /// none). Must not panic.
    ///
    /// ```
    /// use toolgym_reward::{rule_by_name, Call};
    /// use serde_json::json;
    /// let truth = vec![Call::new("find", json!({"q": "x"})).unwrap()];
    /// let turns = [
    ///     "<think>search</think><tool_call>[{\"name\": \"find\", \"arguments\": {\"q\": \"x\"}}]</tool_call>",
    ///     "<think>found it</think>It is there.",
    /// ];
    /// let binary = rule_by_name("binary").unwrap();
    /// assert_eq!(binary.score_episode(&turns, &truth).unwrap().reward, 1.0);
    /// assert!(rule_by_name("tool-n1").unwrap().score_episode(&turns, &truth).is_none());
    /// ```
    fn score_episode(&self, turns: &[&str], truth: &T) -> Option<Verdict> {
        let _ = (turns, truth);
        None
    }
}

/// Whether `rule` scores multi-step episodes. Asked once, with no replies:
/// whether [`RewardRule::score_episode`] gives a verdict must not depend
/// on the input. For the call-list rules (`RewardRule<[Call]>`).
///
/// ```
/// use toolgym_reward::{rule_by_name, scores_episodes};
/// assert!(scores_episodes(&*rule_by_name("binary").unwrap()));
/// assert!(!scores_episodes(&*rule_by_name("tool-n1").unwrap()));
/// ```
pub fn scores_episodes(rule: &dyn RewardRule<[Call]>) -> bool {
    rule.score_episode(&[], &[]).is_some()
}

/// [`RewardRule::score_episode`], or for a rule without episodes an
/// `input_error` verdict saying so ([`NoEpisodes`]): what an episode
/// scorer gives where it cannot refuse up front.
///
/// ```
/// use toolgym_reward::{episode_verdict, rule_by_name, Reason};
/// let v = episode_verdict(&*rule_by_name("tool-n1").unwrap(), &["<tool_call>[]</tool_call>"], &[]);
/// assert_eq!(v.reason, Reason::InputError);
/// ```
pub fn episode_verdict(rule: &dyn RewardRule<[Call]>, turns: &[&str], truth: &[Call]) -> Verdict {
    rule.score_episode(turns, truth).unwrap_or_else(|| {
        Verdict::fail(
            crate::Reason::InputError,
            NoEpisodes::new(rule.name()).to_string(),
        )
    })
}

/// The verdict of `rule` on a model's reply alone (the text it generated,
/// which never holds its prompt), as a rollout scores it: a rule with
/// episode semantics (the binary and fine-grained families) judges it as
/// an episode of one reply, read whole, so an assistant turn header the
/// model wrote in it is text ([`crate::ParseOptions::REPLY`]); any other
/// rule (the released script's, which reads from the last header as the
/// script does; a rule of one's own) scores it as a completion. For a
/// reply without such a header, the same verdict as [`RewardRule::score`].
///
/// ```
/// use serde_json::json;
/// use toolgym_reward::{reply_verdict, rule_by_name, Call, Reason, RewardRule};
/// let truth = [Call::new("f", json!({})).unwrap()];
/// let ok = "<think>t</think><tool_call>[{\"name\": \"f\", \"arguments\": {}}]</tool_call>";
/// let binary = rule_by_name("binary").unwrap();
/// assert_eq!(reply_verdict(&*binary, ok, &truth), binary.score(ok, &truth));
/// let hidden = format!("Sure.\n<|im_start|>assistant\n{ok}");
/// assert_eq!(binary.score(&hidden, &truth).reason, Reason::Ok);
/// assert_eq!(reply_verdict(&*binary, &hidden, &truth).reason, Reason::FormatError);
/// let script = rule_by_name("tool-n1").unwrap();
/// assert_eq!(reply_verdict(&*script, &hidden, &truth).reason, Reason::Ok);
/// ```
pub fn reply_verdict(rule: &dyn RewardRule<[Call]>, reply: &str, truth: &[Call]) -> Verdict {
    rule.score_episode(&[reply], truth)
        .unwrap_or_else(|| rule.score(reply, truth))
}

/// An episode asked of a rule that scores one reply: the error the
/// episode scorers refuse with (the env crate's `EpisodeReward`,
/// [`jsonl::score_jsonl_episodes`](crate::jsonl::score_jsonl_episodes),
/// `toolgym score --episode`, the Python package's `Rule`).
///
/// ```
/// let e = toolgym_reward::NoEpisodes::new("tool-n1");
/// assert!(e.to_string().starts_with("rule \"tool-n1\" scores one reply, not an episode"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "rule {rule:?} scores one reply, not an episode (the released script's rules, BFCL's and \
     rules without `RewardRule::score_episode` have no episode semantics); episodes are \
     scored by the rules of the binary and fine-grained families"
)]
pub struct NoEpisodes {
    /// The rule's name.
    pub rule: String,
}

impl NoEpisodes {
    /// The error for the rule named `rule`.
    pub fn new(rule: &str) -> Self {
        Self { rule: rule.into() }
    }
}

impl<T: ?Sized, R: RewardRule<T> + ?Sized> RewardRule<T> for Box<R> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn score(&self, completion: &str, truth: &T) -> Verdict {
        (**self).score(completion, truth)
    }
    fn as_tool_n1(&self) -> Option<ToolN1Rule> {
        (**self).as_tool_n1()
    }
    fn score_episode(&self, turns: &[&str], truth: &T) -> Option<Verdict> {
        (**self).score_episode(turns, truth)
    }
}

impl<T: ?Sized, R: RewardRule<T> + ?Sized> RewardRule<T> for std::sync::Arc<R> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn score(&self, completion: &str, truth: &T) -> Verdict {
        (**self).score(completion, truth)
    }
    fn as_tool_n1(&self) -> Option<ToolN1Rule> {
        (**self).as_tool_n1()
    }
    fn score_episode(&self, turns: &[&str], truth: &T) -> Option<Verdict> {
        (**self).score_episode(turns, truth)
    }
}
