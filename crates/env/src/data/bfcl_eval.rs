//! Evaluating a model on the Berkeley Function-Calling Leaderboard with the
//! official semantics: the logic of `toolgym eval bfcl`, free of any
//! model.
//!
//! 1. [`load_cases`]: the test cases of a BFCL data folder (the `data`
//!    folder of the `bfcl-eval` package: `BFCL_v4_<category>.json` plus
//!    `possible_answer/BFCL_v4_<category>.json`), each with the checker's
//!    view of it ([`BfclExpected`]).
//! 2. Completions: [`read_completions`] reads `{"id", "completion"}` JSON
//!    Lines (from vLLM or any other system); [`prompt`] renders a case with
//!    a [`ChatTemplate`] (the Tool-N1 prompt) for a local model.
//! 3. [`Judge::judge`]: decode the completion and run the official AST
//!    checker ([`toolgym_reward::bfcl`]), giving a [`CaseVerdict`] —
//!    `{"id", "category", "valid", "error_type", "error", "model_output"}`
//!    as the official score files have them.
//! 4. [`summarize`]: per-category counts, the official leaderboard
//!    aggregates ([`leaderboard`]) and the Python-only view
//!    ([`python_only`], not official); [`EvalReport`] prints them as a
//!    table.
//!
//! ```
//! use toolgym_env::data::bfcl_eval::{read_completions, summarize, Judge};
//! use toolgym_reward::bfcl::{BfclExpected, Category};
//! let case = BfclExpected::new("irrelevance_0", Category::Irrelevance, &serde_json::Value::Null, None).unwrap();
//! let done = read_completions(&b"{\"id\": \"irrelevance_0\", \"completion\": \"<think>No tool fits.</think>\"}\n"[..]).unwrap();
//! let v = Judge::official().judge(&case, done.get("irrelevance_0"));
//! assert!(v.valid);
//! let report = summarize(&[v]);
//! assert_eq!(report.counts[&Category::Irrelevance].valid, 1);
//! ```

use super::bfcl::{category_of, load_file, BfclCase, BfclError};
pub use super::completions::{
    read_completions, read_completions_file, BadLine, Completions, CompletionsError,
};
use super::reply_env::ReplyEnvs;
use crate::template::ChatTemplate;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toolgym_reward::bfcl::{
    check, check_completion, decode, leaderboard, python_only, BfclExpected, Category,
    CategoryScore, CheckOptions, Decoder, Leaderboard, Metric, PythonOnly,
};
use toolgym_reward::Verdict;

/// The categories evaluated by default (those present in the folder): the
/// single-turn Python AST categories and the two irrelevance ones.
pub const DEFAULT_CATEGORIES: [Category; 10] = [
    Category::SimplePython,
    Category::Multiple,
    Category::Parallel,
    Category::ParallelMultiple,
    Category::LiveSimple,
    Category::LiveMultiple,
    Category::LiveParallel,
    Category::LiveParallelMultiple,
    Category::Irrelevance,
    Category::LiveIrrelevance,
];

/// The `error_type` of a case that has no completion.
pub const NO_COMPLETION: &str = "toolgym:no_completion";

/// Why an evaluation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A BFCL file could not be read.
    #[error(transparent)]
    Data(#[from] BfclError),
    /// A folder or file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A category name is not one of the supported ones.
    #[error("unknown BFCL category {name:?}; supported: {known}")]
    UnknownCategory {
        /// The name given.
        name: String,
        /// The supported names, comma-separated.
        known: String,
    },
    /// A category asked for has no file in the folder.
    #[error("{dir}: no BFCL_v<N>_{category}.json for the requested category {category}")]
    MissingCategory {
        /// The data folder.
        dir: PathBuf,
        /// The category.
        category: Category,
    },
    /// None of the default categories has a file in the folder.
    #[error(
        "{0}: no BFCL_v<N>_<category>.json file of a supported category (is this bfcl_eval/data?)"
    )]
    NoData(PathBuf),
    /// A category file that holds no case (a broken download): its
    /// category would vanish from the table, and the official overall
    /// score would count it as 0.
    #[error("{}: the category file holds no case", path.display())]
    EmptyCategory {
        /// The file.
        path: PathBuf,
    },
    /// A case cannot be judged (e.g. its possible answer is missing).
    #[error("{}{}: case {id}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Case {
        /// The file at fault.
        path: PathBuf,
        /// The line at fault (none for an answer that is missing).
        line: Option<usize>,
        /// The case id.
        id: String,
        /// What is wrong.
        message: String,
    },
}

/// Parses category names (`simple_python`, `live_multiple`, …; `all` for
/// [`DEFAULT_CATEGORIES`]), keeping their order and dropping repeats.
///
/// ```
/// use toolgym_env::data::bfcl_eval::parse_categories;
/// use toolgym_reward::bfcl::Category;
/// assert_eq!(parse_categories(&["multiple", "irrelevance"]).unwrap(), [Category::Multiple, Category::Irrelevance]);
/// assert!(parse_categories(&["simple_java"]).is_err());
/// ```
pub fn parse_categories<S: AsRef<str>>(names: &[S]) -> Result<Vec<Category>, EvalError> {
    let mut out: Vec<Category> = Vec::new();
    for name in names {
        let name = name.as_ref().trim();
        let found = if name == "all" {
            DEFAULT_CATEGORIES.to_vec()
        } else {
            vec![
                Category::from_name(name).ok_or_else(|| EvalError::UnknownCategory {
                    name: name.to_string(),
                    known: Category::ALL.map(Category::as_str).join(", "),
                })?,
            ]
        };
        for c in found {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// The file of `category` in `dir`: `BFCL_v<N>_<category>.json` with the
/// highest `N`.
pub fn category_file(dir: &Path, category: Category) -> Result<Option<PathBuf>, EvalError> {
    let entries = std::fs::read_dir(dir).map_err(|source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    // The latest version's file, and a second file of that version.
    let mut best: Option<(u64, PathBuf, Option<PathBuf>)> = None;
    for entry in entries {
        // An entry that cannot be read could be the category's file.
        let path = entry
            .map_err(|source| EvalError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if !path.is_file() || category_of(&path).as_deref() != Some(category.as_str()) {
            continue;
        }
        let version = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("BFCL_v"))
            .and_then(|n| n.split('_').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        match &mut best {
            Some((v, _, _)) if *v > version => {}
            // Two files of one version (`.json` and `.jsonl`): which one
            // is read would follow the directory's order (refused below
            // if no later version is found).
            Some((v, _, twin)) if *v == version => {
                twin.get_or_insert(path);
            }
            _ => best = Some((version, path, None)),
        }
    }
    match best {
        Some((_, first, Some(twin))) => Err(EvalError::Io {
            path: twin,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} is category {} of the same BFCL version: keep one of the two",
                    first.display(),
                    category.as_str()
                ),
            ),
        }),
        best => Ok(best.map(|(_, p, _)| p)),
    }
}

/// Entries of a BFCL data folder named like a file of a category
/// [`load_cases`] reads that it does not read, each with why: BFCL v3's
/// `simple` (v4's `simple_python`), or no regular file (a directory, a
/// dangling link). For a warning: the category is otherwise absent from
/// the table without a word. (Files of the categories this does not judge,
/// such as multi-turn, are not listed.)
pub fn unread_entries(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, &'static str)> = entries
        .flatten()
        .map(|e| e.path())
        .filter_map(|path| {
            let category = category_of(&path)?;
            let why = match Category::from_name(&category) {
                None if category == "simple" => "BFCL v3's `simple` is v4's `simple_python`",
                None => return None,
                Some(_) if !path.is_file() => "not a file (a directory or a dangling link)",
                Some(_) => return None,
            };
            Some((path, why))
        })
        .collect();
    out.sort();
    out
}

/// One test case ready to judge: the raw case (for prompts) and the
/// checker's view of it.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalCase {
    /// The case as loaded (question, functions, raw entry).
    pub case: BfclCase,
    /// Category, function docs and possible answer for the checker.
    pub expected: BfclExpected,
}

impl EvalCase {
    /// The case id.
    pub fn id(&self) -> &str {
        &self.case.id
    }

    /// The category.
    pub fn category(&self) -> Category {
        self.expected.category
    }
}

/// Loads the cases of `categories` from a BFCL data folder (none given:
/// every category of [`DEFAULT_CATEGORIES`] that has a file), at most
/// `limit` per category (the first ones, in file order).
///
/// A requested category without a file, an unreadable file, an AST case
/// without a possible answer, or one the checker cannot read is an error
/// naming the file and the case: the numbers would not be comparable
/// otherwise.
pub fn load_cases(
    dir: &Path,
    categories: &[Category],
    limit: Option<usize>,
) -> Result<Vec<EvalCase>, EvalError> {
    let explicit = !categories.is_empty();
    let wanted: &[Category] = if explicit {
        categories
    } else {
        &DEFAULT_CATEGORIES
    };
    let mut out = Vec::new();
    let mut found = 0;
    // Each id once across the categories (a file copied under another
    // category's name was judged twice, one completion feeding both).
    let mut seen: std::collections::HashMap<String, (PathBuf, usize)> = Default::default();
    for &category in wanted {
        let Some(path) = category_file(dir, category)? else {
            if explicit {
                return Err(EvalError::MissingCategory {
                    dir: dir.to_path_buf(),
                    category,
                });
            }
            continue;
        };
        found += 1;
        let answers = super::bfcl::answer_path(&path);
        let mut cases = load_file(&path)?;
        if cases.is_empty() {
            return Err(EvalError::EmptyCategory { path });
        }
        cases.truncate(limit.unwrap_or(usize::MAX));
        for case in cases {
            let case_err = |path: &Path, line: Option<usize>, message: String| EvalError::Case {
                path: path.to_path_buf(),
                line,
                id: case.id.clone(),
                message,
            };
            if let Some((other, line)) = seen.insert(case.id.clone(), (path.clone(), case.line)) {
                return Err(case_err(
                    &path,
                    Some(case.line),
                    format!("the id is a case of {}:{line} too", other.display()),
                ));
            }
            if category.has_answers() && case.possible_answer.is_none() {
                // The file itself, when it is what is missing (a missing
                // file, a directory, a dangling link named so).
                let why = match answers.is_file() {
                    true => "no possible answer with this id (the AST categories need one)",
                    false => "no possible-answer file here (it is missing, or not a file)",
                };
                return Err(case_err(&answers, None, why.into()));
            }
            let expected = BfclExpected::new(
                &case.id,
                category,
                &case.functions,
                case.possible_answer.as_ref(),
            )
            .map_err(|e| match e.in_answer {
                true => case_err(&answers, case.answer_line, e.what),
                false => case_err(&path, Some(case.line), e.what),
            })?;
            out.push(EvalCase { case, expected });
        }
    }
    if found == 0 {
        return Err(EvalError::NoData(dir.to_path_buf()));
    }
    Ok(out)
}

/// The prompt of a case: its first question turn and functions as a task
/// ([`BfclCase::to_prompt_task`]) rendered by `template`.
pub fn prompt(case: &BfclCase, template: &dyn ChatTemplate) -> Result<String, BfclError> {
    Ok(template.prompt(&case.to_prompt_task()?))
}

/// The verdict on one case, as a line of the verdicts file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseVerdict {
    /// The case id.
    pub id: String,
    /// The category.
    #[serde(serialize_with = "category_name")]
    pub category: Category,
    /// Whether the case counts as correct.
    pub valid: bool,
    /// The official error type (`None` when valid; [`NO_COMPLETION`] when
    /// there was no completion).
    pub error_type: Option<String>,
    /// The official error messages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
    /// What the decoder made of the completion (BFCL's
    /// `model_result_decoded`, as a Python repr); absent when decoding
    /// failed or there was no completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_output: Option<String>,
    /// The decoder stopped at a construct the official one evaluates
    /// ([`DecodeError::is_unsupported`](toolgym_reward::bfcl::DecodeError::is_unsupported)):
    /// the official verdict may differ.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub decoder_gap: bool,
}

fn category_name<S: serde::Serializer>(c: &Category, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.as_str())
}

/// How completions are judged: checker options and decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judge {
    /// The checker ([`CheckOptions::official`] for leaderboard numbers).
    pub options: CheckOptions,
    /// How completions become calls ([`Decoder::ToolN1`] for Tool-N1
    /// models).
    pub decoder: Decoder,
}

impl Judge {
    /// The official checker on Tool-N1 `<tool_call>` output (`bfcl-ast`).
    pub fn official() -> Self {
        Self {
            options: CheckOptions::official(),
            decoder: Decoder::ToolN1,
        }
    }

    /// The checker with its quirks fixed (`bfcl-ast-strict`).
    pub fn strict() -> Self {
        Self {
            options: CheckOptions::strict(),
            ..Self::official()
        }
    }

    /// By rule name: `bfcl-ast` / `bfcl-ast-strict` (Tool-N1 output),
    /// `bfcl-ast-python` / `bfcl-ast-python-strict` (Python call syntax
    /// after `</think>`).
    pub fn by_rule(name: &str) -> Option<Self> {
        let python = Decoder::PythonAfterThink;
        Some(match name {
            "bfcl-ast" => Self::official(),
            "bfcl-ast-strict" => Self::strict(),
            "bfcl-ast-python" => Self {
                decoder: python,
                ..Self::official()
            },
            "bfcl-ast-python-strict" => Self {
                decoder: python,
                ..Self::strict()
            },
            _ => return None,
        })
    }

    /// Judges one completion (`None`: the case has none, which counts as
    /// invalid with error type [`NO_COMPLETION`]).
    pub fn judge(&self, case: &BfclExpected, completion: Option<&str>) -> CaseVerdict {
        let Some(text) = completion else {
            return CaseVerdict {
                id: case.id.clone(),
                category: case.category,
                valid: false,
                error_type: Some(NO_COMPLETION.into()),
                error: vec!["no completion for this case".into()],
                model_output: None,
                decoder_gap: false,
            };
        };
        let decoded = decode(text, self.decoder);
        let out = check(case, decoded.as_ref(), &self.options);
        CaseVerdict {
            id: case.id.clone(),
            category: case.category,
            valid: out.valid,
            error_type: out.error_type.map(|t| t.as_str().to_string()),
            error: out.error,
            decoder_gap: decoded.as_ref().err().is_some_and(|e| e.is_unsupported()),
            model_output: decoded.ok().map(|d| d.repr()),
        }
    }

    /// Judges every case (in parallel on rayon's pool), in order, with
    /// `completion(index, case)`.
    pub fn judge_all<'c>(
        &self,
        cases: &[EvalCase],
        completion: impl Fn(usize, &EvalCase) -> Option<&'c str> + Sync,
    ) -> Vec<CaseVerdict> {
        use rayon::prelude::*;
        cases
            .par_iter()
            .enumerate()
            .map(|(i, c)| self.judge(&c.expected, completion(i, c)))
            .collect()
    }
}

/// BFCL cases as environments, for generating (and judging) through the
/// same rollout engine that trains: one single-turn episode per case, its
/// prompt rendered by a template, its reply judged by [`Judge`] (reward 1
/// when the case counts as correct). `toolgym eval bfcl --model` runs its
/// generation this way.
pub type BfclEnvs = ReplyEnvs<BfclExpected>;

/// [`BfclEnvs`] for `cases`: each case's task
/// ([`BfclCase::to_prompt_task`]) rendered with `template`, its reply judged the
/// way the `bfcl-ast` rule does (same decode and check as
/// [`Judge::judge`], with the checker's own reason).
///
/// ```
/// use std::sync::Arc;
/// use toolgym_env::data::bfcl_eval::{bfcl_envs, Judge};
/// use toolgym_env::ChatMlTemplate;
/// let envs = bfcl_envs(&[], Judge::official(), Arc::new(ChatMlTemplate::tool_n1()));
/// assert!(envs.tasks().is_empty());
/// ```
pub fn bfcl_envs(cases: &[EvalCase], judge: Judge, template: Arc<dyn ChatTemplate>) -> BfclEnvs {
    ReplyEnvs::new(
        "bfcl",
        cases
            .iter()
            .map(|c| (c.id().to_string(), c.expected.clone()))
            .collect(),
        cases
            .iter()
            .map(|c| {
                c.case
                    .to_prompt_task()
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .collect(),
        template,
        Arc::new(move |expected: &BfclExpected, reply: &str| {
            let out = check_completion(reply, expected, judge.decoder, &judge.options);
            if out.valid {
                Verdict::ok()
            } else {
                Verdict::fail(out.reason, out.detail())
            }
        }),
    )
}

/// Cases and valid ones in a category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CategoryCount {
    /// Cases judged.
    pub cases: usize,
    /// Cases judged valid.
    pub valid: usize,
    /// Cases that had no completion (counted as invalid).
    pub no_completion: usize,
}

impl CategoryCount {
    /// valid / cases (0 when empty).
    pub fn accuracy(&self) -> f64 {
        CategoryScore::from_counts(self.valid, self.cases).accuracy
    }
}

/// The aggregate of an evaluation: per-category counts, the official
/// leaderboard, and the (non-official) Python-only view.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalReport {
    /// Counts per category (only the categories judged).
    pub counts: BTreeMap<Category, CategoryCount>,
    /// The official aggregates ([`leaderboard`]).
    pub leaderboard: Leaderboard,
    /// The Python-only view ([`python_only`]): not the official formula.
    pub python_only: PythonOnly,
    /// Verdicts with a [decoder gap](CaseVerdict::decoder_gap).
    pub decoder_gaps: usize,
}

/// Aggregates verdicts: counts per category, then the official formulas
/// over the category accuracies.
pub fn summarize(verdicts: &[CaseVerdict]) -> EvalReport {
    let mut counts: BTreeMap<Category, CategoryCount> = BTreeMap::new();
    for v in verdicts {
        let c = counts.entry(v.category).or_default();
        c.cases += 1;
        c.valid += usize::from(v.valid);
        c.no_completion += usize::from(v.error_type.as_deref() == Some(NO_COMPLETION));
    }
    let scores = scores(&counts);
    EvalReport {
        leaderboard: leaderboard(&scores),
        python_only: python_only(&scores),
        counts,
        decoder_gaps: verdicts.iter().filter(|v| v.decoder_gap).count(),
    }
}

fn scores(counts: &BTreeMap<Category, CategoryCount>) -> BTreeMap<String, CategoryScore> {
    counts
        .iter()
        .map(|(c, n)| {
            (
                c.as_str().to_string(),
                CategoryScore::from_counts(n.valid, n.cases),
            )
        })
        .collect()
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn metric_json(m: &Metric) -> Value {
    json!({"value": m.value, "display": m.display, "total_count": m.total_count})
}

impl EvalReport {
    /// The category scores the leaderboard was computed from, keyed by the
    /// official names.
    pub fn scores(&self) -> BTreeMap<String, CategoryScore> {
        scores(&self.counts)
    }

    /// Cases without a completion, over all categories.
    pub fn no_completion(&self) -> usize {
        self.counts.values().map(|c| c.no_completion).sum()
    }

    /// The Python-only view as `(label, metric)` rows.
    pub fn python_only_columns(&self) -> [(&'static str, Metric); 4] {
        let p = &self.python_only;
        [
            ("Non-Live AST (simple = Python only)", p.non_live),
            ("Live AST", p.live),
            ("Irrelevance", p.irrelevance),
            ("Summary (mean of the three)", p.summary),
        ]
    }

    /// Everything as JSON: `{"categories": {name: {cases, valid,
    /// no_completion, accuracy}}, "non_live" | "live" | "overall" |
    /// "python_only": {column: {value, display, total_count}}}`
    /// (`display` null = `N/A`).
    pub fn to_json(&self) -> Value {
        let cols = |rows: &[(&str, Metric)]| -> Value {
            Value::Object(
                rows.iter()
                    .map(|(n, m)| (n.to_string(), metric_json(m)))
                    .collect(),
            )
        };
        let categories: serde_json::Map<String, Value> = self
            .counts
            .iter()
            .map(|(c, n)| {
                (
                    c.as_str().to_string(),
                    json!({"cases": n.cases, "valid": n.valid, "no_completion": n.no_completion, "accuracy": n.accuracy()}),
                )
            })
            .collect();
        json!({
            "categories": categories,
            "non_live": cols(&self.leaderboard.non_live_columns()),
            "live": cols(&self.leaderboard.live_columns()),
            "overall": cols(&self.leaderboard.overall_columns()),
            "python_only": cols(&self.python_only_columns()),
            "decoder_gaps": self.decoder_gaps,
        })
    }
}

impl fmt::Display for EvalReport {
    /// The table printed by `toolgym eval bfcl`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<24} {:>6} {:>6} {:>9}",
            "category", "cases", "valid", "accuracy"
        );
        let (mut cases, mut valid) = (0, 0);
        for (c, n) in &self.counts {
            cases += n.cases;
            valid += n.valid;
            let _ = writeln!(
                s,
                "{:<24} {:>6} {:>6} {:>9}",
                c.as_str(),
                n.cases,
                n.valid,
                pct(n.accuracy())
            );
        }
        let _ = writeln!(
            s,
            "{:<24} {:>6} {:>6} {:>9}",
            "all (micro)",
            cases,
            valid,
            pct(CategoryScore::from_counts(valid, cases).accuracy)
        );
        let section = |s: &mut String, title: &str, rows: &[(&str, Metric)]| {
            let _ = writeln!(s, "\n{title}");
            for (name, m) in rows {
                let _ = writeln!(s, "  {name:<38} {:>9}", m.formatted());
            }
        };
        let lb = &self.leaderboard;
        let _ = writeln!(
            s,
            "\nOfficial leaderboard formulas (bfcl-eval 2026.3.23): a category not judged counts as 0 and is shown N/A"
        );
        section(&mut s, "Non-Live", &lb.non_live_columns());
        section(&mut s, "Live", &lb.live_columns());
        section(&mut s, "Overall", &lb.overall_columns());
        section(
            &mut s,
            "Python-only view (NOT the official formula; see docs/bfcl.md)",
            &self.python_only_columns(),
        );
        if self.decoder_gaps > 0 {
            let _ = writeln!(
                s,
                "\n{}",
                toolgym_reward::bfcl::decoder_gap_note(self.decoder_gaps)
            );
        }
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../reward/tests/fixtures/bfcl");

    #[test]
    fn completions_report_bad_repeated_and_unknown_lines() {
        let input = b"{\"id\": \"a\", \"completion\": \"1\"}\n\n[1]\n{\"id\": \"a\", \"completion\": \"2\"}\n\
                     {\"id\": \"b\", \"completion\": 3}\n\xff\n{\"id\": \"simple_python_16\", \"completion\": \"\"}\n\
                     \x0c\n \t\r\n";
        let c = read_completions(&input[..]).unwrap();
        assert_eq!(c.get("a"), Some("2"));
        assert_eq!(c.repeated_ids, ["a"]);
        // JSON whitespace is blank; a form feed is not (json.loads agrees).
        assert_eq!(c.blank_lines, 2);
        let mut bad: Vec<String> = c.bad_lines.iter().map(ToString::to_string).collect();
        let form_feed = bad.pop().unwrap();
        assert!(form_feed.starts_with("line 8: not JSON"), "{form_feed}");
        assert_eq!(
            bad,
            [
                "line 3: not a JSON object",
                "line 5: b: \"completion\": a completion must be a string, an assistant message object or a list of messages, not a number",
                "line 6: invalid UTF-8 at byte 0 of the line",
            ]
        );
        let cases = load_cases(Path::new(DATA), &[Category::SimplePython], Some(1)).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].id(), "simple_python_16");
        assert_eq!(
            c.unknown_ids(cases.iter().map(EvalCase::id)),
            [(4, "a".to_string())]
        );
    }

    #[test]
    fn completions_may_be_openai_messages() {
        let input = br#"{"id": "m", "completion": {"role": "assistant", "content": "<think>t</think>", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]}}"#;
        let c = read_completions(&input[..]).unwrap();
        assert_eq!(
            c.get("m"),
            Some("<think>t</think>\n<tool_call>\n[{\"name\":\"f\",\"arguments\":{\"x\": 1}}]\n</tool_call>")
        );
        assert!(c.bad_lines.is_empty());
    }

    /// A category file with no case (a broken download) is an error (the
    /// category vanished from the table, the official overall score
    /// counting it as 0); an id in two category files (one copied under
    /// another's name) is an error naming both (it was judged twice, one
    /// completion feeding both).
    #[test]
    fn empty_category_files_and_ids_in_two_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        // Entries named like data that are not read are listed.
        std::fs::write(dir.path().join("BFCL_v3_simple.json"), "").unwrap();
        std::fs::write(dir.path().join("BFCL_v4_memory.json"), "").unwrap();
        std::fs::create_dir(dir.path().join("BFCL_v4_parallel.json")).unwrap();
        let unread: Vec<_> = unread_entries(dir.path())
            .into_iter()
            .map(|(p, why)| (p.file_name().unwrap().to_string_lossy().into_owned(), why))
            .collect();
        assert_eq!(unread.len(), 2, "{unread:?}");
        assert!(unread[0].0 == "BFCL_v3_simple.json" && unread[0].1.contains("simple_python"));
        assert!(unread[1].0 == "BFCL_v4_parallel.json" && unread[1].1.contains("not a file"));
        for name in ["BFCL_v3_simple.json", "BFCL_v4_memory.json"] {
            std::fs::remove_file(dir.path().join(name)).unwrap();
        }
        std::fs::remove_dir(dir.path().join("BFCL_v4_parallel.json")).unwrap();
        let copy = |from: &str, to: &str| {
            std::fs::create_dir_all(dir.path().join("possible_answer")).unwrap();
            for sub in ["", "possible_answer/"] {
                std::fs::copy(
                    Path::new(DATA).join(format!("{sub}{from}")),
                    dir.path().join(format!("{sub}{to}")),
                )
                .unwrap();
            }
        };
        copy("BFCL_v4_simple_python.json", "BFCL_v4_simple_python.json");
        std::fs::write(dir.path().join("BFCL_v4_irrelevance.json"), "").unwrap();
        let e = load_cases(dir.path(), &[], None).unwrap_err().to_string();
        assert!(
            e.contains("BFCL_v4_irrelevance.json: the category file holds no case"),
            "{e}"
        );
        std::fs::remove_file(dir.path().join("BFCL_v4_irrelevance.json")).unwrap();
        assert!(load_cases(dir.path(), &[], None).is_ok());
        copy("BFCL_v4_simple_python.json", "BFCL_v4_multiple.json");
        let e = load_cases(dir.path(), &[], None).unwrap_err().to_string();
        assert!(
            e.contains("BFCL_v4_multiple.json:1: case simple_python_")
                && e.contains("is a case of")
                && e.contains("BFCL_v4_simple_python.json:1 too"),
            "{e}"
        );
    }

    #[test]
    fn loads_every_default_category_and_judges() {
        let cases = load_cases(Path::new(DATA), &[], None).unwrap();
        assert_eq!(cases.len(), 280);
        let verdicts = Judge::official().judge_all(&cases, |_, c| {
            // Right for the irrelevance categories, wrong elsewhere.
            Some(if c.expected.category.has_answers() {
                "<tool_call>[]</tool_call>"
            } else {
                "no call"
            })
        });
        let report = summarize(&verdicts);
        assert_eq!(report.counts.len(), 10);
        assert_eq!(report.counts[&Category::LiveIrrelevance].valid, 30);
        assert_eq!(report.counts[&Category::Multiple].valid, 0);
        assert_eq!(report.leaderboard.total_irrelevance.value, 1.0);
        assert_eq!(report.leaderboard.overall.value, 0.1);
        assert_eq!(report.no_completion(), 0);
        let table = report.to_string();
        let line = format!("  {:<38} {:>9}\n", "Irrelevance Detection", "100.00%");
        assert_eq!(table.matches(&line).count(), 3, "{table}");
        assert_eq!(
            report.to_json()["categories"]["irrelevance"]["accuracy"],
            1.0
        );
        let tmpl = crate::ChatMlTemplate::tool_n1();
        let p = prompt(&cases[0].case, &tmpl).unwrap();
        assert!(p.starts_with("<|im_start|>system\n") && p.ends_with("<|im_start|>assistant\n"));
        assert!(p.contains("calculus.derivative"), "{p}");
    }

    /// A reply whose argument holds a call inside arithmetic (the official
    /// decoder `eval`s `int('1')+0` to 1) is judged a decoding failure
    /// here and marked in the verdict, the report and its table.
    #[test]
    fn replies_the_official_decoder_reads_and_this_one_does_not_are_marked() {
        let cases = load_cases(Path::new(DATA), &[Category::SimplePython], None).unwrap();
        let case = cases.iter().find(|c| c.id() == "simple_python_16").unwrap();
        let judge = Judge::by_rule("bfcl-ast-python").unwrap();
        let gap = judge.judge(
            &case.expected,
            Some("[calculus.derivative(function='2x**2', value=int('1')+0)]"),
        );
        assert!(!gap.valid && gap.decoder_gap, "{gap:?}");
        let plain = judge.judge(
            &case.expected,
            Some("[calculus.derivative(function='2x**2', value=2)]"),
        );
        assert!(!plain.decoder_gap, "{plain:?}");
        let report = summarize(&[gap.clone(), plain]);
        assert_eq!(report.decoder_gaps, 1);
        assert_eq!(report.to_json()["decoder_gaps"], 1);
        assert!(
            report
                .to_string()
                .contains("note: 1 reply holds a construct"),
            "{report}"
        );
        assert_eq!(serde_json::to_value(&gap).unwrap()["decoder_gap"], true);
    }

    #[test]
    fn categories_and_rules_by_name() {
        assert_eq!(parse_categories(&["all"]).unwrap().len(), 10);
        assert_eq!(
            parse_categories(&["irrelevance", " live_relevance", "irrelevance"]).unwrap(),
            [Category::Irrelevance, Category::LiveRelevance]
        );
        let e = parse_categories(&["multi_turn_base"]).unwrap_err();
        assert!(e
            .to_string()
            .contains("unknown BFCL category \"multi_turn_base\""));
        assert_eq!(Judge::by_rule("bfcl-ast"), Some(Judge::official()));
        assert_eq!(
            Judge::by_rule("bfcl-ast-python-strict").map(|j| (j.options, j.decoder)),
            Some((CheckOptions::strict(), Decoder::PythonAfterThink))
        );
        assert!(Judge::by_rule("binary").is_none());
        let e = load_cases(Path::new(DATA), &[Category::LiveRelevance], None).unwrap_err();
        assert!(matches!(e, EvalError::MissingCategory { .. }), "{e}");
    }
}
