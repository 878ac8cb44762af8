//! Leaving out tasks whose first prompt is over the limit before training
//! starts, as the released verl config does (`filter_overlong_prompts`):
//! never cut silently, counted per source.

use crate::Policy;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use toolgym_env::env::DynEnvFactory;
use toolgym_env::{Dataset, TaskSource};

/// The tasks of a finite `source` whose first prompt (the env's reset
/// observation, tokenised by `policy`) fits in `max_tokens`, and the number
/// left out per task source (`Task::source`). A task whose env panics at
/// reset is kept: the rollout engine reports that failure itself.
///
/// The first prompt is measured from a reset with seed 0. Training resets
/// with other seeds, so an env whose first prompt's length depends on the
/// seed can still give a longer one at run time; the rollout engine then
/// does not run that episode (an empty trajectory judged `token_limit`,
/// counted in `skipped_episodes`).
pub fn drop_overlong(
    policy: &Policy,
    factory: &dyn DynEnvFactory,
    source: &dyn TaskSource,
    max_tokens: usize,
) -> (Dataset, BTreeMap<String, usize>) {
    let n = source.len().unwrap_or(0) as u64;
    let judged: Vec<(Arc<toolgym_env::Task>, bool)> = (0..n)
        .into_par_iter()
        .filter_map(|i| source.get(i))
        .map(|task| {
            let fits = catch_unwind(AssertUnwindSafe(|| {
                let prompt = factory.make_env(task.clone()).reset(Some(0)).prompt;
                policy
                    .tokenizer
                    .encode(&prompt)
                    .map_or(true, |ids| ids.len() <= max_tokens)
            }))
            .unwrap_or(true);
            (task, fits)
        })
        .collect();
    let mut dropped: BTreeMap<String, usize> = BTreeMap::new();
    let mut kept = Vec::with_capacity(judged.len());
    for (task, fits) in judged {
        if fits {
            kept.push(task);
        } else {
            *dropped.entry(task.source.clone()).or_default() += 1;
        }
    }
    (Dataset::from_shared(source.name(), kept), dropped)
}
