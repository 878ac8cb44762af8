//! ACEBench's categories and its official aggregation
//! (`generate_result_csv` in `model_eval/evaluation_helper.py`).

use std::collections::BTreeMap;

/// The rule-based categories, in the official column order: every
/// category of ACEBench's `data_en` except the agent ones, which need
/// ACEBench's LLM user simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AceCategory {
    /// `normal_atom_bool`.
    AtomBool,
    /// `normal_atom_enum`.
    AtomEnum,
    /// `normal_atom_number`.
    AtomNumber,
    /// `normal_atom_list`.
    AtomList,
    /// `normal_atom_object_deep`.
    AtomObjectDeep,
    /// `normal_atom_object_short`.
    AtomObjectShort,
    /// `normal_single_turn_single_function`.
    SingleFunction,
    /// `normal_single_turn_parallel_function`.
    ParallelFunction,
    /// `normal_multi_turn_user_switch`: one record per turn of a given
    /// dialogue; scored per conversation.
    MultiTurnUserSwitch,
    /// `normal_multi_turn_user_adjust`: as `MultiTurnUserSwitch`.
    MultiTurnUserAdjust,
    /// `normal_similar_api`.
    SimilarApi,
    /// `normal_preference` (the prompt carries a user profile).
    Preference,
    /// `special_incomplete`.
    Incomplete,
    /// `special_error_param`.
    ErrorParam,
    /// `special_irrelevant`.
    Irrelevant,
}

impl AceCategory {
    /// Every category, in column order.
    pub const ALL: [AceCategory; 15] = [
        AceCategory::AtomBool,
        AceCategory::AtomEnum,
        AceCategory::AtomNumber,
        AceCategory::AtomList,
        AceCategory::AtomObjectDeep,
        AceCategory::AtomObjectShort,
        AceCategory::SingleFunction,
        AceCategory::ParallelFunction,
        AceCategory::MultiTurnUserSwitch,
        AceCategory::MultiTurnUserAdjust,
        AceCategory::SimilarApi,
        AceCategory::Preference,
        AceCategory::Incomplete,
        AceCategory::ErrorParam,
        AceCategory::Irrelevant,
    ];

    /// The official name (`data_<name>.json`).
    pub fn as_str(self) -> &'static str {
        match self {
            AceCategory::AtomBool => "normal_atom_bool",
            AceCategory::AtomEnum => "normal_atom_enum",
            AceCategory::AtomNumber => "normal_atom_number",
            AceCategory::AtomList => "normal_atom_list",
            AceCategory::AtomObjectDeep => "normal_atom_object_deep",
            AceCategory::AtomObjectShort => "normal_atom_object_short",
            AceCategory::SingleFunction => "normal_single_turn_single_function",
            AceCategory::ParallelFunction => "normal_single_turn_parallel_function",
            AceCategory::MultiTurnUserSwitch => "normal_multi_turn_user_switch",
            AceCategory::MultiTurnUserAdjust => "normal_multi_turn_user_adjust",
            AceCategory::SimilarApi => "normal_similar_api",
            AceCategory::Preference => "normal_preference",
            AceCategory::Incomplete => "special_incomplete",
            AceCategory::ErrorParam => "special_error_param",
            AceCategory::Irrelevant => "special_irrelevant",
        }
    }

    /// The column header of the official result table.
    pub fn column(self) -> &'static str {
        match self {
            AceCategory::AtomBool => "bool",
            AceCategory::AtomEnum => "enum",
            AceCategory::AtomNumber => "number",
            AceCategory::AtomList => "list",
            AceCategory::AtomObjectDeep => "object_deep",
            AceCategory::AtomObjectShort => "object_short",
            AceCategory::SingleFunction => "single_function",
            AceCategory::ParallelFunction => "parallel_function",
            AceCategory::MultiTurnUserSwitch => "multi_turn_switch",
            AceCategory::MultiTurnUserAdjust => "multi_turn_adjust",
            AceCategory::SimilarApi => "similar_api",
            AceCategory::Preference => "profile",
            AceCategory::Incomplete => "incomplete",
            AceCategory::ErrorParam => "error",
            AceCategory::Irrelevant => "irrelevant",
        }
    }

    /// By official name, with or without the `data_` prefix.
    ///
    /// ```
    /// use toolgym_reward::acebench::AceCategory;
    /// assert_eq!(AceCategory::from_name("data_normal_atom_bool"), Some(AceCategory::AtomBool));
    /// assert_eq!(AceCategory::from_name("agent_multi_turn"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<AceCategory> {
        let name = name.strip_prefix("data_").unwrap_or(name);
        AceCategory::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// A special category (the reply is judged as text).
    pub fn is_special(self) -> bool {
        matches!(
            self,
            AceCategory::Incomplete | AceCategory::ErrorParam | AceCategory::Irrelevant
        )
    }

    /// One of the two multi-turn categories (scored per conversation).
    pub fn is_multi_turn(self) -> bool {
        matches!(
            self,
            AceCategory::MultiTurnUserSwitch | AceCategory::MultiTurnUserAdjust
        )
    }

    /// One of the six atom categories.
    pub fn is_atom(self) -> bool {
        matches!(
            self,
            AceCategory::AtomBool
                | AceCategory::AtomEnum
                | AceCategory::AtomNumber
                | AceCategory::AtomList
                | AceCategory::AtomObjectDeep
                | AceCategory::AtomObjectShort
        )
    }
}

/// The official score of one category.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CategoryScore {
    /// The official accuracy: `round(correct / total, 3)` for the normal
    /// single-turn categories, unrounded for the special ones, and for
    /// the multi-turn ones the rounded share of conversations whose turns
    /// are all correct.
    pub accuracy: f64,
    /// Records judged correct.
    pub correct: usize,
    /// Records judged.
    pub total: usize,
    /// Multi-turn only: `process_accuracy`, the mean share of correct turns
    /// per conversation (each rounded to 3 decimals, then the mean).
    pub process: Option<f64>,
    /// Multi-turn only: conversations.
    pub conversations: Option<usize>,
}

/// The conversation a multi-turn record belongs to, as the official
/// evaluation reads it from the record's id: its second-to-last
/// `_`-separated field (`normal_multi_turn_user_adjust_8_1` → `8`; empty
/// for an id with one field). Consecutive records with the same one are
/// one conversation.
///
/// ```
/// use toolgym_reward::acebench::conversation_of;
/// assert_eq!(conversation_of("normal_multi_turn_user_adjust_8_1"), "8");
/// ```
pub fn conversation_of(id: &str) -> &str {
    id.rsplit('_').nth(1).unwrap_or("")
}

/// Scores one category from its records' verdicts `(id, valid)`, in file
/// order. Multi-turn records are grouped into conversations the official
/// way: *consecutive* records whose ids share the second-to-last
/// `_`-separated field ([`conversation_of`]).
///
/// ```
/// use toolgym_reward::acebench::{score_category, AceCategory};
/// let v = [("normal_multi_turn_user_switch_0_0", true), ("normal_multi_turn_user_switch_0_1", false),
///          ("normal_multi_turn_user_switch_1_0", true)];
/// let s = score_category(AceCategory::MultiTurnUserSwitch, &v);
/// assert_eq!((s.accuracy, s.process, s.correct), (0.5, Some(0.75), 2));
/// ```
pub fn score_category(category: AceCategory, verdicts: &[(&str, bool)]) -> CategoryScore {
    let total = verdicts.len();
    let correct = verdicts.iter().filter(|(_, ok)| *ok).count();
    let mut score = CategoryScore {
        accuracy: 0.0,
        correct,
        total,
        process: None,
        conversations: None,
    };
    if category.is_multi_turn() {
        let mut groups: Vec<(&str, Vec<bool>)> = Vec::new();
        for (id, ok) in verdicts {
            let turn = conversation_of(id);
            match groups.last_mut() {
                Some((t, v)) if *t == turn => v.push(*ok),
                _ => groups.push((turn, vec![*ok])),
            }
        }
        if !groups.is_empty() {
            let n = groups.len() as f64;
            let ends = groups
                .iter()
                .filter(|(_, v)| v.iter().all(|ok| *ok))
                .count();
            let process: f64 = groups
                .iter()
                .map(|(_, v)| round3(v.iter().filter(|ok| **ok).count() as f64 / v.len() as f64))
                .sum();
            score.accuracy = round3(ends as f64 / n);
            score.process = Some(round3(process / n));
        } else {
            score.process = Some(0.0);
        }
        score.conversations = Some(groups.len());
    } else if total > 0 {
        let a = correct as f64 / total as f64;
        score.accuracy = if category.is_special() { a } else { round3(a) };
    }
    score
}

/// Python's `round(x, 3)` (correctly rounded, ties to even on the exact
/// binary value — as Rust's formatting does).
pub fn round3(x: f64) -> f64 {
    format!("{x:.3}").parse().unwrap_or(x)
}

/// The official summary columns (`generate_result_csv`). A column is
/// `None` when one of its categories was not evaluated, except `summary`,
/// whose agent part is never run here (see below).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AceSummary {
    /// Per-category scores.
    pub categories: BTreeMap<AceCategory, CategoryScore>,
    /// `atom`: unweighted mean of the six atom categories.
    pub atom: Option<f64>,
    /// `single_turn`: unweighted mean of single and parallel function.
    pub single_turn: Option<f64>,
    /// `multiple_turn`: unweighted mean of user switch and user adjust.
    pub multi_turn: Option<f64>,
    /// `normal_summary`: unweighted mean of the twelve normal categories.
    pub normal: Option<f64>,
    /// `special_summary`: unweighted mean of the three special categories.
    pub special: Option<f64>,
    /// `Summary` = `0.2676·special + 0.578·normal + 0.1545·agent` with the
    /// agent categories at 0, as the official table has them when they
    /// were not run (so at most 0.8456). `None` unless `normal` and
    /// `special` are both complete.
    pub summary: Option<f64>,
}

/// `calculate_unweighted_accuracy`: `round(mean, 3)`, `None` if any is
/// missing.
fn unweighted(scores: &BTreeMap<AceCategory, CategoryScore>, cats: &[AceCategory]) -> Option<f64> {
    let vals: Option<Vec<f64>> = cats
        .iter()
        .map(|c| scores.get(c).map(|s| s.accuracy))
        .collect();
    let vals = vals?;
    Some(round3(vals.iter().sum::<f64>() / vals.len() as f64))
}

/// The official aggregation of per-category scores.
///
/// ```
/// use std::collections::BTreeMap;
/// use toolgym_reward::acebench::{score_category, summarize_scores, AceCategory};
/// let mut scores = BTreeMap::new();
/// scores.insert(AceCategory::SingleFunction, score_category(AceCategory::SingleFunction, &[("a", true), ("b", true), ("c", false)]));
/// scores.insert(AceCategory::ParallelFunction, score_category(AceCategory::ParallelFunction, &[("d", true), ("e", false)]));
/// let s = summarize_scores(&scores);
/// assert_eq!(s.categories[&AceCategory::SingleFunction].accuracy, 0.667);
/// assert_eq!(s.single_turn, Some(0.584)); // round((0.667 + 0.5) / 2, 3)
/// assert_eq!(s.atom, None);
/// ```
pub fn summarize_scores(scores: &BTreeMap<AceCategory, CategoryScore>) -> AceSummary {
    use AceCategory as C;
    let atoms: Vec<C> = C::ALL.into_iter().filter(|c| c.is_atom()).collect();
    let special = unweighted(scores, &[C::Incomplete, C::ErrorParam, C::Irrelevant]);
    // In `generate_result_csv`'s order: the sum's rounding, and so a mean
    // on a .xxx5 boundary, depends on it.
    let normal = [
        C::SingleFunction,
        C::ParallelFunction,
        C::MultiTurnUserSwitch,
        C::MultiTurnUserAdjust,
        C::SimilarApi,
        C::Preference,
    ]
    .into_iter()
    .chain(atoms.iter().copied());
    let normal = unweighted(scores, &normal.collect::<Vec<_>>());
    AceSummary {
        atom: unweighted(scores, &atoms),
        single_turn: unweighted(scores, &[C::SingleFunction, C::ParallelFunction]),
        multi_turn: unweighted(scores, &[C::MultiTurnUserSwitch, C::MultiTurnUserAdjust]),
        summary: match (special, normal) {
            (Some(s), Some(n)) => Some(round3(s * 0.2676 + n * 0.578 + 0.0 * 0.1545)),
            _ => None,
        },
        normal,
        special,
        categories: scores.clone(),
    }
}
