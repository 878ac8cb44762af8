//! Validation: greedy episodes on held-out tasks through the rollout
//! engine, judged by the environment (for single-turn tasks, the training
//! rule on the one reply).

use crate::rollout::{run_episodes, EpisodeGroup, RolloutLimits, Sampler, Trajectory};
use crate::{Policy, TrainError};
use std::collections::BTreeMap;
use std::sync::Arc;
use toolgym_env::env::DynEnvFactory;
use toolgym_env::Task;
use toolgym_model::rng::mix_seed;
use toolgym_model::SamplingParams;
use toolgym_reward::{Summary, Verdict};

/// Result of a validation pass.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Share of tasks whose greedy episode succeeded (verdict `ok`).
    pub accuracy: f64,
    /// Mean episode reward of the greedy episodes.
    pub mean_reward: f64,
    /// Reasons histogram of the greedy episodes' verdicts.
    pub summary: Summary,
    /// With [`Sampled`] settings: the share of sampled episodes that
    /// succeeded (pass@1 at that temperature, averaged over the samples).
    pub sampled_accuracy: Option<f64>,
    /// Mean model turns of the greedy episodes.
    pub turns_mean: f64,
    /// Greedy and sampled episodes that an env failure ended (they count
    /// as wrong; said on stderr): a flaky env skews an accuracy silently
    /// otherwise.
    pub env_failures: usize,
    /// Per-task verdicts of the greedy episodes, in task order.
    #[serde(skip)]
    pub verdicts: Vec<Verdict>,
    /// Per-task last reply of the greedy episodes, in task order.
    #[serde(skip)]
    pub replies: Vec<String>,
    /// The greedy episodes, in task order.
    #[serde(skip)]
    pub episodes: Vec<Trajectory>,
    /// Greedy accuracy per task source ([`Task::source`]), in the manner
    /// of verl's `val/test_score/{data_source}` (which is the mean reward;
    /// the two agree for 0/1 rewards): a validation set mixing sources
    /// (xLAM and ToolACE) is otherwise read through its largest one.
    pub accuracy_by_source: BTreeMap<String, f64>,
    /// Tasks whose first prompt was over the prompt limit when run: not
    /// run, they count as wrong in the accuracies. (A trainer filters such
    /// tasks out first under `overlong_prompts = "drop"`; these are the
    /// ones past its check: a reset that gave a longer prompt.)
    pub over_limit: usize,
    /// The ids of the tasks validated, in order: a report compared with
    /// another ("before" and "after") is of the same tasks only when these
    /// are the same.
    #[serde(skip)]
    pub task_ids: Vec<String>,
}

/// Optional sampled evaluation: `samples` episodes per task at
/// `temperature`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampled {
    /// Episodes per task.
    pub samples: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Seed of the sampling streams.
    pub seed: u64,
}

/// Greedy episodes of `policy` on `tasks` in environments from `factory`,
/// generated `batch` tasks at a time; with `sampled`, also that many
/// sampled episodes per task. Every env is reset with a seed derived from
/// the task's position, so a report is reproducible.
pub fn evaluate(
    policy: &Policy,
    factory: &Arc<dyn DynEnvFactory>,
    tasks: &[Arc<Task>],
    limits: &RolloutLimits,
    batch: usize,
    sampled: Option<Sampled>,
) -> Result<EvalReport, TrainError> {
    let episodes = |sampling: SamplingParams, n: usize, seed: u64| {
        let groups: Vec<EpisodeGroup> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| EpisodeGroup {
                task: t.clone(),
                n,
                reset_seed: mix_seed(0x0065_7661_6c00, i as u64),
                sample_seed: mix_seed(seed, i as u64),
            })
            .collect();
        let mut actor = Sampler::new(
            &policy.model,
            &policy.tokenizer,
            &policy.eos_token_ids,
            sampling,
            limits.max_response_tokens,
            batch.max(1) * n,
        )?;
        run_episodes(factory, &groups, &mut actor, policy.token_space(), limits)
    };
    let greedy: Vec<Trajectory> = episodes(SamplingParams::greedy(), 1, 0)?
        .into_iter()
        .flatten()
        .collect();
    let verdicts: Vec<Verdict> = greedy.iter().map(Trajectory::verdict).collect();
    let summary = Summary::of(&verdicts);
    // Tasks left out for their prompt's length count as wrong: said, so
    // that an accuracy of 0 is not read as the model's.
    let over = greedy.iter().filter(|t| t.prompt_over_limit()).count();
    if over > 0 {
        let limit = crate::rollout::limit_named(
            "max_prompt_tokens",
            limits.max_prompt_tokens,
            policy.token_space().max_context,
        );
        eprintln!(
            "evaluation: {over} of {} tasks have a first prompt over {limit}: not run, they count \
             as wrong",
            greedy.len()
        );
    }
    let (mut sampled_failures, mut sampled_episodes) = (0, 0);
    let mut sampled_first_error: Option<String> = None;
    let sampled_accuracy = match sampled {
        Some(s) if s.samples > 0 => {
            let sampling = SamplingParams {
                greedy: false,
                temperature: s.temperature,
                ..SamplingParams::default()
            };
            let all = episodes(sampling, s.samples, s.seed)?;
            let all: Vec<&Trajectory> = all.iter().flatten().collect();
            sampled_episodes = all.len();
            sampled_failures = all.iter().filter(|t| t.env_failed()).count();
            sampled_first_error = all
                .iter()
                .find(|t| t.env_failed())
                .and_then(|t| t.error.clone());
            let verdicts: Vec<Verdict> = all.iter().map(|t| t.verdict()).collect();
            Some(Summary::of(&verdicts).accuracy)
        }
        _ => None,
    };
    let turns = greedy.iter().map(Trajectory::turns).sum::<usize>();
    let env_failures = greedy.iter().filter(|t| t.env_failed()).count() + sampled_failures;
    if env_failures > 0 {
        let first = greedy
            .iter()
            .find(|t| t.env_failed())
            .and_then(|t| t.error.as_deref())
            .or(sampled_first_error.as_deref())
            .unwrap_or("no message");
        eprintln!(
            "validation: {env_failures} of {} episodes ended by an env failure: they count as \
             wrong; the first: {first}",
            greedy.len() + sampled_episodes
        );
    }
    Ok(EvalReport {
        accuracy: summary.accuracy,
        mean_reward: summary.mean_reward,
        summary,
        sampled_accuracy,
        turns_mean: turns as f64 / greedy.len().max(1) as f64,
        env_failures,
        replies: greedy.iter().map(|t| t.last_reply().to_string()).collect(),
        accuracy_by_source: accuracy_by_source(tasks, &verdicts),
        verdicts,
        episodes: greedy,
        over_limit: over,
        task_ids: tasks.iter().map(|t| t.id.clone()).collect(),
    })
}

/// The share of `ok` verdicts among each source's tasks (`verdicts` in
/// task order).
fn accuracy_by_source(tasks: &[Arc<Task>], verdicts: &[Verdict]) -> BTreeMap<String, f64> {
    let mut by: BTreeMap<&str, Vec<&Verdict>> = BTreeMap::new();
    for (t, v) in tasks.iter().zip(verdicts) {
        by.entry(t.source.as_str()).or_default().push(v);
    }
    by.into_iter()
        .map(|(source, v)| (source.to_string(), Summary::of(v).accuracy))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgym_reward::Reason;

    #[test]
    fn accuracy_by_source_counts_each_sources_own_verdicts() {
        let task = |source: &str| Arc::new(Task::new("t", source, vec![], vec![], vec![]));
        let tasks = [task("xlam"), task("toolace"), task("xlam"), task("xlam")];
        let verdicts = [
            Verdict::ok(),
            Verdict::fail(Reason::WrongArgs, ""),
            Verdict::fail(Reason::FormatError, ""),
            Verdict::ok(),
        ];
        let by = accuracy_by_source(&tasks, &verdicts);
        assert_eq!(by.len(), 2);
        assert_eq!(by["xlam"], 2.0 / 3.0);
        assert_eq!(by["toolace"], 0.0);
    }
}
