//! ACEBench's special categories (`special_eval` in `eval_main.py`): the
//! model must point out a missing parameter, a wrong value, or a request
//! beyond its functions, with fixed phrases. Case-sensitive substring
//! tests on the raw reply (no whitespace removal, nothing decoded).

use super::checker::{AceOutcome, OfficialCrash};
use crate::pycall::PyVal;

/// Which special check (the category name contains `incomplete`,
/// `error` or `irrelevant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialKind {
    /// `special_incomplete`: `Missing necessary parameters`, the
    /// function's name and every missing parameter must appear.
    Incomplete,
    /// `special_error_param`: `There is incorrect value` and every wrong
    /// value must appear (the parameter's name need not).
    ErrorParam,
    /// `special_irrelevant`: `the limitations of the function` must appear.
    Irrelevant,
}

fn values_of(v: &PyVal) -> Result<Vec<String>, OfficialCrash> {
    let strings = |items: &[PyVal]| {
        items
            .iter()
            .map(|x| match x {
                PyVal::Str(s) => Ok(s.clone()),
                other => Err(OfficialCrash {
                    exception: "TypeError",
                    message: format!(
                        "'in <string>' requires string as left operand, not {}",
                        other.py_type().name()
                    ),
                }),
            })
            .collect()
    };
    match v {
        PyVal::Str(s) => Ok(s.chars().map(String::from).collect()),
        PyVal::List(items) | PyVal::Tuple(items) => strings(items),
        PyVal::Dict(entries) => {
            strings(&entries.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
        }
        other => Err(OfficialCrash {
            exception: "TypeError",
            message: format!("'{}' object is not iterable", other.py_type().name()),
        }),
    }
}

/// The official verdict on a special case: `reply` is the model's raw
/// text, `answer` the case's `ground_truth` (`{function: [parameters]}`,
/// `{parameter: [values]}`, or a string for irrelevance).
///
/// Every expected entry is checked; the case is wrong if any check fails,
/// and the reported error is the last failing one (`error_detection` when
/// the phrase is missing, `error_correction` when a name or value is).
///
/// ```
/// use toolgym_reward::acebench::{special_checker, SpecialKind};
/// use toolgym_reward::pycall::PyVal;
/// let answer = PyVal::from_json(&serde_json::json!({"book_flight": ["date"]}));
/// let reply = r#"["Missing necessary parameters (date) for the api (book_flight)"]"#;
/// assert!(special_checker(SpecialKind::Incomplete, reply, &answer).unwrap().valid);
/// let wrong = special_checker(SpecialKind::Incomplete, "[book_flight(to='Paris')]", &answer).unwrap();
/// assert_eq!(wrong.error_type, "error_detection");
/// ```
pub fn special_checker(
    kind: SpecialKind,
    reply: &str,
    answer: &PyVal,
) -> Result<AceOutcome, OfficialCrash> {
    let mut outcome = AceOutcome::ok();
    let not_dict = || OfficialCrash {
        exception: "AttributeError",
        message: format!(
            "'{}' object has no attribute 'items'",
            answer.py_type().name()
        ),
    };
    match kind {
        SpecialKind::Incomplete => {
            let PyVal::Dict(entries) = answer else {
                return Err(not_dict());
            };
            for (name, values) in entries {
                let name = match name {
                    PyVal::Str(s) => s.as_str(),
                    _ => return Err(not_dict()),
                };
                if !reply.contains("Missing necessary parameters") {
                    outcome = AceOutcome::fail(
                        "error_detection",
                        format!("The user's instruction is missing necessary parameters ({}) for the ({name}), but the model failed to correctly point it out", values.repr()),
                    );
                } else if !reply.contains(name) {
                    outcome = AceOutcome::fail(
                        "error_correction",
                        format!("The user's instruction is missing necessary parameters ({}) for the ({name}), but the model failed to correctly point it out", values.repr()),
                    );
                } else {
                    for value in values_of(values)? {
                        if !reply.contains(&value) {
                            outcome = AceOutcome::fail(
                                "error_correction",
                                format!("The user's instruction is missing necessary parameters ({value}) for the ({name}), but the model failed to correctly point it out"),
                            );
                        }
                    }
                }
            }
        }
        SpecialKind::ErrorParam => {
            let PyVal::Dict(entries) = answer else {
                return Err(not_dict());
            };
            for (name, values) in entries {
                let message = format!(
                    "The user's instruction contains incorrect values ({}) of the parameters ({}), but the model failed to correctly point it out",
                    values.repr(),
                    name.as_str().unwrap_or_default()
                );
                if !reply.contains("There is incorrect value") {
                    outcome = AceOutcome::fail("error_detection", message);
                } else {
                    for value in values_of(values)? {
                        if !reply.contains(&value) {
                            outcome = AceOutcome::fail("error_correction", message.clone());
                        }
                    }
                }
            }
        }
        SpecialKind::Irrelevant => {
            if !reply.contains("the limitations of the function") {
                outcome = AceOutcome::fail(
                    "error_detection",
                    "The model cannot solve this problem, due to the limitations of the function",
                );
            }
        }
    }
    Ok(outcome)
}
