//! Agenda, alarms and reminders (`Agenda.json`, `Alarm.json`,
//! `Reminder.json`): rows `{…, username}` found by the token's user and an
//! exact content or time.

use super::{
    check_token, gt_field, gt_input, jaccard, next_id, text_of, ApiInfo, ApiResult, Args, Crash,
    Ctx, Output, Raised,
};
use crate::data::apibank::pytime::strptime_datetime;
use crate::data::apibank::value::{self, dict, get, s};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson::py_strip;

pub(crate) fn call(api: &'static ApiInfo, a: &Args, cx: &mut Ctx<'_>) -> Result<ApiResult, Raised> {
    let outcome = match api.name {
        "AddAgenda" => add_agenda(a, cx),
        "ModifyAgenda" => change_agenda(a, cx, Change::Modify),
        "QueryAgenda" => change_agenda(a, cx, Change::Query),
        "DeleteAgenda" => change_agenda(a, cx, Change::Delete),
        "AddAlarm" => add_alarm(a, cx),
        "DeleteAlarm" => alarm(a, cx, Change::Delete),
        "ModifyAlarm" => alarm(a, cx, Change::Modify),
        "QueryAlarm" => alarm(a, cx, Change::Query),
        "AddReminder" => add_reminder(a, cx),
        "ModifyReminder" => reminder(a, cx, Change::Modify),
        "QueryReminder" => reminder(a, cx, Change::Query),
        _ => reminder(a, cx, Change::Delete),
    };
    Ok(ApiResult::new(Some(api.name), a.input(api), outcome))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Modify,
    Query,
    Delete,
}

/// `datetime.strptime(t, '%Y-%m-%d %H:%M:%S')`, raising like Python.
fn require_datetime(t: &str) -> Result<(), String> {
    strptime_datetime(t).map(|_| ()).ok_or_else(|| {
        format!(
            "time data {} does not match format '%Y-%m-%d %H:%M:%S'",
            value::quoted(t)
        )
    })
}

fn row_is(row: &PyVal, key: &str, v: &PyVal) -> bool {
    get(row, key).is_some_and(|x| x.py_eq(v))
}

/// The key of the first row of `username` matching `hit`.
fn find_row(db: &PyVal, username: &str, hit: impl Fn(&PyVal) -> bool) -> Option<PyVal> {
    let PyVal::Dict(rows) = db else { return None };
    rows.iter()
        .find(|(_, row)| row_is(row, "username", &s(username)) && hit(row))
        .map(|(k, _)| k.clone())
}

fn add_agenda(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let time = a.text("time")?;
    require_datetime(time)?;
    if py_strip(a.text("content")?).is_empty() {
        return Err("Content should not be null".into());
    }
    let id = PyVal::Int(value::len(cx.state.table("Agenda")) as i128 + 1);
    let username = check_token(cx.state, &a.value("token"))?;
    let row = dict([
        ("username", s(&username)),
        ("content", a.value("content")),
        ("time", a.value("time")),
        ("location", a.value("location")),
    ]);
    value::set_key(cx.state.table_mut("Agenda"), id, row);
    Ok(Output::Value(s("success")))
}

fn change_agenda(a: &Args, cx: &mut Ctx<'_>, change: Change) -> Result<Output, String> {
    let (content, time) = (a.text("content")?, a.text("time")?);
    if !time.is_empty() {
        require_datetime(time)?;
    }
    let username = check_token(cx.state, &a.value("token"))?;
    let found = find_row(cx.state.table("Agenda"), &username, |row| {
        row_is(row, "content", &a.value("content")) || row_is(row, "time", &a.value("time"))
    });
    if let Some(key) = found {
        let db = cx.state.table_mut("Agenda");
        return Ok(match change {
            Change::Modify => {
                let row = dict([
                    ("username", s(&username)),
                    ("content", a.value("content")),
                    ("time", a.value("time")),
                    ("location", a.value("location")),
                ]);
                value::set_key(db, key, row);
                Output::Value(s("success"))
            }
            Change::Query => Output::Value(db.dict_get_key(&key).cloned().unwrap_or(PyVal::None)),
            Change::Delete => {
                value::del_key(db, &key);
                Output::Value(s("success"))
            }
        });
    }
    let what = if change == Change::Delete {
        "meeting"
    } else {
        "agenda"
    };
    if !content.is_empty() {
        return Err(format!("You have no {what} about {content}"));
    }
    if !time.is_empty() {
        return Err(format!("You have no {what} at time : {time}"));
    }
    match change {
        // ModifyAgenda *returns* `Exception('Error')`; QueryAgenda raises it.
        Change::Modify => Ok(Output::ExceptionObject("Error".into())),
        Change::Query => Err("Error".into()),
        Change::Delete => Ok(Output::Value(s("success"))),
    }
}

fn add_alarm(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    require_datetime(a.text("time")?)?;
    let id = PyVal::Int(value::len(cx.state.table("Alarm")) as i128 + 1);
    let username = check_token(cx.state, &a.value("token"))?;
    let row = dict([("username", s(&username)), ("time", a.value("time"))]);
    value::set_key(cx.state.table_mut("Alarm"), id, row);
    Ok(Output::Value(s("success")))
}

fn alarm(a: &Args, cx: &mut Ctx<'_>, change: Change) -> Result<Output, String> {
    let time_key = if change == Change::Modify {
        "from_time"
    } else {
        "time"
    };
    let time = a.text(time_key)?;
    require_datetime(time)?;
    if change == Change::Modify {
        require_datetime(a.text("to_time")?)?;
    }
    let username = check_token(cx.state, &a.value("token"))?;
    let found = find_row(cx.state.table("Alarm"), &username, |row| {
        row_is(row, "time", &a.value(time_key))
    });
    let Some(key) = found else {
        return Err(match change {
            Change::Modify => format!("You have no agenda at time : {time}"),
            _ => format!("You have no alarm clock at time : {time}"),
        });
    };
    let db = cx.state.table_mut("Alarm");
    Ok(Output::Value(match change {
        Change::Modify => {
            value::set_key(
                db,
                key,
                dict([("username", s(&username)), ("time", a.value("to_time"))]),
            );
            s("success")
        }
        Change::Query => db.dict_get_key(&key).cloned().unwrap_or(PyVal::None),
        Change::Delete => {
            value::del_key(db, &key);
            s("success")
        }
    }))
}

fn add_reminder(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    require_datetime(a.text("time")?)?;
    if py_strip(a.text("content")?).is_empty() {
        return Err("Content should not be null".into());
    }
    let id = next_id(cx.state, "Reminder")?;
    let username = check_token(cx.state, &a.value("token"))?;
    let row = dict([
        ("username", s(&username)),
        ("content", a.value("content")),
        ("time", a.value("time")),
    ]);
    value::set_key(cx.state.table_mut("Reminder"), s(&id.to_string()), row);
    Ok(Output::Value(s("success")))
}

fn reminder(a: &Args, cx: &mut Ctx<'_>, change: Change) -> Result<Output, String> {
    let (content, time) = (a.text("content")?, a.text("time")?);
    require_datetime(time)?;
    if py_strip(content).is_empty() {
        return Err("Content should not be null".into());
    }
    let username = check_token(cx.state, &a.value("token"))?;
    let found = find_row(cx.state.table("Reminder"), &username, |row| {
        row_is(row, "content", &a.value("content")) || row_is(row, "time", &a.value("time"))
    });
    let Some(key) = found else {
        return Err(format!(
            "You have no reminder about {content} or at time : {time}"
        ));
    };
    let db = cx.state.table_mut("Reminder");
    Ok(Output::Value(match change {
        Change::Modify => {
            if let Some(row) = value::get_key_mut(db, &key) {
                value::set_key(row, s("content"), a.value("content"));
                value::set_key(row, s("time"), a.value("time"));
            }
            s("success")
        }
        Change::Query => db.dict_get_key(&key).cloned().unwrap_or(PyVal::None),
        Change::Delete => {
            value::del_key(db, &key);
            s("success")
        }
    }))
}

pub(crate) fn check(api: &'static ApiInfo, r: &ApiResult, gt: &PyVal) -> Result<bool, Crash> {
    let name = api.name;
    if matches!(name, "AddAgenda" | "AddReminder" | "ModifyReminder") && !r.api_name_eq(gt)? {
        return Err(Crash::ApiNameAssertion);
    }
    match name {
        "AddAgenda" | "ModifyAgenda" | "QueryAgenda" => {
            let ok = jaccard(
                text_of(r.input("content")?)?,
                text_of(gt_input(gt, "content")?)?,
                false,
            );
            Ok(ok
                && r.input("time")?.py_eq(gt_input(gt, "time")?)
                && r.input("location")?.py_eq(gt_input(gt, "location")?)
                && r.output_eq(gt)?
                && r.exception_eq(gt)?)
        }
        "AddReminder" | "ModifyReminder" | "QueryReminder" => {
            let ok = jaccard(
                text_of(r.input("content")?)?,
                text_of(gt_input(gt, "content")?)?,
                true,
            );
            Ok(ok
                && r.input("time")?.py_eq(gt_input(gt, "time")?)
                && r.output_eq(gt)?
                && r.exception_eq(gt)?)
        }
        "DeleteAgenda" | "DeleteReminder" => {
            let success = s("success");
            if gt_field(gt, "output")?.py_eq(&success) && r.output.eq(&success) {
                return Ok(r.input("time")?.py_eq(gt_input(gt, "time")?));
            }
            Ok(r.output_eq(gt)? && r.exception_eq(gt)?)
        }
        _ => r.exact(gt),
    }
}
