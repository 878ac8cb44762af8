//! Smart home: QueryScene and DeleteScene (`Scenes.json`), TimedSwitch and
//! CancelTimedSwitch (`TimeSwitch.json`).
//!
//! The recorded QueryScene outputs capitalise device names the database
//! writes in lower case, and the recorded TimedSwitch / CancelTimedSwitch
//! calls use a `device_id` parameter where the checks read `name` (a
//! `KeyError`): none of those samples can pass.

use super::{gt_input, strip, text_of, ApiInfo, ApiResult, Args, Crash, Ctx, Output, Raised};
use crate::data::apibank::pytime::format_datetime;
use crate::data::apibank::value::{self, dict, get, s};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson::py_strip;

pub(crate) fn call(api: &'static ApiInfo, a: &Args, cx: &mut Ctx<'_>) -> Result<ApiResult, Raised> {
    let outcome = match api.name {
        "QueryScene" => query_scene(a, cx),
        "DeleteScene" => delete_scene(a, cx),
        "TimedSwitch" => timed_switch(a, cx),
        _ => cancel_timed_switch(a, cx),
    };
    Ok(ApiResult::new(Some(api.name), a.input(api), outcome))
}

fn name_of(a: &Args) -> Result<String, String> {
    Ok(py_strip(a.text("name")?).to_lowercase())
}

fn bad_time(t: &str) -> String {
    format!(
        "time data {} does not match format '%Y-%m-%d %H:%M:%S'",
        value::quoted(t)
    )
}

fn query_scene(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let name = name_of(a)?;
    if name.is_empty() {
        return Err("Scene name cannot be empty.".into());
    }
    get(cx.state.table("Scenes"), &name)
        .cloned()
        .map(Output::Value)
        .ok_or_else(|| "Scene not found.".into())
}

fn delete_scene(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let name = name_of(a)?;
    if name.is_empty() {
        return Err("Scene name cannot be empty.".into());
    }
    let db = cx.state.table_mut("Scenes");
    if get(db, &name).is_none() {
        return Err("The scene does not exist.".into());
    }
    value::del_key(db, &s(&name));
    Ok(Output::Value(s("success")))
}

fn timed_switch(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let name = name_of(a)?;
    if name.is_empty() {
        return Err("Name cannot be empty.".into());
    }
    let t = a.text("time")?;
    let time = format_datetime(t).ok_or_else(|| bad_time(t))?;
    let on = a.value("on");
    let db = cx.state.table_mut("TimeSwitch");
    let entry = dict([("time", s(&time)), ("on", on.clone())]);
    match value::get_key_mut(db, &s(&name)) {
        None => value::set_key(db, s(&name), PyVal::List(vec![entry])),
        Some(PyVal::List(items)) => {
            match items
                .iter_mut()
                .find(|i| get(i, "time").is_some_and(|x| x.py_eq(&s(&time))))
            {
                Some(item) => value::set_key(item, s("on"), on),
                None => items.push(entry),
            }
        }
        Some(_) => return Err("'dict' object has no attribute 'append'".into()),
    }
    Ok(Output::Value(s("success")))
}

fn cancel_timed_switch(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let name = name_of(a)?;
    if name.is_empty() {
        return Err("name cannot be empty.".into());
    }
    let t = a.text("time")?;
    let time = format_datetime(t).ok_or_else(|| bad_time(t))?;
    let db = cx.state.table_mut("TimeSwitch");
    let Some(PyVal::List(items)) = value::get_key_mut(db, &s(&name)) else {
        return Err("device name does not exist.".into());
    };
    let Some(i) = items
        .iter()
        .position(|i| get(i, "time").is_some_and(|x| x.py_eq(&s(&time))))
    else {
        return Err("time does not exist.".into());
    };
    items.remove(i);
    Ok(Output::Value(s("success")))
}

pub(crate) fn check(api: &'static ApiInfo, r: &ApiResult, gt: &PyVal) -> Result<bool, Crash> {
    let rn = r.input("name")?;
    let gn = gt_input(gt, "name")?;
    let (rn, gn) = (strip(rn)?.to_lowercase(), strip(gn)?.to_lowercase());
    match api.name {
        "QueryScene" | "DeleteScene" => Ok(rn == gn && r.output_eq(gt)? && r.exception_eq(gt)?),
        name => {
            let rt = format_datetime(text_of(r.input("time")?)?);
            let gtt = format_datetime(text_of(gt_input(gt, "time")?)?);
            let times = matches!((&rt, &gtt), (Some(a), Some(b)) if a == b);
            let on = if name == "TimedSwitch" {
                r.input("on")?.py_eq(gt_input(gt, "on")?)
            } else {
                true
            };
            Ok(rn == gn && times && on && r.output_eq(gt)? && r.exception_eq(gt)?)
        }
    }
}
