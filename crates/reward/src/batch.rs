//! Scoring many completions at once, and summarising the verdicts.

use crate::{Reason, RewardRule, Verdict};
use std::collections::BTreeMap;

/// Scores `(completion, truth)` pairs in order on the current thread.
pub fn score_batch<T: ?Sized>(rule: &dyn RewardRule<T>, items: &[(&str, &T)]) -> Vec<Verdict> {
    items.iter().map(|(c, t)| rule.score(c, t)).collect()
}

/// Scores `(completion, truth)` pairs in parallel on rayon's pool; the
/// results are in input order.
///
/// ```
/// use toolgym_reward::{par_score_batch, rule_by_name, Call};
/// let rule = rule_by_name("binary").unwrap();
/// let truth: Vec<Call> = vec![];
/// let items = vec![("<think>.</think><tool_call>[]</tool_call>", &truth[..]); 100];
/// let verdicts = par_score_batch(&*rule, &items);
/// assert!(verdicts.iter().all(|v| v.reward == 1.0));
/// ```
#[cfg(feature = "rayon")]
pub fn par_score_batch<T: ?Sized + Sync>(
    rule: &dyn RewardRule<T>,
    items: &[(&str, &T)],
) -> Vec<Verdict> {
    use rayon::prelude::*;
    items.par_iter().map(|(c, t)| rule.score(c, t)).collect()
}

/// Count, mean reward and a histogram of reasons over many verdicts.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Number of verdicts.
    pub count: usize,
    /// Mean reward (0 when empty).
    pub mean_reward: f64,
    /// Share of verdicts with reason `ok`.
    pub accuracy: f64,
    /// Verdicts per reason.
    pub reasons: BTreeMap<Reason, usize>,
}

impl Summary {
    /// Summarises verdicts.
    pub fn of<'a>(verdicts: impl IntoIterator<Item = &'a Verdict>) -> Self {
        let mut s = Summary::default();
        for v in verdicts {
            s.add(v);
        }
        s
    }

    /// Adds one verdict (running mean, so no verdict needs to be kept).
    pub fn add(&mut self, v: &Verdict) {
        self.add_reward(v.reward, v.reason);
    }

    /// Adds one verdict given by its reward and reason.
    pub fn add_reward(&mut self, reward: f64, reason: Reason) {
        self.count += 1;
        self.mean_reward += (reward - self.mean_reward) / self.count as f64;
        *self.reasons.entry(reason).or_default() += 1;
        self.accuracy =
            self.reasons.get(&Reason::Ok).copied().unwrap_or(0) as f64 / self.count as f64;
    }

    /// [`Summary::add_reward`] for each verdict in turn (the same figures,
    /// bit for bit), counting reasons in an array and updating the map
    /// once per reason seen.
    pub fn add_rewards(&mut self, verdicts: &[(f64, Reason)]) {
        if verdicts.is_empty() {
            return;
        }
        let mut counts = [0usize; Reason::ALL.len()];
        for &(reward, reason) in verdicts {
            self.count += 1;
            self.mean_reward += (reward - self.mean_reward) / self.count as f64;
            counts[reason as usize] += 1;
        }
        for (reason, n) in Reason::ALL.into_iter().zip(counts) {
            if n > 0 {
                *self.reasons.entry(reason).or_default() += n;
            }
        }
        self.accuracy =
            self.reasons.get(&Reason::Ok).copied().unwrap_or(0) as f64 / self.count as f64;
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "scored {} completions: mean reward {:.4}, accuracy {:.4}",
            self.count, self.mean_reward, self.accuracy
        )?;
        // Lines that were no record count as reward 0 (as their verdict
        // lines say): the headline says so, not only the table below.
        match self.reasons.get(&Reason::InputError) {
            Some(&bad) if bad > 0 && bad == self.count => writeln!(
                f,
                " (none of them a usable record, each counted as reward 0)"
            )?,
            Some(&bad) if bad > 0 => writeln!(
                f,
                " ({bad} of them not usable records, each counted as reward 0; over the {} \
                 records: accuracy {:.4})",
                self.count - bad,
                self.reasons.get(&Reason::Ok).copied().unwrap_or(0) as f64
                    / (self.count - bad).max(1) as f64
            )?,
            _ => writeln!(f)?,
        }
        for (reason, n) in &self.reasons {
            let share = *n as f64 / self.count.max(1) as f64 * 100.0;
            writeln!(f, "  {:<14} {:>8}  {:>6.2}%", reason.as_str(), n, share)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When no line was a usable record there is no accuracy over records
    /// to give (it said "over the 0 records: accuracy 0.0000").
    #[test]
    fn a_summary_of_bad_lines_only_says_no_record_was_usable() {
        let mut s = Summary::default();
        s.add_rewards(&[(0.0, Reason::InputError), (0.0, Reason::InputError)]);
        let text = s.to_string();
        assert!(text.contains("none of them a usable record"), "{text}");
        assert!(!text.contains("over the 0 records"), "{text}");
        s.add_reward(1.0, Reason::Ok);
        let text = s.to_string();
        assert!(text.contains("2 of them not usable records"), "{text}");
        assert!(
            text.contains("over the 1 records: accuracy 1.0000"),
            "{text}"
        );
    }

    #[test]
    fn reasons_index_their_place_in_all() {
        for (i, reason) in Reason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, i, "{reason}");
        }
    }

    #[test]
    fn the_headline_says_how_many_lines_were_no_record() {
        let mut s = Summary::default();
        for (reward, reason) in [
            (1.0, Reason::Ok),
            (1.0, Reason::Ok),
            (0.0, Reason::FormatError),
            (0.0, Reason::InputError),
        ] {
            s.add_reward(reward, reason);
        }
        let text = s.to_string();
        let head = text.lines().next().unwrap();
        assert_eq!(
            head,
            "scored 4 completions: mean reward 0.5000, accuracy 0.5000 (1 of them not usable \
             records, each counted as reward 0; over the 3 records: accuracy 0.6667)"
        );
        s = Summary::default();
        s.add_reward(1.0, Reason::Ok);
        assert_eq!(
            s.to_string().lines().next().unwrap(),
            "scored 1 completions: mean reward 1.0000, accuracy 1.0000"
        );
    }

    #[test]
    fn adding_many_rewards_is_adding_each() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let verdicts: Vec<(f64, Reason)> = (0..1000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let reward = [0.0, 1.0, 0.2, 0.8, 1.0 / 3.0][(seed % 5) as usize];
                (
                    reward,
                    Reason::ALL[(seed >> 8) as usize % Reason::ALL.len()],
                )
            })
            .collect();
        let (mut each, mut many) = (Summary::default(), Summary::default());
        for part in verdicts.chunks(37) {
            for &(reward, reason) in part {
                each.add_reward(reward, reason);
            }
            many.add_rewards(part);
        }
        many.add_rewards(&[]);
        assert_eq!(each.count, many.count);
        assert_eq!(each.mean_reward.to_bits(), many.mean_reward.to_bits());
        assert_eq!(each.accuracy.to_bits(), many.accuracy.to_bits());
        assert_eq!(each.reasons, many.reasons);
    }
}
