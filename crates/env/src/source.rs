//! Where tasks come from: finite datasets and unbounded generators behind
//! one [`TaskSource`] trait, and a seeded, resumable [`Sampler`].

use crate::rng::{mix, Rng};
use crate::task::{read_jsonl, write_jsonl, Task, TaskIoError};
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
    fn get(&self, index: u64) -> Option<Arc<Task>>;
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
}

impl Sampler {
    /// A sampler over `source` with `seed`, at position 0.
    pub fn new(source: Arc<dyn TaskSource>, seed: u64) -> Self {
        Self {
            source,
            seed,
            position: 0,
            epoch_order: None,
        }
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

    /// The next task; `None` only for an empty finite source.
    pub fn next_task(&mut self) -> Option<Arc<Task>> {
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
        self.source.get(index)
    }

    /// The next `n` tasks (fewer only for an empty source).
    pub fn next_batch(&mut self, n: usize) -> Vec<Arc<Task>> {
        (0..n).map_while(|_| self.next_task()).collect()
    }
}
