//! Aggregating verdicts: the official accuracy (correct / API samples,
//! over every file of the folder), per-API counts, the level-1 / level-2
//! file split, and the samples to read with care (those no reply can pass,
//! those answered by the offline substitutes).

use super::judge::{ApiBankVerdict, NO_COMPLETION};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// Samples and correct ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    /// Samples judged.
    pub samples: usize,
    /// Samples judged correct.
    pub correct: usize,
    /// Samples without a completion (counted as wrong).
    pub no_completion: usize,
}

impl Count {
    /// correct / samples (0 when empty).
    pub fn accuracy(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.correct as f64 / self.samples as f64
        }
    }

    fn add(&mut self, v: &ApiBankVerdict) {
        self.samples += 1;
        self.correct += usize::from(v.valid);
        self.no_completion += usize::from(v.error_type.as_deref() == Some(NO_COMPLETION));
    }

    fn json(&self) -> Value {
        json!({"samples": self.samples, "correct": self.correct,
               "no_completion": self.no_completion, "accuracy": self.accuracy()})
    }
}

/// One API's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ApiCount {
    /// Its samples.
    pub count: Count,
    /// How many of them no reply can pass.
    pub never_passes: usize,
    /// How many were answered by the offline substitute.
    pub offline_substitute: usize,
}

/// The aggregate of an evaluation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiBankReport {
    /// Every sample: the official accuracy.
    pub all: Count,
    /// Samples of the `-level-1-` files.
    pub level1_files: Count,
    /// Samples of the `-level-2-` files (in the same folder; the official
    /// loop scores them too).
    pub level2_files: Count,
    /// Per expected API.
    pub per_api: BTreeMap<String, ApiCount>,
    /// The samples no reply can pass (see
    /// [`crate::data::apibank::ApiBankSample::never_passes`]).
    pub never_passes: Count,
    /// The samples of Dictionary / Translate answered from recorded results
    /// (a deviation: the official code calls the live services).
    pub offline_substitute: Count,
    /// Wrong samples by error type.
    pub error_types: BTreeMap<String, usize>,
}

/// Aggregates verdicts.
pub fn summarize(verdicts: &[ApiBankVerdict]) -> ApiBankReport {
    let mut r = ApiBankReport::default();
    for v in verdicts {
        r.all.add(v);
        if v.level1_file {
            r.level1_files.add(v);
        } else {
            r.level2_files.add(v);
        }
        let api = r.per_api.entry(v.api_name.clone()).or_default();
        api.count.add(v);
        api.never_passes += usize::from(v.never_passes);
        api.offline_substitute += usize::from(v.offline_substitute);
        if v.never_passes {
            r.never_passes.add(v);
        }
        if v.offline_substitute {
            r.offline_substitute.add(v);
        }
        if let Some(t) = &v.error_type {
            *r.error_types.entry(t.clone()).or_default() += 1;
        }
    }
    r
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn minus(a: Count, b: Count) -> Count {
    Count {
        samples: a.samples - b.samples,
        correct: a.correct - b.correct,
        no_completion: a.no_completion - b.no_completion,
    }
}

impl ApiBankReport {
    /// Every sample except the offline-substitute ones (what the official
    /// code would be measured on where the services are unreachable, with
    /// those samples left out instead of counted wrong).
    pub fn without_offline_substitute(&self) -> Count {
        minus(self.all, self.offline_substitute)
    }

    /// The samples a reply can pass.
    pub fn passable(&self) -> Count {
        minus(self.all, self.never_passes)
    }

    /// Everything as JSON: `{"all", "level1_files", "level2_files",
    /// "without_offline_substitute", "passable", "never_passes",
    /// "offline_substitute": {samples, correct, no_completion, accuracy},
    /// "per_api": {api: {samples, correct, no_completion, accuracy,
    /// never_passes, offline_substitute}}, "error_types": {type: n}}`.
    pub fn to_json(&self) -> Value {
        let per_api: serde_json::Map<String, Value> = self
            .per_api
            .iter()
            .map(|(k, a)| {
                let mut v = a.count.json();
                v["never_passes"] = json!(a.never_passes);
                v["offline_substitute"] = json!(a.offline_substitute);
                (k.clone(), v)
            })
            .collect();
        json!({
            "all": self.all.json(),
            "level1_files": self.level1_files.json(),
            "level2_files": self.level2_files.json(),
            "without_offline_substitute": self.without_offline_substitute().json(),
            "passable": self.passable().json(),
            "never_passes": self.never_passes.json(),
            "offline_substitute": self.offline_substitute.json(),
            "per_api": per_api,
            "error_types": self.error_types,
        })
    }
}

impl fmt::Display for ApiBankReport {
    /// The table printed by `toolgym eval api-bank`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let row = |s: &mut String, name: &str, c: Count, note: &str| {
            // No sample: no accuracy (not 0%).
            let accuracy = if c.samples == 0 {
                "N/A".to_string()
            } else {
                pct(c.accuracy())
            };
            let _ = writeln!(
                s,
                "{name:<36} {:>7} {:>7} {accuracy:>9}  {note}",
                c.samples, c.correct
            );
        };
        let _ = writeln!(
            s,
            "{:<36} {:>7} {:>7} {:>9}  note",
            "api", "samples", "correct", "accuracy"
        );
        for (name, a) in &self.per_api {
            let mut notes = Vec::new();
            if a.never_passes > 0 {
                notes.push(format!("{} never pass", a.never_passes));
            }
            if a.offline_substitute > 0 {
                notes.push("offline substitute".to_string());
            }
            row(&mut s, name, a.count, &notes.join(", "));
        }
        let _ = writeln!(s);
        row(&mut s, "all (official accuracy)", self.all, "");
        row(&mut s, "  -level-1- files", self.level1_files, "");
        row(&mut s, "  -level-2- files", self.level2_files, "");
        if self.offline_substitute.samples > 0 {
            row(
                &mut s,
                "without offline-substitute samples",
                self.without_offline_substitute(),
                "Dictionary, Translate left out",
            );
        }
        row(
            &mut s,
            "passable samples only",
            self.passable(),
            "not the official figure",
        );
        if self.all.no_completion > 0 {
            let _ = writeln!(
                s,
                "\n{} samples had no completion (counted as wrong)",
                self.all.no_completion
            );
        }
        if !self.error_types.is_empty() {
            let errs: Vec<String> = self
                .error_types
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(s, "\nwrong samples by error type: {}", errs.join(", "));
        }
        f.write_str(&s)
    }
}
