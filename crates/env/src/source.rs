//! Where tasks come from: finite datasets and unbounded generators behind
//! one [`TaskSource`] trait, and a seeded, resumable [`Sampler`].

use crate::caught::{catch_quietly, take_panic_message};
use crate::rng::{mix, Rng};
use crate::task::{read_jsonl, write_jsonl, Task, TaskIoError};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A source of tasks: a finite dataset (`len() == Some(n)`, indices
/// `0..n`) or an unbounded generator (`len() == None`, every index gives a
/// task, deterministically).
///
/// Sources are `Send + Sync`; tasks come in `Arc`s so that handing one to
/// each of G rollouts is cheap.
pub trait TaskSource: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &str;

    /// The number of tasks, or `None` for a generator.
    fn len(&self) -> Option<usize>;

    /// Whether a finite source has no task.
    fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The task at `index` (`None` past the end of a finite source). The
    /// same index always gives the same task.
    ///
    /// The trainer calls this through [`try_get`]: a panic here, or `None`
    /// inside a finite source's length, skips that task (counted and
    /// said), it does not end the run.
    fn get(&self, index: u64) -> Option<Arc<Task>>;
}

/// A task source that failed to give the task at one index: its
/// [`TaskSource::get`] panicked, or a finite source gave none inside its
/// length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFailure {
    /// The source's [`TaskSource::name`].
    pub source: String,
    /// The index asked for.
    pub index: u64,
    /// What went wrong (a panic's message).
    pub message: String,
}

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task source {:?} at index {}: {}",
            self.source, self.index, self.message
        )
    }
}

impl std::error::Error for SourceFailure {}

/// `source.get(index)` with a panic caught (printed as env panics are, see
/// [`catch_quietly`]): `Ok(None)` only past the end of a finite source; a
/// panic, or no task at an index inside a finite source's length, is a
/// [`SourceFailure`].
///
/// ```
/// use toolgym_env::{try_get, Generator, Message, Task};
/// let tasks = Generator::new("odd", |i| {
///     assert!(i % 2 == 0, "no task {i}");
///     Task::new(format!("t{i}"), "odd", vec![], vec![Message::user("q")], vec![])
/// });
/// assert_eq!(try_get(&tasks, 2).unwrap().unwrap().id, "t2");
/// let failure = try_get(&tasks, 3).unwrap_err();
/// assert_eq!((failure.index, failure.message.as_str()), (3, "panicked: no task 3"));
/// ```
pub fn try_get(source: &dyn TaskSource, index: u64) -> Result<Option<Arc<Task>>, SourceFailure> {
    let failure = |message: String| SourceFailure {
        source: source.name().to_string(),
        index,
        message,
    };
    match catch_quietly(|| source.get(index)) {
        Ok(Some(task)) => Ok(Some(task)),
        Ok(None) => match source.len() {
            Some(n) if index >= n as u64 => Ok(None),
            Some(n) => Err(failure(format!("gave no task inside its length ({n})"))),
            None => Err(failure(
                "gave no task (a source with no length must give one at every index)".into(),
            )),
        },
        Err(panic) => Err(failure(format!("panicked: {}", take_panic_message(panic)))),
    }
}

/// A finite, in-memory list of tasks.
///
/// ```
/// use toolgym_env::{Dataset, Message, Task, TaskSource};
/// let tasks = (0..10).map(|i| Task::new(format!("t{i}"), "demo", vec![], vec![Message::user("hi")], vec![]));
/// let data = Dataset::new("demo", tasks.collect());
/// let (train, val) = data.split(0.2, 7);
/// assert_eq!((train.len(), val.len()), (Some(8), Some(2)));
/// assert_eq!(data.get(3).unwrap().id, "t3");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    name: String,
    tasks: Vec<Arc<Task>>,
}

impl Dataset {
    /// A dataset from tasks.
    pub fn new(name: impl Into<String>, tasks: Vec<Task>) -> Self {
        Self {
            name: name.into(),
            tasks: tasks.into_iter().map(Arc::new).collect(),
        }
    }

    /// A dataset of tasks already shared (no copies).
    pub fn from_shared(name: impl Into<String>, tasks: Vec<Arc<Task>>) -> Self {
        Self {
            name: name.into(),
            tasks,
        }
    }

    /// Reads a JSONL task file (as written by [`crate::prepare()`]).
    pub fn from_jsonl(path: impl AsRef<Path>) -> Result<Self, TaskIoError> {
        let path = path.as_ref();
        Ok(Self::named_after(path, read_jsonl(path)?))
    }

    /// The tasks read from the file at `path`, named after it (its stem,
    /// as [`Dataset::from_jsonl`] names a dataset).
    pub fn named_after(path: &Path, tasks: Vec<Task>) -> Self {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::new(name, tasks)
    }

    /// Writes the tasks as JSONL; returns how many.
    pub fn write_jsonl(&self, path: impl AsRef<Path>) -> Result<usize, TaskIoError> {
        write_jsonl(path, self.tasks.iter().map(|t| t.as_ref()))
    }

    /// The tasks.
    pub fn tasks(&self) -> &[Arc<Task>] {
        &self.tasks
    }

    /// Number of tasks.
    pub fn size(&self) -> usize {
        self.tasks.len()
    }

    /// Splits off a seeded random `val_fraction` of the tasks (rounded, at
    /// most all of them): `(train, validation)`, each in the original order.
    pub fn split(&self, val_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let n = self.tasks.len();
        let n_val = ((val_fraction.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
        let mut order: Vec<usize> = (0..n).collect();
        Rng::new(seed).shuffle(&mut order);
        let mut is_val = vec![false; n];
        for &i in &order[..n_val] {
            is_val[i] = true;
        }
        let pick = |want: bool, suffix: &str| Dataset {
            name: format!("{}-{suffix}", self.name),
            tasks: (0..n)
                .filter(|&i| is_val[i] == want)
                .map(|i| self.tasks[i].clone())
                .collect(),
        };
        (pick(false, "train"), pick(true, "validation"))
    }

    /// The first `n` tasks of a seeded shuffle.
    pub fn sample(&self, n: usize, seed: u64) -> Dataset {
        let mut tasks = self.tasks.clone();
        Rng::new(seed).shuffle(&mut tasks);
        tasks.truncate(n);
        Dataset {
            name: self.name.clone(),
            tasks,
        }
    }

    /// Collects `n` tasks of a source (indices `0..n`, fewer if it ends).
    pub fn collect(source: &dyn TaskSource, n: usize) -> Dataset {
        Dataset {
            name: source.name().to_string(),
            tasks: (0..n as u64).map_while(|i| source.get(i)).collect(),
        }
    }
}

impl TaskSource for Dataset {
    fn name(&self) -> &str {
        &self.name
    }

    fn len(&self) -> Option<usize> {
        Some(self.tasks.len())
    }

    fn get(&self, index: u64) -> Option<Arc<Task>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.tasks.get(i))
            .cloned()
    }
}

/// An unbounded source from a function of the index: the easy way to
/// train on a task generator of your own.
///
/// ```
/// use toolgym_env::{Generator, Message, Task, TaskSource};
/// let tasks = Generator::new("sums", |i| {
///     Task::new(format!("sum-{i}"), "sums", vec![], vec![Message::user(format!("{i} + 1?"))], vec![])
/// });
/// assert_eq!(tasks.len(), None);
/// assert_eq!(tasks.get(41).unwrap().query(), Some("41 + 1?"));
/// ```
pub struct Generator<F> {
    name: String,
    make: F,
}

impl<F: Fn(u64) -> Task + Send + Sync> Generator<F> {
    /// A source whose task `i` is `make(i)` (it must be deterministic).
    pub fn new(name: impl Into<String>, make: F) -> Self {
        Self {
            name: name.into(),
            make,
        }
    }
}

impl<F: Fn(u64) -> Task + Send + Sync> TaskSource for Generator<F> {
    fn name(&self) -> &str {
        &self.name
    }

    fn len(&self) -> Option<usize> {
        None
    }

    fn get(&self, index: u64) -> Option<Arc<Task>> {
        Some(Arc::new((self.make)(index)))
    }
}

impl<T: TaskSource + ?Sized> TaskSource for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn len(&self) -> Option<usize> {
        (**self).len()
    }
    fn get(&self, index: u64) -> Option<Arc<Task>> {
        (**self).get(index)
    }
}

/// Draws tasks from a source, deterministically given a seed.
///
/// A finite source is visited in epochs: each epoch is a fresh seeded
/// permutation, so every task comes once per epoch. A generator is read at
/// seeded pseudo-random indices. The state is one number
/// ([`Sampler::position`]), so a run can be resumed exactly.
///
/// A task the source fails to give ([`try_get`]: a panic in its `get`, or
/// none inside its length) is skipped: the next draw takes its place, and
/// the failures are kept for [`Sampler::take_failures`].
///
/// ```
/// use std::sync::Arc;
/// use toolgym_env::{Dataset, Message, Sampler, Task};
/// let tasks = (0..4).map(|i| Task::new(format!("t{i}"), "demo", vec![], vec![Message::user("q")], vec![]));
/// let data = Arc::new(Dataset::new("demo", tasks.collect()));
/// let mut s = Sampler::new(data.clone(), 1);
/// let mut epoch: Vec<String> = s.next_batch(4).iter().map(|t| t.id.clone()).collect();
/// epoch.sort();
/// assert_eq!(epoch, ["t0", "t1", "t2", "t3"]);
/// let next = s.next_batch(2);
/// let mut again = Sampler::new(data, 1);
/// again.set_position(4);
/// assert_eq!(again.next_batch(2), next);
/// ```
pub struct Sampler {
    source: Arc<dyn TaskSource>,
    seed: u64,
    position: u64,
    epoch_order: Option<(u64, Vec<u64>)>,
    /// Draws the source failed since the last [`Sampler::take_failures`].
    skipped: Option<SkippedTasks>,
}

/// Tasks a [`Sampler`] skipped because its source failed to give them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedTasks {
    /// How many.
    pub count: usize,
    /// The first of them.
    pub first: SourceFailure,
}

impl Sampler {
    /// Failed draws [`Sampler::next_batch`] replaces beyond one per task
    /// asked for, before it gives up: a source that fails now and then
    /// (half its draws, say) still fills every batch, and one that fails
    /// everywhere is found within `n + 64` draws.
    pub const MAX_FAILED_DRAWS: usize = 64;

    /// A sampler over `source` with `seed`, at position 0.
    pub fn new(source: Arc<dyn TaskSource>, seed: u64) -> Self {
        Self {
            source,
            seed,
            position: 0,
            epoch_order: None,
            skipped: None,
        }
    }

    /// The tasks skipped since the last call because the source failed to
    /// give them (`None` if none).
    pub fn take_failures(&mut self) -> Option<SkippedTasks> {
        self.skipped.take()
    }

    /// The tasks skipped since the last [`Sampler::take_failures`], left
    /// in place.
    pub fn failures(&self) -> Option<&SkippedTasks> {
        self.skipped.as_ref()
    }

    /// How many tasks were drawn so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Jumps to a position (to resume a run).
    pub fn set_position(&mut self, position: u64) {
        self.position = position;
    }

    /// The current epoch of a finite source (0 for generators).
    pub fn epoch(&self) -> u64 {
        match self.source.len() {
            Some(n) if n > 0 => self.position / n as u64,
            _ => 0,
        }
    }

    /// The next task; `None` for an empty finite source, or when the
    /// source failed to give it (see [`Sampler::take_failures`]).
    pub fn next_task(&mut self) -> Option<Arc<Task>> {
        self.next_batch(1).pop()
    }

    /// The next draw's task, or its source's failure; `None` only for an
    /// empty finite source.
    fn draw(&mut self) -> Option<Result<Arc<Task>, SourceFailure>> {
        let index = match self.source.len() {
            None => mix(self.seed, self.position),
            Some(0) => return None,
            Some(n) => {
                let n = n as u64;
                let (epoch, offset) = (self.position / n, self.position % n);
                if self.epoch_order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    let mut order: Vec<u64> = (0..n).collect();
                    Rng::new(mix(self.seed, epoch)).shuffle(&mut order);
                    self.epoch_order = Some((epoch, order));
                }
                self.epoch_order
                    .as_ref()
                    .and_then(|(_, o)| o.get(offset as usize).copied())
                    .unwrap_or(offset)
            }
        };
        self.position += 1;
        Some(try_get(self.source.as_ref(), index).and_then(|task| {
            // Past the end of a finite source: not an index a draw makes,
            // unless the source's length shrank since.
            task.ok_or_else(|| SourceFailure {
                source: self.source.name().to_string(),
                index,
                message: "gave no task: its length shrank under the sampler".into(),
            })
        }))
    }

    /// The next `n` tasks: fewer for an empty source, or when the source
    /// failed to give [`Sampler::MAX_FAILED_DRAWS`] more than `n` of the
    /// tasks drawn for them (each failed draw is replaced by the next; see
    /// [`Sampler::take_failures`]).
    pub fn next_batch(&mut self, n: usize) -> Vec<Arc<Task>> {
        let mut batch = Vec::with_capacity(n);
        let mut failed = 0;
        while batch.len() < n && failed < n.saturating_add(Self::MAX_FAILED_DRAWS) {
            match self.draw() {
                None => break,
                Some(Ok(task)) => batch.push(task),
                Some(Err(failure)) => {
                    failed += 1;
                    match &mut self.skipped {
                        Some(s) => s.count += 1,
                        None => {
                            self.skipped = Some(SkippedTasks {
                                count: 1,
                                first: failure,
                            })
                        }
                    }
                }
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    fn task(i: u64) -> Task {
        Task::new(
            format!("t{i}"),
            "s",
            vec![],
            vec![Message::user("q")],
            vec![],
        )
    }

    /// A finite source of `n` tasks with bugs: `get` panics at multiples
    /// of `panics_every` and gives nothing at index 1.
    struct Faulty {
        n: usize,
        panics_every: u64,
    }

    impl TaskSource for Faulty {
        fn name(&self) -> &str {
            "faulty"
        }
        fn len(&self) -> Option<usize> {
            Some(self.n)
        }
        fn get(&self, index: u64) -> Option<Arc<Task>> {
            assert!(
                !index.is_multiple_of(self.panics_every),
                "bad index {index}"
            );
            (index != 1 && index < self.n as u64).then(|| Arc::new(task(index)))
        }
    }

    #[test]
    fn try_get_names_every_way_a_source_fails() {
        let f = Faulty {
            n: 10,
            panics_every: 3,
        };
        assert_eq!(try_get(&f, 2).unwrap().unwrap().id, "t2");
        // Past the end of a finite source: no task, no failure.
        assert_eq!(try_get(&f, 10), Ok(None));
        let none = try_get(&f, 1).unwrap_err();
        assert_eq!(
            none.to_string(),
            "task source \"faulty\" at index 1: gave no task inside its length (10)"
        );
        let panic = try_get(&f, 6).unwrap_err();
        assert_eq!(
            (panic.index, panic.message.as_str()),
            (6, "panicked: bad index 6")
        );
        // A source with no length has a task at every index.
        let g = Generator::new("gaps", task);
        assert!(try_get(&g, u64::MAX).unwrap().is_some());
        struct Gappy;
        impl TaskSource for Gappy {
            fn name(&self) -> &str {
                "gappy"
            }
            fn len(&self) -> Option<usize> {
                None
            }
            fn get(&self, _: u64) -> Option<Arc<Task>> {
                None
            }
        }
        assert!(try_get(&Gappy, 5)
            .unwrap_err()
            .message
            .starts_with("gave no task (a source with no length"));
    }

    #[test]
    fn the_sampler_skips_what_the_source_fails_to_give() {
        let f: Arc<dyn TaskSource> = Arc::new(Faulty {
            n: 12,
            panics_every: 4,
        });
        let mut s = Sampler::new(f.clone(), 3);
        // One epoch: 12 draws of which 4 fail (0, 4, 8 panic; 1 is empty);
        // each failed draw is replaced by the next.
        let batch = s.next_batch(8);
        assert_eq!(batch.len(), 8);
        let mut ids: Vec<&str> = batch.iter().map(|t| t.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["t10", "t11", "t2", "t3", "t5", "t6", "t7", "t9"]);
        assert_eq!(s.position(), 12);
        let skipped = s.take_failures().unwrap();
        assert_eq!(skipped.count, 4);
        assert_eq!(skipped.first.source, "faulty");
        assert_eq!(s.take_failures(), None, "taken");
        // The position holds the skipped draws: a resume draws the same.
        let next = s.next_batch(3);
        let mut again = Sampler::new(f, 3);
        again.set_position(12);
        assert_eq!(again.next_batch(3), next);
        // A source that fails at every draw gives an empty batch after
        // n + 64 failures, not a loop without end.
        let broken: Arc<dyn TaskSource> = Arc::new(Faulty {
            n: 12,
            panics_every: 1,
        });
        let mut s = Sampler::new(broken, 3);
        assert!(s.next_batch(5).is_empty());
        assert_eq!(s.position(), 69);
        assert_eq!(s.take_failures().unwrap().count, 69);
        assert_eq!(s.next_task(), None);
    }
}
