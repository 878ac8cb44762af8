//! Composing episode rules: all of them must pass, a weighted sum, or a
//! gate in front of a rule. The building blocks of a reward that cannot be
//! gamed by leaving the state alone or by sending broken calls.

use super::rules::{EpisodeRule, EpisodeView};
use std::sync::Arc;
use toolgym_reward::Verdict;

/// Passes when every rule passes; the reward is then the product of their
/// rewards (1 for binary rules). Otherwise the first failing rule's verdict
/// with reward 0: an AND whose reason says which condition failed.
///
/// ```
/// use toolgym_env::env::{AllOf, EpisodeRule, Finished, FnRule, NoToolErrors};
/// use toolgym_reward::{Reason, Verdict};
/// let balance_is_zero = FnRule::new("balance-is-zero", |v: &toolgym_env::env::EpisodeView<'_, i64>| {
///     if *v.state == 0 { Verdict::ok() } else { Verdict::fail(Reason::StateMismatch, "money left") }
/// });
/// let reward: AllOf<i64> = AllOf::new("closed-account")
///     .with(Finished)
///     .with(NoToolErrors::strict())
///     .with(balance_is_zero);
/// assert_eq!(reward.len(), 3);
/// ```
pub struct AllOf<S> {
    name: String,
    rules: Vec<Arc<dyn EpisodeRule<S>>>,
}

impl<S> AllOf<S> {
    /// No rules yet (passes until some are added).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            rules: Vec::new(),
        }
    }

    /// Adds a rule.
    pub fn with(mut self, rule: impl EpisodeRule<S> + 'static) -> Self {
        self.rules.push(Arc::new(rule));
        self
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl<S> EpisodeRule<S> for AllOf<S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        let mut reward = 1.0;
        for rule in &self.rules {
            let v = rule.score(view);
            if !v.is_ok() {
                let detail = format!("{}: {}", rule.name(), v.detail);
                return Verdict::fail(v.reason, detail);
            }
            reward *= v.reward;
        }
        Verdict {
            reward,
            ..Verdict::ok()
        }
    }
}

/// `Σ wᵢ·rewardᵢ`; the reason is the first failing rule's with a non-zero
/// weight (`ok` when none fails). Partial credit: pays for each part.
pub struct WeightedSum<S> {
    name: String,
    rules: Vec<(f64, Arc<dyn EpisodeRule<S>>)>,
}

impl<S> WeightedSum<S> {
    /// No rules yet (reward 0).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            rules: Vec::new(),
        }
    }

    /// Adds a rule with a weight.
    pub fn with(mut self, weight: f64, rule: impl EpisodeRule<S> + 'static) -> Self {
        self.rules.push((weight, Arc::new(rule)));
        self
    }
}

impl<S> EpisodeRule<S> for WeightedSum<S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        let mut reward = 0.0;
        let mut failed: Option<Verdict> = None;
        for (w, rule) in &self.rules {
            if *w == 0.0 {
                // Takes no part: not its reward (a NaN one included), not
                // its reason.
                continue;
            }
            let v = rule.score(view);
            reward += w * v.reward;
            if failed.is_none() && !v.is_ok() {
                failed = Some(Verdict::fail(
                    v.reason,
                    format!("{}: {}", rule.name(), v.detail),
                ));
            }
        }
        match failed {
            Some(f) => Verdict { reward, ..f },
            None => Verdict {
                reward,
                ..Verdict::ok()
            },
        }
    }
}

/// `then`'s verdict, but only when `gate` passes; otherwise reward 0 with
/// the gate's reason. E.g. partial credit for the state, gated on a clean
/// episode.
pub struct Gate<S> {
    gate: Arc<dyn EpisodeRule<S>>,
    then: Arc<dyn EpisodeRule<S>>,
}

impl<S> Gate<S> {
    /// `then` behind `gate`.
    pub fn new(gate: impl EpisodeRule<S> + 'static, then: impl EpisodeRule<S> + 'static) -> Self {
        Self {
            gate: Arc::new(gate),
            then: Arc::new(then),
        }
    }
}

impl<S> EpisodeRule<S> for Gate<S> {
    fn name(&self) -> &str {
        self.then.name()
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        let g = self.gate.score(view);
        if g.is_ok() {
            self.then.score(view)
        } else {
            Verdict::fail(g.reason, format!("{}: {}", self.gate.name(), g.detail))
        }
    }
}
