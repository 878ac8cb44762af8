//! Training data sources behind one interface: a [`TrainingSource`] reads
//! one file format into tasks and says how its tasks group into records
//! (the unit the train/validation split keeps together). `prepare` and
//! `toolgym prepare --input NAME=FILE` know sources only through
//! [`SOURCES`]: adding one is its converter file plus one line there.

use super::{toolace, xlam, DataError, Loaded};
use crate::task::Task;
use std::path::Path;

/// A file format that becomes training tasks.
pub trait TrainingSource: Send + Sync {
    /// The name used on the command line, in task ids and in reports
    /// (`xlam`).
    fn name(&self) -> &'static str;

    /// One line for `--help`.
    fn description(&self) -> &'static str;

    /// Reads and converts a file; bad records are dropped and counted in
    /// the result, never an error. Only an unreadable file fails.
    fn load(&self, path: &Path) -> Result<Loaded, DataError>;

    /// The source record a task came from: the split keeps the tasks of
    /// one record on one side. Default: the task id (one task per record).
    fn group_of(&self, task: &Task) -> String {
        task.id.clone()
    }
}

/// xLAM function-calling-60k: one single-step task per record.
#[derive(Clone, Copy, Debug, Default)]
pub struct Xlam;

impl TrainingSource for Xlam {
    fn name(&self) -> &'static str {
        xlam::SOURCE
    }

    fn description(&self) -> &'static str {
        "xLAM function-calling-60k: a JSON list (or JSON Lines) of {id, query, tools, answers}"
    }

    fn load(&self, path: &Path) -> Result<Loaded, DataError> {
        xlam::load(path)
    }
}

/// ToolACE: dialogues split into one task per assistant call turn.
#[derive(Clone, Copy, Debug, Default)]
pub struct ToolAce {
    /// Conversion options.
    pub options: toolace::ToolAceOptions,
}

impl TrainingSource for ToolAce {
    fn name(&self) -> &'static str {
        toolace::SOURCE
    }

    fn description(&self) -> &'static str {
        "ToolACE: a JSON list (or JSON Lines) of {system, conversations}, one task per call turn"
    }

    fn load(&self, path: &Path) -> Result<Loaded, DataError> {
        toolace::load(path, self.options)
    }

    /// `toolace-<record>-<turn>[@file]` → `toolace-<record>@file`.
    fn group_of(&self, task: &Task) -> String {
        let (base, file) = task.id.split_once('@').unwrap_or((&task.id, ""));
        let record = base.rsplit_once('-').map(|(r, _)| r).unwrap_or(base);
        format!("{record}@{file}")
    }
}

/// The built-in sources, in report order (the paper's Table 1: xLAM, then
/// ToolACE).
pub static SOURCES: [&dyn TrainingSource; 2] = [
    &Xlam,
    &ToolAce {
        options: toolace::ToolAceOptions {
            no_call_tasks: false,
        },
    },
];

/// A built-in source by name.
///
/// ```
/// use toolgym_env::data::sources::source_by_name;
/// assert_eq!(source_by_name("toolace").unwrap().name(), "toolace");
/// assert!(source_by_name("glaive").is_none());
/// ```
pub fn source_by_name(name: &str) -> Option<&'static dyn TrainingSource> {
    SOURCES.iter().copied().find(|s| s.name() == name)
}

/// The names of the built-in sources, comma-separated (for messages).
pub fn source_names() -> String {
    SOURCES.map(|s| s.name()).join(", ")
}
