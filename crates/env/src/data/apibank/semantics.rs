//! The Python behaviours the APIs depend on, as functions: date parsing
//! and normalisation, NLTK's tokenizer, SearchEngine's BM25 ranking and the
//! official Calculator. Public so that they can be checked against the
//! Python reference on their own (`tests/apibank.rs`).

use super::apis::{calculator, search};
use super::pytime;
use super::world::ApiBankData;

/// Whether `datetime.strptime(text, '%Y-%m-%d %H:%M:%S')` succeeds.
///
/// ```
/// use toolgym_env::data::apibank::semantics::is_datetime;
/// assert!(is_datetime("2023-3-5 8:0:0"));
/// assert!(!is_datetime("2023-03-05T08:00:00"));
/// ```
pub fn is_datetime(text: &str) -> bool {
    pytime::strptime_datetime(text).is_some()
}

/// `format_check` for dates (AppointmentRegistration, QueryRegistration,
/// ModifyRegistration, QueryStock): the `%Y-%m-%d` form, or `None` where
/// Python keeps an exception.
///
/// ```
/// use toolgym_env::data::apibank::semantics::format_date;
/// assert_eq!(format_date(" 2023-3-5").as_deref(), Some("2023-03-05"));
/// assert_eq!(format_date("2023-02-29"), None);
/// ```
pub fn format_date(text: &str) -> Option<String> {
    pytime::format_date(text)
}

/// `format_check` for times (TimedSwitch, CancelTimedSwitch,
/// RecordHealthData): the `%Y-%m-%d %H:%M:%S` form, or `None`.
pub fn format_datetime(text: &str) -> Option<String> {
    pytime::format_datetime(text)
}

/// QueryHealthData's `format_check` of a time, written back as
/// `%Y-%m-%d %H:%M:%S` (years below 1000 unpadded, as glibc writes them).
pub fn format_datetime_value(text: &str) -> Option<String> {
    pytime::format_datetime_value(text).map(|d| d.datetime_string())
}

/// QueryHistoryToday's `filter_date_format`: `MM-DD`, or `None`.
pub fn history_date(text: &str) -> Option<String> {
    pytime::history_date(text)
}

/// NLTK's `word_tokenize(text, preserve_line=True)` (nltk 3.9.1).
///
/// ```
/// use toolgym_env::data::apibank::semantics::word_tokenize;
/// assert_eq!(word_tokenize("AI's impact, don't."), ["AI", "'s", "impact", ",", "do", "n't", "."]);
/// ```
pub fn word_tokenize(text: &str) -> Vec<String> {
    super::apis::tokenize::word_tokenize(text)
}

/// What the official Calculator does with a formula.
#[derive(Clone, Debug, PartialEq)]
pub enum Calculation {
    /// The result.
    Value(f64),
    /// An exception (invalid formula, division by zero, bad nesting, …).
    Exception(String),
    /// The official code loops forever (an operator at the start of the
    /// token list, e.g. a unary minus).
    Hang,
}

/// The official Calculator on `formula`.
///
/// ```
/// use toolgym_env::data::apibank::semantics::{calculate, Calculation};
/// assert_eq!(calculate("(5+6)*3"), Calculation::Value(33.0));
/// assert_eq!(calculate("-5+3"), Calculation::Hang);
/// assert!(matches!(calculate("((5+6))*3"), Calculation::Exception(_)));
/// ```
pub fn calculate(formula: &str) -> Calculation {
    calculator::evaluate_formula(formula)
}

/// SearchEngine's ranking of `keyword`: the BM25 score of every document
/// (in `SearchEngine.json` order) and the indices of the two it returns.
/// `None` when the databases have no search index.
pub fn search_ranking(data: &ApiBankData, keyword: &str) -> Option<(Vec<f64>, Vec<usize>)> {
    let index = data.bm25.as_ref()?;
    let tokens = search::query_tokens(keyword);
    Some((index.scores(&tokens), index.top2(&tokens)))
}
