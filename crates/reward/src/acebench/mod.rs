//! # ACEBench's rule-based checker
//!
//! A re-implementation of ACEBench's official evaluation (github
//! ACEBench/ACEBench, `model_eval/checker.py`, `model_eval/utils.py`,
//! `eval_main.py`, `model_inference/utils.py`; the copy toolgym was checked
//! against is commit e6db74b) for the categories it scores by rule: the six
//! atom categories, single and parallel function, similar API, preference,
//! and the three special categories. Verdicts are tested against the
//! official code's own outputs (`crates/reward/tests/fixtures/acebench/`).
//!
//! - [`decode`]: the official decoder (whitespace removed, then a Python
//!   list of calls).
//! - [`normal_checker`]: the official checker of one possible answer;
//!   [`judge`] runs a whole case (decode, every possible answer, special
//!   phrases).
//! - [`special_checker`]: the three special categories.
//! - [`score_category`], [`summarize_scores`]: the official aggregation.
//!
//! ## Quirks of the official evaluation (all reproduced)
//! 1. All whitespace is removed before decoding, inside strings too:
//!    `'New York'` arrives as `'NewYork'`; `not True` becomes the name
//!    `notTrue` (a string value); `lambda x: 1` becomes a syntax error.
//! 2. The output must be a list (or tuple / set) of calls: a bare call
//!    without brackets is `wrong_output_format`. Positional arguments are
//!    dropped; a nested call without keywords is `{name: {}}`.
//! 3. Integers, floats and booleans are only *type*-checked: any `int` passes
//!    for an integer parameter whatever its value (`days=30` for 3).
//! 4. Strings pass when the standardised answer (drop ` ,./-_*^`,
//!    lowercase, `'`→`"`) is a *substring* of the standardised value:
//!    `'Paris, France'` passes for `Paris`.
//! 5. Dict values (at any depth) pass when `str(answer)` is a substring of
//!    `str(value)`, after standardising top-level strings: `30` passes for
//!    `3`; lists and dicts inside are compared by their Python text, so
//!    their key order matters, and after quirk 1 a list of strings with
//!    spaces (`['New York']` against `['NewYork']`) can never match.
//! 6. A value of another type than the schema's, but of the answer's type
//!    (or equal to the answer), passes without any value check
//!    ("variable" answers): e.g. every string passes for a schema `enum`,
//!    since `enum` maps to Python's `enumerate`.
//! 7. `"true"` / `"false"` strings are read as booleans before type checks
//!    (so `"true"` for a *string* parameter is a `type_error`).
//! 8. An optional answer `""` matches any string.
//! 9. Expected parameters the model leaves out are not reported unless
//!    they are `required`; parameters the model adds that are not in the
//!    answer are `addition_args`, even when the schema defines them.
//! 10. Calls with no arguments pass only if the schema has no parameters,
//!     and the other way round (`wrong_param`); an answer equal to the
//!     schema's `properties` passes whatever the model sent.
//! 11. Parallel answers: `f_1`, `f_2` keys name repeated calls; each
//!     expected call needs *some* model call of the same name that passes
//!     (a model call may serve two expected calls; the per-name counts
//!     must match). The function description is found by *substring*: the
//!     first function whose name occurs in the answer key.
//! 12. Special categories are case-sensitive substring tests on the raw
//!     reply; an incomplete-parameter list such as `"propertyDetails "`
//!     must appear with its stray spaces.
//! 13. Per-category accuracy is rounded to 3 decimals for the normal
//!     categories and unrounded for the special ones; summaries are
//!     unweighted means of the rounded figures, rounded to 3 decimals.
//! 14. Multi-turn categories score conversations (all turns right), and a
//!     conversation is a run of *consecutive* records with the same
//!     second-to-last id field.
//! 15. The official result table swaps two headers: its `object_short`
//!     column holds `normal_atom_object_deep`'s accuracy and the other way
//!     round (toolgym labels each category by its own name).
//!
//! The [`AceDecoder::ToolN1`] decoder reads `<tool_call>` JSON and keeps
//! whitespace, so quirk 1 does not apply to it: it can accept answers the
//! official decoder cannot (never the other way round on the gold calls,
//! tested).
//!
//! Where the official code raises (a function without `parameters`, an
//! unknown type name, `objectArray` items of equal length), the case gets
//! an [`OfficialCrash`]: only the data can cause one.

mod aggregate;
mod checker;
mod decode;
mod special;

pub use aggregate::{
    conversation_of, round3, score_category, summarize_scores, AceCategory, AceSummary,
    CategoryScore,
};
pub use checker::{normal_checker, AceOutcome, OfficialCrash};
pub use decode::{decode, squeeze_whitespace};
pub use special::{special_checker, SpecialKind};

use crate::pycall::PyVal;

/// How a reply becomes calls for the normal categories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AceDecoder {
    /// The official decoder ([`decode`]): `[ApiName(key='value')]`.
    #[default]
    Official,
    /// Tool-N1 `<tool_call>` JSON blocks
    /// ([`decode_tool_n1`](crate::bfcl::decode_tool_n1)).
    ToolN1,
}

/// A Tool-N1 reply without its reasoning: the text after its first
/// `</think>`; nothing for one whose `<think>` never closes (it never
/// answered); the whole reply where there is no think block.
fn after_reasoning(reply: &str) -> &str {
    match reply.find(crate::parse::THINK_CLOSE) {
        Some(i) => &reply[i + crate::parse::THINK_CLOSE.len()..],
        None if reply.contains(crate::parse::THINK_OPEN) => "",
        None => reply,
    }
}

/// Judges one case the way `normal_single_turn_eval` / `special_eval` do:
/// the special categories test the raw reply for their phrases (with the
/// Tool-N1 decoder, the reply after its reasoning: a phrase the model
/// only weighed in its `<think>` block is no answer); the
/// others decode it (failure: `wrong_output_format`) and try every
/// possible answer (`answer` is one `{name: params}` or a list of them),
/// the first that passes making the case correct; a wrong case reports the
/// first answer's error.
///
/// ```
/// use toolgym_reward::acebench::{judge, AceCategory, AceDecoder};
/// use toolgym_reward::pycall::PyVal;
/// let functions = PyVal::from_json(&serde_json::json!([{"name": "play", "parameters": {
///     "type": "object", "properties": {"song": {"type": "string"}}, "required": ["song"]}}]));
/// let answer = PyVal::from_json(&serde_json::json!({"play": {"song": "Yesterday"}}));
/// let v = judge(AceCategory::SingleFunction, &functions, &answer, "[play(song='yesterday')]", AceDecoder::Official).unwrap();
/// assert!(v.valid);
/// let v = judge(AceCategory::SingleFunction, &functions, &answer, "play(song='Yesterday')", AceDecoder::Official).unwrap();
/// assert_eq!(v.error_type, "wrong_output_format");
/// // An irrelevant request: the phrase must be in the answer, not only in
/// // the reasoning of a Tool-N1 reply.
/// let none = PyVal::from_json(&serde_json::json!({}));
/// let weighed = "<think>the limitations of the function? No: play fits.</think>\n\
///                <tool_call>[{\"name\": \"play\", \"arguments\": {}}]</tool_call>";
/// let said = "<think>no tool fits</think>\nDue to the limitations of the function, I cannot.";
/// let irrelevant = |reply| judge(AceCategory::Irrelevant, &functions, &none, reply, AceDecoder::ToolN1).unwrap();
/// assert!(!irrelevant(weighed).valid && irrelevant(said).valid);
/// ```
pub fn judge(
    category: AceCategory,
    functions: &PyVal,
    answer: &PyVal,
    reply: &str,
    decoder: AceDecoder,
) -> Result<AceOutcome, OfficialCrash> {
    let special = match category {
        AceCategory::Incomplete => Some(SpecialKind::Incomplete),
        AceCategory::ErrorParam => Some(SpecialKind::ErrorParam),
        AceCategory::Irrelevant => Some(SpecialKind::Irrelevant),
        _ => None,
    };
    if let Some(kind) = special {
        let said = match decoder {
            AceDecoder::Official => reply,
            AceDecoder::ToolN1 => after_reasoning(reply),
        };
        return special_checker(kind, said, answer);
    }
    let decoded = match decoder {
        AceDecoder::Official => decode(reply),
        AceDecoder::ToolN1 => crate::bfcl::decode_tool_n1(reply),
    };
    let output = match decoded {
        Ok(v) => v,
        Err(e) => {
            let mut out = AceOutcome::fail(
                "wrong_output_format",
                format!(
                    "Invalid syntax. Failed to decode AST. {}: {}",
                    e.exception, e.message
                ),
            );
            out.decoder_gap = e.is_unsupported();
            return Ok(out);
        }
    };
    let candidates: Vec<&PyVal> = match answer {
        PyVal::List(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut first_error: Option<AceOutcome> = None;
    for candidate in candidates {
        let outcome = normal_checker(functions, &output, candidate)?;
        if outcome.valid {
            return Ok(outcome);
        }
        first_error.get_or_insert(outcome);
    }
    Ok(first_error.unwrap_or_else(|| {
        AceOutcome::fail("wrong_output_format", "no possible answer to compare with")
    }))
}
