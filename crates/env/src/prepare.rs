//! The paper's data preparation (Section 4.1, Table 1): xLAM and ToolACE
//! files → single-step tasks → optional irrelevance augmentation → a
//! seeded train/validation split, with every dropped record counted.
//!
//! Sources are [`TrainingSource`]s ([`crate::data::sources`]): xLAM and
//! ToolACE are built in, and any other format plugs in the same way.
//!
//! The root CLI's `toolgym prepare --input xlam=FILE --input toolace=FILE
//! --out DIR [--val-fraction F] [--irrelevance-rate R] [--seed S]` is
//! [`prepare()`];
//! it writes `train.jsonl`, `validation.jsonl`, `dropped.jsonl` (every
//! dropped record or step, with its index, id and reason) and
//! `report.json`, and returns a [`PrepareReport`] whose `Display` is the
//! Table-1-style summary.

use crate::data::sources::{source_by_name, source_names, TrainingSource, SOURCES};
use crate::data::{DataError, DropReason, Dropped, Loaded};
use crate::message::Role;
use crate::output::{same_path, AtomicFile};
use crate::rng::{mix, Rng};
use crate::task::{Task, TaskIoError};
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How much of a drop's detail the printed summary shows per example.
const EXAMPLE_CHARS: usize = 160;
/// One input file and the source that reads it.
#[derive(Clone)]
pub struct SourceInput {
    /// The format.
    pub source: Arc<dyn TrainingSource>,
    /// The file (`-` = standard input).
    pub path: PathBuf,
}

impl fmt::Debug for SourceInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.source.name(), self.path.display())
    }
}

impl PartialEq for SourceInput {
    fn eq(&self, other: &Self) -> bool {
        self.source.name() == other.source.name() && self.path == other.path
    }
}

/// What to prepare and how.
#[derive(Clone, Debug, PartialEq)]
pub struct PrepareOptions {
    /// The input files with their sources, in order (files of one source
    /// after the first get `@N` appended to their task ids).
    pub inputs: Vec<SourceInput>,
    /// Where to write the outputs (created if missing).
    pub out_dir: PathBuf,
    /// Share of tasks held out for validation, split by source record so
    /// that the steps of one dialogue stay together. Default 0.1 (the
    /// released pipeline's 90/10, which it cuts per step, unseeded).
    pub val_fraction: f64,
    /// Share of eligible tasks copied as irrelevance tasks: the called tools
    /// removed from the candidates, no call expected. Eligible: single-turn
    /// tasks with at least one call and at least one other candidate tool,
    /// of any source. Default 0 (off). The released `data_process.py`
    /// (`data_augment_irrelevant`) differs: it samples xLAM items only and
    /// sizes the sample as `rate × all tasks`; this samples every eligible
    /// task, `floor(rate × eligible)` of them.
    pub irrelevance_rate: f64,
    /// Seed of the augmentation and the split. Default 0.
    pub seed: u64,
}

impl PrepareOptions {
    /// Defaults (no input files yet) writing to `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            inputs: Vec::new(),
            out_dir: out_dir.into(),
            val_fraction: 0.1,
            irrelevance_rate: 0.0,
            seed: 0,
        }
    }

    /// Adds a file of the built-in source `source` (`xlam`, `toolace`).
    pub fn add(&mut self, source: &str, path: impl Into<PathBuf>) -> Result<(), PrepareError> {
        let s = source_by_name(source).ok_or_else(|| PrepareError::UnknownSource {
            name: source.to_string(),
            known: source_names(),
        })?;
        self.inputs.push(SourceInput {
            source: Arc::new(BuiltIn(s)),
            path: path.into(),
        });
        Ok(())
    }

    /// Adds a file of any source (a user's own [`TrainingSource`]).
    pub fn add_source(&mut self, source: Arc<dyn TrainingSource>, path: impl Into<PathBuf>) {
        self.inputs.push(SourceInput {
            source,
            path: path.into(),
        });
    }
}

/// A built-in source, borrowed from the static registry.
struct BuiltIn(&'static dyn TrainingSource);

impl TrainingSource for BuiltIn {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn description(&self) -> &'static str {
        self.0.description()
    }
    fn load(&self, path: &Path) -> Result<Loaded, DataError> {
        self.0.load(path)
    }
    fn group_of(&self, task: &Task) -> String {
        self.0.group_of(task)
    }
}

/// Preparation could not run or finish (bad records never cause this;
/// they are dropped and counted).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// No input file was given.
    #[error("no input: give at least one file of a source ({})", source_names())]
    NoInput,
    /// A source name is not a built-in source.
    #[error("unknown source {name:?}; built in: {known}")]
    UnknownSource {
        /// The name given.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// An option is out of range.
    #[error("invalid option {name}: {message}")]
    Option {
        /// The option.
        name: &'static str,
        /// Why.
        message: String,
    },
    /// One file given twice as input (its records would count twice and
    /// land in both splits).
    #[error("{0} is given twice as input: its records would be counted twice and land in both the training and the validation split")]
    SameInput(PathBuf),
    /// An input is one of the files the run writes.
    #[error("the input {input} is the output {output}: writing it would erase it; choose another output directory")]
    InputIsOutput {
        /// The input.
        input: PathBuf,
        /// The output it would be overwritten by.
        output: PathBuf,
    },
    /// No task was kept from any input; nothing was written (an earlier
    /// run's files in the output directory are left as they were).
    #[error("no task was kept from any input, so nothing was written (the counts say why):\n{0}")]
    NothingKept(Box<PrepareReport>),
    /// One input gave no task while others did (the wrong file, or a
    /// file of another source); nothing was written.
    #[error("{path} gave no task as a {dataset} file (is it one?), so nothing was written; the counts say why:\n{report}")]
    InputKeptNothing {
        /// The input.
        path: PathBuf,
        /// The source it was read as (`xlam`, `toolace`, …).
        dataset: String,
        /// The counts.
        report: Box<PrepareReport>,
    },
    /// Every task went to the validation split; nothing was written.
    #[error("val_fraction {val_fraction} leaves no training task (all {validation} go to validation, whole records at a time), so nothing was written")]
    NoTraining {
        /// The fraction asked for.
        val_fraction: f64,
        /// Tasks in the validation split.
        validation: usize,
    },
    /// An input file could not be read as a list of records.
    #[error(transparent)]
    Data(#[from] DataError),
    /// An output could not be written.
    #[error(transparent)]
    Write(#[from] TaskIoError),
    /// The output folder or a report file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Counts for one source (a row of Table 1).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SourceCounts {
    /// `xlam` or `toolace`.
    pub source: String,
    /// Raw records read.
    pub raw_records: usize,
    /// Records that gave at least one task.
    pub kept_records: usize,
    /// Tasks whose context is one user turn.
    pub single_turn: usize,
    /// Tasks with a longer context.
    pub multi_turn: usize,
    /// Dropped records or steps, by reason.
    pub dropped: BTreeMap<DropReason, usize>,
    /// Tasks whose id another task had already (two records with one id):
    /// renamed `ID~N`.
    #[serde(skip_serializing_if = "is_zero")]
    pub renamed_ids: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl SourceCounts {
    /// All tasks of the source.
    pub fn tasks(&self) -> usize {
        self.single_turn + self.multi_turn
    }

    /// All drops of the source.
    pub fn dropped_total(&self) -> usize {
        self.dropped.values().sum()
    }
}

/// What [`prepare()`] did. `Display` prints the Table-1-style summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PrepareReport {
    /// Per source.
    pub sources: Vec<SourceCounts>,
    /// Irrelevance tasks added.
    pub irrelevance_added: usize,
    /// Tasks eligible for irrelevance augmentation.
    pub irrelevance_eligible: usize,
    /// Tasks in the training split.
    pub train: usize,
    /// Tasks in the validation split.
    pub validation: usize,
    /// The options' seed, fraction and rate, for the record.
    pub seed: u64,
    /// Validation fraction asked for.
    pub val_fraction: f64,
    /// Irrelevance rate asked for.
    pub irrelevance_rate: f64,
    /// Up to three dropped examples per (source, reason), for the summary.
    pub examples: Vec<Dropped>,
    /// The files written (empty for [`prepare_in_memory`]).
    pub files: Vec<PathBuf>,
}

/// The result of [`prepare_in_memory`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prepared {
    /// Training tasks.
    pub train: Vec<Task>,
    /// Validation tasks.
    pub validation: Vec<Task>,
    /// Everything dropped.
    pub dropped: Vec<Dropped>,
    /// The counts.
    pub report: PrepareReport,
    /// The inputs that gave no task (path, source).
    pub empty_inputs: Vec<(PathBuf, String)>,
}

/// Reads, converts, augments and splits, without writing anything.
pub fn prepare_in_memory(options: &PrepareOptions) -> Result<Prepared, PrepareError> {
    if options.inputs.is_empty() {
        return Err(PrepareError::NoInput);
    }
    for (name, v) in [
        ("val_fraction", options.val_fraction),
        ("irrelevance_rate", options.irrelevance_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(PrepareError::Option {
                name,
                message: format!("{v} is not in [0, 1]"),
            });
        }
    }
    let mut report = PrepareReport {
        seed: options.seed,
        val_fraction: options.val_fraction,
        irrelevance_rate: options.irrelevance_rate,
        ..PrepareReport::default()
    };
    // (group key, task): a group is one source record.
    let mut tasks: Vec<(String, Task)> = Vec::new();
    let mut dropped = Vec::new();
    // Files of one source after its first get `@N` on their task ids.
    let mut files_seen: HashMap<&str, usize> = HashMap::new();
    let mut by_source: BTreeMap<&str, SourceCounts> = BTreeMap::new();
    let mut first_seen: Vec<&str> = Vec::new();
    for (i, input) in options.inputs.iter().enumerate() {
        if input.path.as_os_str().is_empty() {
            return Err(PrepareError::Option {
                name: "input",
                message: format!(
                    "the {} input has no file name (SOURCE=FILE with FILE empty?)",
                    input.source.name()
                ),
            });
        }
        if options.inputs[..i]
            .iter()
            .any(|earlier| same_path(&earlier.path, &input.path))
        {
            return Err(PrepareError::SameInput(input.path.clone()));
        }
    }
    // Task ids are unique: a repeated one (two records with one id, or an
    // id equal to another record's index) gets `~N`, and is counted.
    let mut ids = UniqueIds::default();
    let mut empty_inputs = Vec::new();
    for input in &options.inputs {
        let source = input.source.name();
        let file = files_seen.entry(source).or_default();
        let loaded = tag_file(input.source.load(&input.path)?, *file);
        *file += 1;
        if !first_seen.contains(&source) {
            first_seen.push(source);
        }
        let counts = by_source.entry(source).or_insert_with(|| SourceCounts {
            source: source.to_string(),
            ..SourceCounts::default()
        });
        counts.raw_records += loaded.raw_records;
        if loaded.tasks.is_empty() {
            empty_inputs.push((input.path.clone(), source.to_string()));
        }
        let mut kept = std::collections::HashSet::new();
        for mut task in loaded.tasks {
            if let Some(renamed) = ids.claim(&task.id) {
                task.id = renamed;
                counts.renamed_ids += 1;
            }
            let group = input.source.group_of(&task);
            kept.insert(group.clone());
            if task.is_multi_turn() {
                counts.multi_turn += 1;
            } else {
                counts.single_turn += 1;
            }
            tasks.push((group, task));
        }
        counts.kept_records += kept.len();
        for mut d in loaded.dropped {
            *counts.dropped.entry(d.reason).or_default() += 1;
            d.file = Some(input.path.display().to_string());
            dropped.push(d);
        }
    }
    // Built-in sources in registry order (Table 1: xLAM, then ToolACE),
    // then the others in input order.
    let registry = SOURCES.iter().map(|s| s.name());
    let order: Vec<&str> = registry
        .clone()
        .filter(|n| first_seen.contains(n))
        .chain(
            first_seen
                .iter()
                .copied()
                .filter(|n| !registry.clone().any(|r| r == *n)),
        )
        .collect();
    report.sources = order.iter().filter_map(|s| by_source.remove(s)).collect();

    let (added, eligible) =
        augment_irrelevance(&mut tasks, options.irrelevance_rate, options.seed, &mut ids);
    report.irrelevance_added = added;
    report.irrelevance_eligible = eligible;

    let (train, validation) = split_by_group(tasks, options.val_fraction, options.seed);
    report.train = train.len();
    report.validation = validation.len();
    report.examples = examples(&dropped, 3);
    Ok(Prepared {
        train,
        validation,
        dropped,
        report,
        empty_inputs,
    })
}

/// Task ids handed out so far.
#[derive(Default)]
struct UniqueIds {
    taken: std::collections::HashSet<String>,
    /// The next `~N` to try for an id given more than once.
    next: HashMap<String, usize>,
}

impl UniqueIds {
    /// Takes `id`; `Some(id~N)`, the first free `N` from 2, when it was
    /// taken already (by another record, or by an earlier rename).
    fn claim(&mut self, id: &str) -> Option<String> {
        if self.taken.insert(id.to_string()) {
            return None;
        }
        let n = self.next.entry(id.to_string()).or_insert(2);
        loop {
            let candidate = format!("{id}~{n}");
            *n += 1;
            if self.taken.insert(candidate.clone()) {
                return Some(candidate);
            }
        }
    }

    /// [`UniqueIds::claim`], giving the id to use.
    fn unique(&mut self, id: String) -> String {
        self.claim(&id).unwrap_or(id)
    }
}

/// Prepares and writes `train.jsonl`, `validation.jsonl`, `dropped.jsonl`
/// and `report.json` into `options.out_dir`.
///
/// ```no_run
/// use toolgym_env::{prepare, PrepareOptions};
/// let mut opts = PrepareOptions::new("data/prepared");
/// opts.add("xlam", "xlam_function_calling_60k.json")?;
/// opts.add("toolace", "toolace/data.json")?;
/// opts.irrelevance_rate = 0.1;
/// let report = prepare(&opts)?;
/// println!("{report}");
/// # Ok::<(), toolgym_env::PrepareError>(())
/// ```
pub fn prepare(options: &PrepareOptions) -> Result<PrepareReport, PrepareError> {
    let dir = &options.out_dir;
    let train = dir.join("train.jsonl");
    let validation = dir.join("validation.jsonl");
    let dropped = dir.join("dropped.jsonl");
    let report_path = dir.join("report.json");
    for input in &options.inputs {
        let outputs = [&train, &validation, &dropped, &report_path];
        if let Some(output) = outputs.iter().find(|o| same_path(&input.path, o)) {
            return Err(PrepareError::InputIsOutput {
                input: input.path.clone(),
                output: output.to_path_buf(),
            });
        }
    }
    if dir.exists() && !dir.is_dir() {
        return Err(PrepareError::Io {
            path: dir.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file, not a directory: the output directory must be a directory",
            ),
        });
    }
    let mut p = prepare_in_memory(options)?;
    if p.train.is_empty() && p.validation.is_empty() {
        return Err(PrepareError::NothingKept(Box::new(p.report)));
    }
    if let Some((path, source)) = p.empty_inputs.first() {
        return Err(PrepareError::InputKeptNothing {
            path: path.clone(),
            dataset: source.clone(),
            report: Box::new(p.report),
        });
    }
    if p.train.is_empty() {
        return Err(PrepareError::NoTraining {
            val_fraction: options.val_fraction,
            validation: p.validation.len(),
        });
    }
    let outputs = [&train, &validation, &dropped, &report_path];
    if let Some(dir_in_the_way) = outputs.iter().find(|o| o.is_dir()) {
        return Err(PrepareError::Io {
            path: dir_in_the_way.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a directory is where this output goes",
            ),
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| PrepareError::Io {
        path: dir.clone(),
        source,
    })?;
    p.report.files = outputs.iter().map(|o| o.to_path_buf()).collect();
    let report_text = serde_json::to_string_pretty(&p.report)
        .unwrap_or_else(|e| json!({"error": e.to_string()}).to_string());
    // Every file is written in full under a temporary name, and all get
    // their names only then: a failure while writing (a full disk) leaves
    // an earlier run's set as it was, never a mix of two runs' splits.
    let written = [
        write_lines(&train, task_lines(&p.train))?,
        write_lines(&validation, task_lines(&p.validation))?,
        write_lines(
            &dropped,
            p.dropped
                .iter()
                .map(|d| serde_json::to_string(d).unwrap_or_default()),
        )?,
        write_lines(&report_path, std::iter::once(report_text))?,
    ];
    for (file, path) in written.into_iter().zip(outputs) {
        file.finish().map_err(|source| PrepareError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(p.report)
}

/// Each task as its JSON line.
fn task_lines(tasks: &[Task]) -> impl Iterator<Item = String> + '_ {
    tasks
        .iter()
        .map(|t| serde_json::to_string(t).unwrap_or_default())
}

/// Writes `lines` to a temporary file that takes `path`'s name when
/// finished ([`AtomicFile::finish`]).
fn write_lines(
    path: &Path,
    lines: impl Iterator<Item = String>,
) -> Result<AtomicFile, PrepareError> {
    use std::io::Write;
    let io = |source| PrepareError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut w = AtomicFile::create(path).map_err(io)?;
    for line in lines {
        w.write_all(line.as_bytes()).map_err(io)?;
        w.write_all(b"\n").map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(w)
}

/// Makes task ids unique across several files of one source.
fn tag_file(mut loaded: Loaded, file: usize) -> Loaded {
    if file > 0 {
        for t in &mut loaded.tasks {
            t.id = format!("{}@{file}", t.id);
        }
    }
    loaded
}

fn augment_irrelevance(
    tasks: &mut Vec<(String, Task)>,
    rate: f64,
    seed: u64,
    ids: &mut UniqueIds,
) -> (usize, usize) {
    let eligible: Vec<usize> = tasks
        .iter()
        .enumerate()
        .filter(|(_, (_, t))| {
            let single = t.messages.iter().filter(|m| m.role != Role::System).count() == 1;
            single
                && !t.ground_truth.is_empty()
                && t.tools
                    .iter()
                    .any(|s| !t.ground_truth.iter().any(|c| c.name == s.name))
        })
        .map(|(i, _)| i)
        .collect();
    let n = (rate * eligible.len() as f64).floor() as usize;
    if n == 0 {
        return (0, eligible.len());
    }
    let mut pick = eligible.clone();
    Rng::new(mix(seed, 1)).shuffle(&mut pick);
    pick.truncate(n);
    pick.sort_unstable();
    for i in pick {
        let (group, original) = &tasks[i];
        let mut t = original.clone();
        t.tools
            .retain(|s| !original.ground_truth.iter().any(|c| c.name == s.name));
        t.ground_truth.clear();
        t.reasoning = None;
        t.id = ids.unique(format!("{}-irrelevant", original.id));
        t.meta.insert("augmented".into(), json!("irrelevance"));
        tasks.push((group.clone(), t));
    }
    (n, eligible.len())
}

fn split_by_group(
    tasks: Vec<(String, Task)>,
    val_fraction: f64,
    seed: u64,
) -> (Vec<Task>, Vec<Task>) {
    let mut sizes: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in &tasks {
        let e = sizes.entry(g.as_str()).or_insert(0);
        if *e == 0 {
            groups.push(g.as_str());
        }
        *e += 1;
    }
    Rng::new(mix(seed, 2)).shuffle(&mut groups);
    let want = (val_fraction * tasks.len() as f64).round() as usize;
    let mut val_groups = std::collections::HashSet::new();
    let mut n = 0;
    for g in groups {
        if n >= want {
            break;
        }
        n += sizes[g];
        val_groups.insert(g.to_string());
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (g, t) in tasks {
        if val_groups.contains(&g) {
            val.push(t);
        } else {
            train.push(t);
        }
    }
    (train, val)
}

fn examples(dropped: &[Dropped], per_kind: usize) -> Vec<Dropped> {
    let mut seen: HashMap<(&str, DropReason), usize> = HashMap::new();
    dropped
        .iter()
        .filter(|d| {
            let n = seen.entry((d.source.as_str(), d.reason)).or_insert(0);
            *n += 1;
            *n <= per_kind
        })
        .cloned()
        .collect()
}

impl fmt::Display for PrepareReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<12} {:>12} {:>12} {:>10} {:>12} {:>11} {:>9}",
            "source",
            "raw records",
            "kept records",
            "tasks",
            "single-turn",
            "multi-turn",
            "dropped"
        )?;
        let mut total = SourceCounts {
            source: "total".into(),
            ..SourceCounts::default()
        };
        for s in &self.sources {
            write_row(f, s)?;
            total.raw_records += s.raw_records;
            total.kept_records += s.kept_records;
            total.single_turn += s.single_turn;
            total.multi_turn += s.multi_turn;
            for (r, n) in &s.dropped {
                *total.dropped.entry(*r).or_default() += n;
            }
        }
        if self.sources.len() > 1 {
            write_row(f, &total)?;
        }
        for s in self.sources.iter().filter(|s| s.renamed_ids > 0) {
            writeln!(
                f,
                "{}: {} task id(s) were another task's too (two records with one id); renamed \
                 ID~N",
                s.source, s.renamed_ids
            )?;
        }
        writeln!(
            f,
            "irrelevance augmentation: +{} tasks (rate {} of {} eligible single-turn tasks)",
            self.irrelevance_added, self.irrelevance_rate, self.irrelevance_eligible
        )?;
        writeln!(
            f,
            "split (seed {}, by source record): train {}, validation {} (fraction {})",
            self.seed, self.train, self.validation, self.val_fraction
        )?;
        let drops: Vec<(&str, DropReason, usize)> = self
            .sources
            .iter()
            .flat_map(|s| {
                s.dropped
                    .iter()
                    .map(move |(r, n)| (s.source.as_str(), *r, *n))
            })
            .collect();
        if drops.is_empty() {
            writeln!(f, "dropped: nothing")?;
        } else {
            writeln!(f, "dropped, by reason:")?;
            for (source, reason, n) in drops {
                writeln!(f, "  {source:<10} {:<18} {n:>8}", reason.as_str())?;
                for e in self
                    .examples
                    .iter()
                    .filter(|e| e.source == source && e.reason == reason)
                {
                    let id =
                        e.id.as_ref()
                            .map(|i| format!(" (id {i})"))
                            .unwrap_or_default();
                    let turn = e.turn.map(|t| format!(" turn {t}")).unwrap_or_default();
                    let file = e
                        .file
                        .as_ref()
                        .map(|p| format!(" of {p}"))
                        .unwrap_or_default();
                    // One line, cut visibly (dropped.jsonl has it whole).
                    let mut detail: String = e.detail.chars().take(EXAMPLE_CHARS).collect();
                    if detail.len() < e.detail.len() {
                        detail.push('…');
                    }
                    let detail = detail.replace(['\n', '\r'], " ");
                    // Not said twice: a record that is not JSON names
                    // its line in its detail.
                    let line = e
                        .line
                        .filter(|l| !e.detail.contains(&format!("line {l}")))
                        .map(|l| format!(" (line {l})"))
                        .unwrap_or_default();
                    writeln!(
                        f,
                        "      e.g. record #{}{line}{file}{id}{turn}: {detail}",
                        e.index
                    )?;
                }
            }
        }
        if !self.files.is_empty() {
            let names: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
            writeln!(f, "wrote {}", names.join(", "))?;
        }
        Ok(())
    }
}

fn write_row(f: &mut fmt::Formatter<'_>, s: &SourceCounts) -> fmt::Result {
    writeln!(
        f,
        "{:<12} {:>12} {:>12} {:>10} {:>12} {:>11} {:>9}",
        s.source,
        s.raw_records,
        s.kept_records,
        s.tasks(),
        s.single_turn,
        s.multi_turn,
        s.dropped_total()
    )
}
