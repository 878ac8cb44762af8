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
}
