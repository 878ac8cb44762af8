//! The leaderboard formulas of `eval_runner_helper.generate_leaderboard_csv`
//! (bfcl-eval 2026.3.23): per-category accuracies → non-live, live,
//! irrelevance and overall scores, with the official handling of missing
//! categories (they count as accuracy 0 — with their full data size where
//! sizes matter — and are *displayed* as `N/A`).
//!
//! [`python_only`] is a convenience view that is **not** the official
//! formula (see there).

use std::collections::BTreeMap;

/// Full data sizes of the BFCL v4 categories (used for a missing category,
/// as the official code does by loading the data set).
pub const FULL_SIZES: [(&str, usize); 22] = [
    ("simple_python", 400),
    ("simple_java", 100),
    ("simple_javascript", 50),
    ("multiple", 200),
    ("parallel", 200),
    ("parallel_multiple", 200),
    ("irrelevance", 240),
    ("live_simple", 258),
    ("live_multiple", 1053),
    ("live_parallel", 16),
    ("live_parallel_multiple", 24),
    ("live_irrelevance", 884),
    ("live_relevance", 16),
    ("multi_turn_base", 200),
    ("multi_turn_miss_func", 200),
    ("multi_turn_miss_param", 200),
    ("multi_turn_long_context", 200),
    ("web_search_base", 100),
    ("web_search_no_snippet", 100),
    ("memory_kv", 155),
    ("memory_vector", 155),
    ("memory_rec_sum", 155),
];

/// The full size of a category (0 if unknown).
pub fn full_size(category: &str) -> usize {
    FULL_SIZES
        .iter()
        .find(|(c, _)| *c == category)
        .map_or(0, |(_, n)| *n)
}

/// One category's result: accuracy over the entries evaluated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CategoryScore {
    /// correct / evaluated.
    pub accuracy: f64,
    /// Number of entries evaluated.
    pub total_count: usize,
}

impl CategoryScore {
    /// From counts (`accuracy` 0 when nothing was evaluated).
    pub fn from_counts(correct: usize, total: usize) -> Self {
        Self {
            accuracy: if total == 0 {
                0.0
            } else {
                correct as f64 / total as f64
            },
            total_count: total,
        }
    }
}

/// An aggregated score: the value used in further formulas, the entry
/// count, and what the leaderboard displays (`None` = `N/A`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metric {
    /// The numeric value (missing parts count as 0).
    pub value: f64,
    /// Sum of the parts' entry counts.
    pub total_count: usize,
    /// The displayed value; `None` is shown as `N/A`.
    pub display: Option<f64>,
}

impl Metric {
    /// The leaderboard cell: `"{:.2}%"` of the displayed value, or `N/A`.
    pub fn formatted(&self) -> String {
        match self.display {
            Some(v) => format!("{:.2}%", v * 100.0),
            None => "N/A".into(),
        }
    }
}

fn category(scores: &BTreeMap<String, CategoryScore>, name: &str) -> Metric {
    match scores.get(name) {
        Some(s) => Metric {
            value: s.accuracy,
            total_count: s.total_count,
            display: Some(s.accuracy),
        },
        None => Metric {
            value: 0.0,
            total_count: full_size(name),
            display: None,
        },
    }
}

fn finish(value: f64, total_count: usize, has_na: bool, na_if_missing: bool) -> Metric {
    Metric {
        value,
        total_count,
        display: if has_na && na_if_missing {
            None
        } else {
            Some(value)
        },
    }
}

/// `calculate_unweighted_accuracy`: the plain mean of the values.
pub fn unweighted(parts: &[Metric], na_if_missing: bool) -> Metric {
    let n = parts.len().max(1) as f64;
    finish(
        parts.iter().map(|m| m.value).sum::<f64>() / n,
        parts.iter().map(|m| m.total_count).sum(),
        parts.iter().any(|m| m.display.is_none()),
        na_if_missing,
    )
}

/// `calculate_weighted_accuracy`: Σ value·count / Σ count.
pub fn weighted(parts: &[Metric], na_if_missing: bool) -> Metric {
    let total: usize = parts.iter().map(|m| m.total_count).sum();
    let sum: f64 = parts.iter().map(|m| m.value * m.total_count as f64).sum();
    finish(
        if total == 0 { 0.0 } else { sum / total as f64 },
        total,
        parts.iter().any(|m| m.display.is_none()),
        na_if_missing,
    )
}

/// `calculate_percentage_weighted_accuracy`: Σ value·w / Σ w.
pub fn percentage_weighted(parts: &[Metric], weights: &[f64], na_if_missing: bool) -> Metric {
    let wsum: f64 = weights.iter().sum();
    let value = parts
        .iter()
        .zip(weights)
        .map(|(m, w)| m.value * (w / wsum))
        .sum();
    finish(
        value,
        parts.iter().map(|m| m.total_count).sum(),
        parts.iter().any(|m| m.display.is_none()),
        na_if_missing,
    )
}

/// Every leaderboard number the official code computes from the
/// single-turn, multi-turn and agentic category scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaderboard {
    /// "Non-Live Overall Acc": unweighted mean of simple (itself the
    /// unweighted mean of Python, Java, JavaScript — a missing language
    /// counts 0), multiple, parallel, parallel multiple. Always displayed.
    pub non_live_overall: Metric,
    /// "Non-Live AST Acc" / "AST Summary": the same value, `N/A` if any
    /// part is missing.
    pub non_live_ast_summary: Metric,
    /// "Simple AST": mean of the three languages.
    pub simple_ast: Metric,
    /// "Python Simple AST".
    pub python_simple: Metric,
    /// "Java Simple AST".
    pub java_simple: Metric,
    /// "JavaScript Simple AST".
    pub javascript_simple: Metric,
    /// "Multiple AST".
    pub multiple: Metric,
    /// "Parallel AST".
    pub parallel: Metric,
    /// "Parallel Multiple AST".
    pub parallel_multiple: Metric,
    /// Non-live "Irrelevance Detection".
    pub irrelevance: Metric,
    /// "Live Overall Acc": the four live AST categories weighted by entry
    /// count (a missing one counts 0 with its full size). Always displayed.
    pub live_overall: Metric,
    /// Live "AST Summary": the same value, `N/A` if any part is missing.
    pub live_ast_summary: Metric,
    /// Live "Python Simple AST".
    pub live_simple: Metric,
    /// Live "Python Multiple AST".
    pub live_multiple: Metric,
    /// Live "Python Parallel AST".
    pub live_parallel: Metric,
    /// Live "Python Parallel Multiple AST".
    pub live_parallel_multiple: Metric,
    /// Live "Irrelevance Detection".
    pub live_irrelevance: Metric,
    /// "Relevance Detection" (live_relevance).
    pub live_relevance: Metric,
    /// Overall "Irrelevance Detection": unweighted mean of irrelevance and
    /// live_irrelevance.
    pub total_irrelevance: Metric,
    /// "Multi Turn Acc": unweighted mean of the four multi-turn categories
    /// (always displayed).
    pub multi_turn_overall: Metric,
    /// "Web Search Acc" (summary of the two web-search categories).
    pub web_search: Metric,
    /// "Memory Acc" (summary of the three memory back ends).
    pub memory: Metric,
    /// Agentic overall: mean of web search and memory.
    pub agentic_overall: Metric,
    /// "Overall Acc": weights 10, 10, 10, 30, 40 over non-live overall,
    /// live overall, total irrelevance, multi-turn overall, agentic overall
    /// (so a single-turn-only run scores at most 0.3).
    pub overall: Metric,
}

/// Computes the official leaderboard from category scores keyed by the
/// official category names (`simple_python`, `live_multiple`, …); any
/// category not present counts as missing.
///
/// ```
/// use std::collections::BTreeMap;
/// use toolgym_reward::bfcl::{leaderboard, CategoryScore};
/// let mut s = BTreeMap::new();
/// for c in ["simple_python", "multiple", "parallel", "parallel_multiple"] {
///     s.insert(c.to_string(), CategoryScore { accuracy: 1.0, total_count: 200 });
/// }
/// let lb = leaderboard(&s);
/// assert!((lb.non_live_overall.value - 0.8333333333333333).abs() < 1e-12); // Java, JS count 0
/// assert_eq!(lb.non_live_ast_summary.formatted(), "N/A");
/// ```
pub fn leaderboard(scores: &BTreeMap<String, CategoryScore>) -> Leaderboard {
    let c = |n: &str| category(scores, n);
    let python_simple = c("simple_python");
    let java_simple = c("simple_java");
    let javascript_simple = c("simple_javascript");
    let multiple = c("multiple");
    let parallel = c("parallel");
    let parallel_multiple = c("parallel_multiple");
    let irrelevance = c("irrelevance");
    let simple_ast = unweighted(&[python_simple, java_simple, javascript_simple], true);
    let non_live_parts = [simple_ast, multiple, parallel, parallel_multiple];
    let non_live_ast_summary = unweighted(&non_live_parts, true);
    let non_live_overall = unweighted(&non_live_parts, false);

    let live_simple = c("live_simple");
    let live_multiple = c("live_multiple");
    let live_parallel = c("live_parallel");
    let live_parallel_multiple = c("live_parallel_multiple");
    let live_irrelevance = c("live_irrelevance");
    let live_relevance = c("live_relevance");
    let live_parts = [
        live_simple,
        live_multiple,
        live_parallel,
        live_parallel_multiple,
    ];
    let live_ast_summary = weighted(&live_parts, true);
    let live_overall = weighted(&live_parts, false);

    let multi_turn_overall = unweighted(
        &[
            c("multi_turn_base"),
            c("multi_turn_miss_func"),
            c("multi_turn_miss_param"),
            c("multi_turn_long_context"),
        ],
        false,
    );
    let web_search = unweighted(&[c("web_search_base"), c("web_search_no_snippet")], true);
    let memory = unweighted(
        &[c("memory_kv"), c("memory_vector"), c("memory_rec_sum")],
        true,
    );
    let agentic_overall = unweighted(&[web_search, memory], false);
    let total_irrelevance = unweighted(&[irrelevance, live_irrelevance], true);
    let overall = percentage_weighted(
        &[
            non_live_overall,
            live_overall,
            total_irrelevance,
            multi_turn_overall,
            agentic_overall,
        ],
        &[10.0, 10.0, 10.0, 30.0, 40.0],
        false,
    );
    Leaderboard {
        non_live_overall,
        non_live_ast_summary,
        simple_ast,
        python_simple,
        java_simple,
        javascript_simple,
        multiple,
        parallel,
        parallel_multiple,
        irrelevance,
        live_overall,
        live_ast_summary,
        live_simple,
        live_multiple,
        live_parallel,
        live_parallel_multiple,
        live_irrelevance,
        live_relevance,
        total_irrelevance,
        multi_turn_overall,
        web_search,
        memory,
        agentic_overall,
        overall,
    }
}

impl Leaderboard {
    /// The non-live CSV columns (`data_non_live.csv`), name → metric.
    pub fn non_live_columns(&self) -> [(&'static str, Metric); 10] {
        [
            ("Non-Live Overall Acc", self.non_live_overall),
            ("AST Summary", self.non_live_ast_summary),
            ("Simple AST", self.simple_ast),
            ("Python Simple AST", self.python_simple),
            ("Java Simple AST", self.java_simple),
            ("JavaScript Simple AST", self.javascript_simple),
            ("Multiple AST", self.multiple),
            ("Parallel AST", self.parallel),
            ("Parallel Multiple AST", self.parallel_multiple),
            ("Irrelevance Detection", self.irrelevance),
        ]
    }

    /// The live CSV columns (`data_live.csv`).
    pub fn live_columns(&self) -> [(&'static str, Metric); 8] {
        [
            ("Live Overall Acc", self.live_overall),
            ("AST Summary", self.live_ast_summary),
            ("Python Simple AST", self.live_simple),
            ("Python Multiple AST", self.live_multiple),
            ("Python Parallel AST", self.live_parallel),
            ("Python Parallel Multiple AST", self.live_parallel_multiple),
            ("Irrelevance Detection", self.live_irrelevance),
            ("Relevance Detection", self.live_relevance),
        ]
    }

    /// The main columns of the overall CSV (`data_overall.csv`).
    pub fn overall_columns(&self) -> [(&'static str, Metric); 9] {
        [
            ("Overall Acc", self.overall),
            ("Non-Live AST Acc", self.non_live_ast_summary),
            ("Non-Live Simple AST", self.simple_ast),
            ("Live Acc", self.live_overall),
            ("Relevance Detection", self.live_relevance),
            ("Irrelevance Detection", self.total_irrelevance),
            ("Multi Turn Acc", self.multi_turn_overall),
            ("Web Search Acc", self.web_search),
            ("Memory Acc", self.memory),
        ]
    }
}

/// A Python-only summary — **not the official formula**. toolgym prints it
/// next to the official numbers because a Python-only run cannot reach the
/// official non-live score (Java and JavaScript count as 0 there).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PythonOnly {
    /// Unweighted mean of simple_python, multiple, parallel,
    /// parallel_multiple (simple = Python alone, not Python / 3).
    pub non_live: Metric,
    /// The four live AST categories weighted by count: the official live
    /// AST Summary (N/A unless all four were judged; the official "Live
    /// Overall Acc" counts a missing one as 0 and equals this otherwise).
    pub live: Metric,
    /// Unweighted mean of irrelevance and live_irrelevance (= official).
    pub irrelevance: Metric,
    /// Unweighted mean of the three above.
    pub summary: Metric,
}

/// The [`PythonOnly`] view (not the official formula).
pub fn python_only(scores: &BTreeMap<String, CategoryScore>) -> PythonOnly {
    let c = |n: &str| category(scores, n);
    let non_live = unweighted(
        &[
            c("simple_python"),
            c("multiple"),
            c("parallel"),
            c("parallel_multiple"),
        ],
        true,
    );
    let live = weighted(
        &[
            c("live_simple"),
            c("live_multiple"),
            c("live_parallel"),
            c("live_parallel_multiple"),
        ],
        true,
    );
    let irrelevance = unweighted(&[c("irrelevance"), c("live_irrelevance")], true);
    let summary = unweighted(&[non_live, live, irrelevance], true);
    PythonOnly {
        non_live,
        live,
        irrelevance,
        summary,
    }
}
