//! The data the APIs run on: the initial databases (`init_database/*.json`,
//! read once and shared) and each episode's own copy of them.

use super::apis::network::Recorded;
use super::apis::search::Bm25;
use super::value;
use super::ApiBankError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toolgym_reward::pycall::PyVal;

/// The `init_database` files the 49 APIs read (the database name is the
/// file stem).
pub const DATABASES: [&str; 19] = [
    "Account",
    "Agenda",
    "Alarm",
    "Appointments",
    "Bank",
    "HealthData",
    "History",
    "Hotel",
    "ImageCaptioning",
    "Meeting",
    "QuestionAnswering",
    "Reminder",
    "Scenes",
    "SearchEngine",
    "SpeechRecognition",
    "Stock",
    "Symptom",
    "TimeSwitch",
    "Wiki",
];

/// The loaded databases, shared by every sample and episode: the initial
/// tables, SearchEngine's BM25 index, and the recorded answers that stand
/// in for the network APIs.
pub struct ApiBankData {
    pub(crate) tables: BTreeMap<String, Arc<PyVal>>,
    pub(crate) bm25: Option<Bm25>,
    pub(crate) recorded: Recorded,
    pub(crate) dir: PathBuf,
}

impl std::fmt::Debug for ApiBankData {
    // The tables are large (ImageCaptioning has ~12k entries): names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiBankData")
            .field("dir", &self.dir)
            .field("tables", &self.tables.keys().collect::<Vec<_>>())
            .field("search_index", &self.bm25.is_some())
            .field("recorded_answers", &self.recorded.len())
            .finish()
    }
}

impl std::fmt::Debug for ApiBankState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiBankState")
            .field("calls", &self.calls)
            .field("forgot_password", &self.forgot)
            .field("data", &self.data.dir)
            .finish_non_exhaustive()
    }
}

impl ApiBankData {
    /// Reads `dir/<Name>.json` for every name of [`DATABASES`] (other files
    /// are ignored). A missing or unreadable file is an error naming it.
    pub fn load(dir: &Path) -> Result<Self, ApiBankError> {
        let mut tables = BTreeMap::new();
        for name in DATABASES {
            let path = dir.join(format!("{name}.json"));
            let text = std::fs::read_to_string(&path).map_err(|source| ApiBankError::Io {
                path: path.clone(),
                source,
            })?;
            let v = value::loads_file(&text).map_err(|(message, line)| ApiBankError::Json {
                path: path.clone(),
                line,
                message,
            })?;
            tables.insert(name.to_string(), Arc::new(v));
        }
        let bm25 = tables
            .get("SearchEngine")
            .and_then(|db| Bm25::from_database(db));
        Ok(Self {
            tables,
            bm25,
            recorded: Recorded::default(),
            dir: dir.to_path_buf(),
        })
    }

    /// No tables at all (every API then fails as with empty databases).
    pub(crate) fn empty() -> Self {
        Self {
            tables: BTreeMap::new(),
            bm25: None,
            recorded: Recorded::default(),
            dir: PathBuf::new(),
        }
    }

    /// How many Dictionary / Translate requests have a recorded answer.
    pub fn recorded_answers(&self) -> usize {
        self.recorded.len()
    }

    /// The folder the databases came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh episode state: every table as in the files.
    pub fn fresh_state(self: &Arc<Self>) -> ApiBankState {
        ApiBankState {
            tables: self.tables.clone(),
            forgot: None,
            // OpenBankAccount's own initial database, keyed by the int 0.
            bank_accounts: PyVal::Dict(vec![(
                PyVal::Int(0),
                value::dict([
                    ("account", value::s("test")),
                    ("password", value::s("test")),
                    ("name", value::s("yifei")),
                ]),
            )]),
            serial: 0,
            calls: 0,
            data: self.clone(),
        }
    }
}

/// One episode's state: its own copy of the databases (tables are copied
/// on first write), plus what the API objects keep between calls
/// (ForgotPassword's verification code, OpenBankAccount's accounts).
///
/// A sample is always judged on a fresh state, as the official evaluator
/// builds a new `ToolManager` for every sample; a multi-turn episode keeps
/// one state for all its calls, like one `ToolManager`.
#[derive(Clone)]
pub struct ApiBankState {
    tables: BTreeMap<String, Arc<PyVal>>,
    /// ForgotPassword's `(verification_code, username)` after a first call.
    pub(crate) forgot: Option<(PyVal, String)>,
    /// OpenBankAccount's own database (`{0: {"account": "test", …}}`).
    pub(crate) bank_accounts: PyVal,
    /// Counter for the ids and tokens the APIs draw at random.
    pub(crate) serial: u64,
    calls: usize,
    pub(crate) data: Arc<ApiBankData>,
}

impl ApiBankState {
    /// A table (an empty dict when it does not exist).
    pub(crate) fn table(&self, name: &str) -> &PyVal {
        static EMPTY: PyVal = PyVal::Dict(Vec::new());
        self.tables.get(name).map_or(&EMPTY, |t| t.as_ref())
    }

    /// A table for writing (copied from the shared one on first write).
    pub(crate) fn table_mut(&mut self, name: &str) -> &mut PyVal {
        Arc::make_mut(
            self.tables
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(PyVal::Dict(Vec::new()))),
        )
    }

    /// The shared data.
    pub fn data(&self) -> &Arc<ApiBankData> {
        &self.data
    }

    /// How many calls ran on this state.
    pub fn calls(&self) -> usize {
        self.calls
    }

    pub(crate) fn count_call(&mut self) {
        self.calls += 1;
    }

    /// A table's current content as JSON (for tests and inspection), or
    /// `None` when there is no such table.
    pub fn table_json(&self, name: &str) -> Option<serde_json::Value> {
        self.tables.get(name).map(|t| value::to_json(t))
    }

    /// A deterministic stand-in for `random`: the next number of a
    /// per-episode sequence.
    pub(crate) fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        crate::rng::mix(0xa91_ba4c, self.serial)
    }
}
