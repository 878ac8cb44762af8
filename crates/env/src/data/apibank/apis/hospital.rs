//! Hospital appointments (`Appointments.json`: `{id: {patient_name, date,
//! doctor_name}}`). Dates go through `format_check` (strip, zero-fill a
//! short year, `%Y-%m-%d`); an invalid one is an exception *object* in
//! Python, which equals nothing — here `None`, compared with [`same_date`].

use super::{
    gt_field, gt_input, strip, text_of, ApiInfo, ApiResult, Args, Crash, Ctx, Output, Raised,
};
use crate::data::apibank::pytime::format_date;
use crate::data::apibank::value::{self, dict, get, s};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson::py_strip;

/// `format_check(a) == format_check(b)` where an invalid date is an
/// exception object (never equal, not even to another one).
fn same_date(a: &Option<String>, b: &Option<String>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x == y)
}

fn invalid_date(d: &str) -> String {
    format!(
        "time data {} does not match format '%Y-%m-%d'",
        value::quoted(&crate::data::apibank::pytime::normalise_prefix(d))
    )
}

pub(crate) fn call(api: &'static ApiInfo, a: &Args, cx: &mut Ctx<'_>) -> Result<ApiResult, Raised> {
    let outcome = match api.name {
        "AppointmentRegistration" => register(a, cx),
        "CancelRegistration" => cancel(a, cx),
        "ModifyRegistration" => modify(a, cx),
        _ => query(a, cx),
    };
    Ok(ApiResult::new(Some(api.name), a.input(api), outcome))
}

fn register(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let patient = py_strip(a.text("patient_name")?).to_string();
    let doctor = py_strip(a.text("doctor_name")?).to_string();
    if patient.is_empty() || doctor.is_empty() {
        return Err("Patient name or doctor name cannot be empty.".into());
    }
    let date_text = a.text("date")?;
    let date = format_date(date_text).ok_or_else(|| invalid_date(date_text))?;
    if let PyVal::Dict(rows) = cx.state.table("Appointments") {
        for (_, row) in rows {
            if !get(row, "patient_name").is_some_and(|p| p.py_eq(&s(&patient))) {
                continue;
            }
            let row_date = match get(row, "date") {
                Some(PyVal::Str(d)) => format_date(d),
                _ => return Err("KeyError: 'date'".into()),
            };
            if row_date.as_deref() == Some(date.as_str()) {
                if get(row, "doctor_name").is_some_and(|d| d.py_eq(&s(&doctor))) {
                    return Err("This appointment has already been registered.".into());
                }
                return Err("This patient has already been registered in this day.".into());
            }
        }
    }
    // `str(random.randint(10000000, 99999999))` not already used; the check
    // ignores it, so a per-episode sequence stands in for `random`.
    let id = loop {
        let candidate = (10_000_000 + cx.state.next_serial() % 90_000_000).to_string();
        if get(cx.state.table("Appointments"), &candidate).is_none() {
            break candidate;
        }
    };
    let row = dict([
        ("patient_name", s(&patient)),
        ("date", s(&date)),
        ("doctor_name", s(&doctor)),
    ]);
    value::set_key(cx.state.table_mut("Appointments"), s(&id), row);
    Ok(Output::Value(s(&id)))
}

fn cancel(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let id = s(py_strip(a.text("appointment_id")?));
    let db = cx.state.table_mut("Appointments");
    if db.dict_get_key(&id).is_none() {
        return Err("The appointment ID is incorrect.".into());
    }
    value::del_key(db, &id);
    Ok(Output::Value(s("success")))
}

fn modify(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let id = s(py_strip(a.text("appointment_id")?));
    let Some(row) = cx.state.table("Appointments").dict_get_key(&id) else {
        return Err("The appointment ID does not exist.".into());
    };
    // `None` = not given; `Some(Err)` = an invalid date (exception object).
    let date: Option<Result<String, String>> = match a.get("new_appointment_date") {
        None | Some(PyVal::None) => None,
        Some(v) => {
            let t = text_of(v).map_err(|e| e.to_string())?;
            Some(format_date(t).ok_or_else(|| invalid_date(t)))
        }
    };
    let doctor: Option<String> = match a.get("new_appointment_doctor") {
        None | Some(PyVal::None) => None,
        Some(v) => {
            let d = py_strip(text_of(v).map_err(|e| e.to_string())?).to_string();
            if d.is_empty() {
                return Err("Fail because the doctor name is empty.".into());
            }
            Some(d)
        }
    };
    let date = date.transpose()?;
    let stored_date = get(row, "date").cloned().unwrap_or(PyVal::None);
    let stored_doctor = get(row, "doctor_name").cloned().unwrap_or(PyVal::None);
    let same = |v: &Option<String>, stored: &PyVal| v.as_ref().is_some_and(|x| stored.py_eq(&s(x)));
    match (&date, &doctor) {
        (None, None) => return Err("Fail because no modification is made.".into()),
        (None, Some(_)) if same(&doctor, &stored_doctor) => {
            return Err("Fail because doctor is not changed.".into())
        }
        (Some(_), None) if same(&date, &stored_date) => {
            return Err("Fail because date is not changed.".into())
        }
        (Some(_), Some(_)) => {
            if same(&date, &stored_date) && same(&doctor, &stored_doctor) {
                return Err("Fail because no modification is made.".into());
            }
            if same(&date, &stored_date) {
                return Err("Fail because date is not changed.".into());
            }
            if same(&doctor, &stored_doctor) {
                return Err("Fail because doctor is not changed.".into());
            }
        }
        _ => {}
    }
    let row = value::get_key_mut(cx.state.table_mut("Appointments"), &id)
        .ok_or("The appointment ID does not exist.")?;
    if let Some(d) = date {
        value::set_key(row, s("date"), s(&d));
    }
    if let Some(d) = doctor {
        value::set_key(row, s("doctor_name"), s(&d));
    }
    Ok(Output::Value(s("success")))
}

fn query(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let patient = s(py_strip(a.text("patient_name")?));
    let date_text = a.text("date")?;
    let date = format_date(date_text).ok_or_else(|| invalid_date(date_text))?;
    let mut found = Vec::new();
    if let PyVal::Dict(rows) = cx.state.table("Appointments") {
        for (id, row) in rows {
            if !get(row, "patient_name").is_some_and(|p| p.py_eq(&patient)) {
                continue;
            }
            let row_date = match get(row, "date") {
                Some(PyVal::Str(d)) => format_date(d),
                _ => return Err("KeyError: 'date'".into()),
            };
            if row_date.as_deref() == Some(date.as_str()) {
                found.push((id.clone(), row.clone()));
            }
        }
    }
    if found.is_empty() {
        return Err("No appointments found.".into());
    }
    Ok(Output::Value(PyVal::Dict(found)))
}

/// A date input of the check: `None` stays `None`, else `format_check`.
enum CheckDate {
    Absent,
    Date(Option<String>),
}

fn check_date(v: &PyVal) -> Result<CheckDate, Crash> {
    Ok(match v {
        PyVal::None => CheckDate::Absent,
        other => CheckDate::Date(format_date(text_of(other)?)),
    })
}

pub(crate) fn check(api: &'static ApiInfo, r: &ApiResult, gt: &PyVal) -> Result<bool, Crash> {
    match api.name {
        "AppointmentRegistration" => {
            let rp = strip(r.input("patient_name")?)?;
            let rd = format_date(text_of(r.input("date")?)?);
            let rdoc = strip(r.input("doctor_name")?)?;
            let gp = strip(gt_input(gt, "patient_name")?)?;
            let gd = format_date(text_of(gt_input(gt, "date")?)?);
            let gdoc = strip(gt_input(gt, "doctor_name")?)?;
            let g_out = gt_field(gt, "output")?;
            if rp != gp || !same_date(&rd, &gd) || rdoc != gdoc {
                return Ok(false);
            }
            if g_out.py_eq(&PyVal::None) && !r.output.is_none() {
                return Ok(false);
            }
            r.exception_eq(gt)
        }
        "CancelRegistration" => {
            let mine = strip(r.input("appointment_id")?)?;
            let theirs = strip(gt_input(gt, "appointment_id")?)?;
            Ok(mine == theirs && r.output_eq(gt)? && r.exception_eq(gt)?)
        }
        "ModifyRegistration" => {
            let rid = py_strip(&(r.input("appointment_id")?).py_str()).to_string();
            let gid_v = gt_input(gt, "appointment_id")?;
            let rdate = r.input("new_appointment_date")?;
            let gdate = gt_input(gt, "new_appointment_date")?;
            let rdoc = r.input("new_appointment_doctor")?;
            let gdoc = gt_input(gt, "new_appointment_doctor")?;
            let gid = strip(gid_v)?;
            let (rdate, gdate) = (check_date(rdate)?, check_date(gdate)?);
            let doc = |v: &PyVal| -> Result<Option<String>, Crash> {
                Ok(match v {
                    PyVal::None => None,
                    other => Some(strip(other)?),
                })
            };
            let (rdoc, gdoc) = (doc(rdoc)?, doc(gdoc)?);
            let out_eq = r.output_eq(gt)?;
            let exc_eq = r.exception_eq(gt)?;
            let dates_eq = match (&rdate, &gdate) {
                (CheckDate::Absent, CheckDate::Absent) => true,
                (CheckDate::Date(a), CheckDate::Date(b)) => same_date(a, b),
                _ => false,
            };
            Ok(rid == gid && dates_eq && rdoc == gdoc && out_eq && exc_eq)
        }
        _ => {
            let rp = strip(r.input("patient_name")?)?;
            let gp = strip(gt_input(gt, "patient_name")?)?;
            let rd = format_date(text_of(r.input("date")?)?);
            let gd = format_date(text_of(gt_input(gt, "date")?)?);
            Ok(rp == gp && same_date(&rd, &gd) && r.output_eq(gt)? && r.exception_eq(gt)?)
        }
    }
}
