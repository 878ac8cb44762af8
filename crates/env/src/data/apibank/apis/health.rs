//! Health: RecordHealthData and QueryHealthData (`HealthData.json`),
//! SymptomSearch and EmergencyKnowledge (`Symptom.json`).
//!
//! RecordHealthData's `health_data` arrives as a string, whose characters
//! are each checked for a `'name'` key, so every call fails with "The
//! health data has invalid format." — those samples cannot pass.

use super::{
    gt_input, strip, text_of, upper, ApiInfo, ApiResult, Args, Crash, Ctx, Output, Raised,
};
use crate::data::apibank::pytime::{
    format_datetime, format_datetime_value, strptime_datetime, DateTime,
};
use crate::data::apibank::value::{self, dict, get, s};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson::py_strip;

pub(crate) fn call(api: &'static ApiInfo, a: &Args, cx: &mut Ctx<'_>) -> Result<ApiResult, Raised> {
    let outcome = match api.name {
        "RecordHealthData" => record(a, cx),
        "QueryHealthData" => query(a, cx),
        "SymptomSearch" => symptom_search(a, cx),
        _ => emergency(a, cx),
    };
    Ok(ApiResult::new(Some(api.name), a.input(api), outcome))
}

fn record(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let user = py_strip(&upper(a.text("user_id")?)).to_string();
    if user.is_empty() {
        return Err("The user id cannot be empty.".into());
    }
    let time_text = a.text("time")?;
    let time = format_datetime(time_text).ok_or_else(|| {
        format!(
            "time data {} does not match format '%Y-%m-%d %H:%M:%S'",
            value::quoted(time_text)
        )
    })?;
    let items: Vec<PyVal> = match a.get("health_data") {
        None | Some(PyVal::None) => return Err("The health data cannot be empty.".into()),
        // Iterating a string gives its characters; `'name' not in c` holds
        // for every one of them.
        Some(PyVal::Str(text)) => text.chars().map(|c| s(&c.to_string())).collect(),
        Some(PyVal::List(items)) => items.clone(),
        Some(other) => {
            return Err(format!(
                "object of type '{}' has no len()",
                other.py_type().name()
            ))
        }
    };
    if items.is_empty() {
        return Err("The health data cannot be empty.".into());
    }
    let mut names: Vec<PyVal> = Vec::new();
    let mut pairs: Vec<(PyVal, PyVal)> = Vec::new();
    for item in &items {
        let (Some(name), PyVal::Dict(_)) = (get(item, "name"), item) else {
            return Err("The health data has invalid format.".into());
        };
        if names.iter().any(|n| n.py_eq(name)) {
            return Err("The health data cannot contain duplicate items.".into());
        }
        names.push(name.clone());
        let v = get(item, "value").cloned().ok_or("KeyError: 'value'")?;
        pairs.push((name.clone(), v));
    }
    let db = cx.state.table_mut("HealthData");
    if get(db, &user).is_none() {
        value::set_key(db, s(&user), PyVal::List(Vec::new()));
    }
    if let Some(PyVal::List(records)) = value::get_key_mut(db, &s(&user)) {
        let last = records
            .iter()
            .rposition(|r| get(r, "time").is_some_and(|t| t.py_eq(&s(&time))));
        match last {
            Some(i) => {
                for (k, v) in pairs {
                    value::set_key(&mut records[i], k, v);
                }
            }
            None => {
                let mut rec = dict([("time", s(&time))]);
                for (k, v) in pairs {
                    value::set_key(&mut rec, k, v);
                }
                records.push(rec);
            }
        }
    }
    Ok(Output::Value(s("success")))
}

/// QueryHealthData's `format_check` result: the upper-cased user (None
/// when blank) and the two times (None where Python keeps an exception).
type HealthQuery = (Option<String>, Option<DateTime>, Option<DateTime>);

/// QueryHealthData's `format_check`.
fn health_format(user: &PyVal, start: &PyVal, end: &PyVal) -> Result<HealthQuery, String> {
    let err = |e: Crash| e.to_string();
    let u = py_strip(&upper(text_of(user).map_err(err)?)).to_string();
    let st = format_datetime_value(text_of(start).map_err(err)?);
    let en = format_datetime_value(text_of(end).map_err(err)?);
    Ok(((!u.is_empty()).then_some(u), st, en))
}

fn query(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let (user, start, end) = health_format(
        &a.value("user_id"),
        &a.value("start_time"),
        &a.value("end_time"),
    )?;
    let user = user.ok_or("The user id cannot be empty.")?;
    let bad = |k: &str| {
        format!(
            "time data {} does not match format '%Y-%m-%d %H:%M:%S'",
            value::quoted(a.text(k).unwrap_or(""))
        )
    };
    let (start, end) = match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (None, None) => return Err(format!("{}; {}", bad("start_time"), bad("end_time"))),
        (None, _) => return Err(bad("start_time")),
        (_, None) => return Err(bad("end_time")),
    };
    if start > end {
        return Err("The start time cannot be later than the end time.".into());
    }
    let Some(PyVal::List(records)) = get(cx.state.table("HealthData"), &user) else {
        return Err("The user id does not exist.".into());
    };
    let mut out = Vec::new();
    for r in records {
        let t = match get(r, "time") {
            Some(PyVal::Str(t)) => strptime_datetime(t).ok_or("time data does not match format")?,
            _ => return Err("KeyError: 'time'".into()),
        };
        if t >= start && t <= end {
            out.push(r.clone());
        }
    }
    if out.is_empty() {
        return Err("There is no health data in the given time span.".into());
    }
    Ok(Output::Value(PyVal::List(out)))
}

fn symptom_search(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let symptom = py_strip(a.text("symptom")?).to_lowercase();
    if symptom.is_empty() {
        return Err("The symptom cannot be empty.".into());
    }
    let Some(PyVal::List(items)) = get(cx.state.table("Symptom"), &symptom) else {
        return Err("The symptom does not exist.".into());
    };
    let mut out = Vec::new();
    for item in items {
        let name = get(item, "name").cloned().ok_or("KeyError: 'name'")?;
        let description = get(item, "description")
            .cloned()
            .ok_or("KeyError: 'description'")?;
        out.push(dict([("name", name), ("description", description)]));
    }
    Ok(Output::Value(PyVal::List(out)))
}

fn emergency(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let symptom = py_strip(a.text("symptom")?).to_string();
    if symptom.is_empty() {
        // `Exception(...).lower()`.
        return Err("'Exception' object has no attribute 'lower'".into());
    }
    let symptom = symptom.to_lowercase();
    let Some(PyVal::List(items)) = cx.state.table("Symptom").dict_get_key(&s(&symptom)) else {
        return Err("The symptom does not exist.".into());
    };
    let mut out = Vec::new();
    for item in items {
        let name = get(item, "name").cloned().ok_or("KeyError: 'name'")?;
        let aid = get(item, "aid").cloned().ok_or("KeyError: 'aid'")?;
        out.push(dict([("name", name), ("aid", aid)]));
    }
    Ok(Output::Value(PyVal::List(out)))
}

pub(crate) fn check(api: &'static ApiInfo, r: &ApiResult, gt: &PyVal) -> Result<bool, Crash> {
    match api.name {
        "RecordHealthData" => {
            let ru = py_strip(&upper(&(r.input("user_id")?).py_str())).to_string();
            let gu = py_strip(&upper(text_of(gt_input(gt, "user_id")?)?)).to_string();
            let rt = format_datetime(text_of(r.input("time")?)?);
            let gt_time = format_datetime(text_of(gt_input(gt, "time")?)?);
            let times = matches!((&rt, &gt_time), (Some(a), Some(b)) if a == b);
            Ok(ru == gu && times && r.output_eq(gt)? && r.exception_eq(gt)?)
        }
        "QueryHealthData" => {
            let crash = |m: String| Crash::Other(m);
            let (ru, rs, re) = health_format(
                r.input("user_id")?,
                r.input("start_time")?,
                r.input("end_time")?,
            )
            .map_err(crash)?;
            let (gu, gs, ge) = health_format(
                gt_input(gt, "user_id")?,
                gt_input(gt, "start_time")?,
                gt_input(gt, "end_time")?,
            )
            .map_err(crash)?;
            let same = |a: Option<DateTime>, b: Option<DateTime>| matches!((a, b), (Some(x), Some(y)) if x == y);
            Ok(ru == gu
                && same(rs, gs)
                && same(re, ge)
                && r.output_eq(gt)?
                && r.exception_eq(gt)?)
        }
        name => {
            // SymptomSearch's format_check raises on a blank symptom;
            // EmergencyKnowledge's calls `.lower()` on an Exception: either
            // way the official run stops.
            let norm = |v: &PyVal| -> Result<String, Crash> {
                let t = strip(v)?;
                if t.is_empty() {
                    return Err(Crash::Other(if name == "SymptomSearch" {
                        "Exception: The symptom cannot be empty. (raised by the check)".into()
                    } else {
                        "AttributeError: 'Exception' object has no attribute 'lower' (in the check)"
                            .into()
                    }));
                }
                Ok(t.to_lowercase())
            };
            let mine = norm(r.input("symptom")?)?;
            let theirs = norm(gt_input(gt, "symptom")?)?;
            Ok(mine == theirs && r.output_eq(gt)? && r.exception_eq(gt)?)
        }
    }
}
