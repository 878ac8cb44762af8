//! The lookups over stored data and the small self-contained APIs:
//! QueryHistoryToday, QueryStock, DocumentQA, ImageCaption,
//! SpeechRecognition, Wiki, PlayMusic, SendEmail, GetToday, BookHotel.
//!
//! No model runs: captions, transcripts and answers come from the
//! databases, as in the official code. DocumentQA always answers "The
//! question is too difficult to answer." (its question lookup searches a
//! list of dicts for a string). GetToday returns the hard-coded
//! `2023-03-31`.

use super::{
    as_number, gt_input, lower, strip, text_of, upper, ApiInfo, ApiResult, Args, Crash, Ctx,
    Output, Raised,
};
use crate::data::apibank::pytime::{format_date, history_date, strptime_date, DateTime};
use crate::data::apibank::value::{self, dict, get, s};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson::py_strip;

/// What GetToday returns.
pub(crate) const TODAY: &str = "2023-03-31";

/// DocumentQA's only answer.
pub(crate) const DOCUMENT_QA_ANSWER: &str = "The question is too difficult to answer.";

pub(crate) fn call(api: &'static ApiInfo, a: &Args, cx: &mut Ctx<'_>) -> Result<ApiResult, Raised> {
    let name = Some(api.name);
    Ok(match api.name {
        "GetToday" => ApiResult::new(name, PyVal::None, Ok(Output::Value(s(TODAY)))),
        "QueryHistoryToday" => ApiResult::new(name, a.input(api), history(a, cx)),
        "QueryStock" => ApiResult::new(name, a.input(api), stock(a, cx)),
        "DocumentQA" => ApiResult::new(name, a.input(api), document_qa(a, cx)),
        "ImageCaption" => ApiResult::new(name, a.input(api), image_caption(a, cx)),
        "SpeechRecognition" => ApiResult::new(name, a.input(api), speech(a, cx)),
        "Wiki" => ApiResult::new(name, a.input(api), wiki(a, cx)),
        "PlayMusic" => ApiResult::new(name, a.input(api), play_music(a)),
        "SendEmail" => ApiResult::new(name, a.input(api), send_email(a)),
        "BookHotel" => ApiResult::new(name, a.input(api), book_hotel(a, cx)),
        other => return Err(Raised::Error(format!("invalid tool name: {other}"))),
    })
}

fn history(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let d = a.text("date")?;
    let date = history_date(d).ok_or_else(|| {
        format!(
            "time data {} does not match format '%m-%d'",
            value::quoted(d)
        )
    })?;
    let Some(PyVal::List(items)) = get(cx.state.table("History"), &date) else {
        return Err("The date is not in the database.".into());
    };
    let mut out = Vec::new();
    for item in items {
        let field = |k: &str| -> Result<String, String> {
            match get(item, k) {
                Some(PyVal::Str(t)) => Ok(py_strip(t).to_string()),
                Some(_) => Err(format!("'{k}' has no attribute 'strip'")),
                None => Err(format!("KeyError: '{k}'")),
            }
        };
        out.push(s(&format!(
            "Title: {}, Date: {}, Description: {}",
            field("Title")?,
            field("Date")?,
            field("Description")?
        )));
    }
    Ok(Output::Value(PyVal::List(out)))
}

/// QueryStock's `format_check`: the upper-cased code (None when blank)
/// and the normalised date (None: an exception object).
fn stock_format(code: &PyVal, date: &PyVal) -> Result<(Option<String>, Option<String>), String> {
    let code = py_strip(&upper(text_of(code).map_err(|e| e.to_string())?)).to_string();
    let date = format_date(text_of(date).map_err(|e| e.to_string())?);
    Ok(((!code.is_empty()).then_some(code), date))
}

fn stock(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let (code, date) = stock_format(&a.value("stock_code"), &a.value("date"))?;
    let code = code.ok_or("The stock code cannot be empty.")?;
    let date = date.ok_or_else(|| {
        format!(
            "time data {} does not match format '%Y-%m-%d'",
            value::quoted(a.text("date").unwrap_or(""))
        )
    })?;
    let prices = get(cx.state.table("Stock"), &code).ok_or("The stock code does not exist.")?;
    get(prices, &date)
        .cloned()
        .map(Output::Value)
        .ok_or_else(|| "The stock price of this date is not maintained.".into())
}

fn document_qa(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let url = py_strip(a.text("url")?).to_string();
    let question = s(py_strip(a.text("question")?));
    if question == s("") {
        return Err("The question is empty.".into());
    }
    let doc = get(cx.state.table("QuestionAnswering"), &url)
        .ok_or("The document of this url failed to be processed.")?;
    // `question in self.database[url]`: the database holds a list of
    // {question, answer} dicts, so a string is never in it.
    Ok(Output::Value(match doc {
        PyVal::Dict(_) => match doc.dict_get_key(&question) {
            Some(answer) => answer.clone(),
            None => s(DOCUMENT_QA_ANSWER),
        },
        PyVal::List(items) if items.iter().any(|i| i.py_eq(&question)) => {
            return Err("list indices must be integers or slices, not str".into())
        }
        _ => s(DOCUMENT_QA_ANSWER),
    }))
}

fn image_caption(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let url = py_strip(a.text("url")?).to_string();
    if !(url.ends_with(".jpg") || url.ends_with(".jpeg") || url.ends_with(".png")) {
        return Err("The url should end with .jpg, .jpeg or .png.".into());
    }
    if let PyVal::List(items) = cx.state.table("ImageCaptioning") {
        for item in items {
            if get(item, "url").is_some_and(|u| u.py_eq(&s(&url))) {
                return get(item, "caption")
                    .cloned()
                    .map(Output::Value)
                    .ok_or_else(|| "KeyError: 'caption'".into());
            }
        }
    }
    Err("The image of this url failed to be processed.".into())
}

fn speech(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let url = py_strip(a.text("url")?).to_string();
    if !url.ends_with(".wav") {
        return Err("The url should end with .wav.".into());
    }
    get(cx.state.table("SpeechRecognition"), &url)
        .cloned()
        .map(Output::Value)
        .ok_or_else(|| "The audio of this url failed to be processed.".into())
}

fn wiki(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let keyword = lower(py_strip(&a.text("keyword")?.replace('_', " ")));
    let entry = get(cx.state.table("Wiki"), &keyword).ok_or("Keyword not found.")?;
    let url = get(entry, "url").cloned().ok_or("KeyError: 'url'")?;
    let summary = get(entry, "summary")
        .cloned()
        .ok_or("KeyError: 'summary'")?;
    Ok(Output::Value(dict([("url", url), ("summary", summary)])))
}

fn play_music(a: &Args) -> Result<Output, String> {
    let name = py_strip(&lower(a.text("music_name")?)).to_string();
    if name.is_empty() {
        return Err("The music name cannot be empty.".into());
    }
    Ok(Output::Value(s(&format!("music://{name}"))))
}

/// `re.match(r"^[a-z0-9]+[\._]?[a-z0-9]+[@]\w+[.]\w{2,3}$", email)`.
pub(crate) fn valid_email(email: &str) -> bool {
    let email = email.strip_suffix('\n').unwrap_or(email); // `$` before a final newline
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let local: Vec<char> = local.chars().collect();
    let seps: Vec<usize> = (0..local.len()).filter(|&i| !alnum(local[i])).collect();
    let local_ok = match seps.as_slice() {
        [] => local.len() >= 2,
        [i] => matches!(local[*i], '.' | '_') && *i > 0 && *i + 1 < local.len(),
        _ => false,
    };
    let word = |c: char| c == '_' || c.is_alphanumeric();
    let Some((host, tld)) = domain.split_once('.') else {
        return false;
    };
    local_ok
        && !host.is_empty()
        && host.chars().all(word)
        && (2..=3).contains(&tld.chars().count())
        && tld.chars().all(word)
}

fn send_email(a: &Args) -> Result<Output, String> {
    let receiver = py_strip(a.text("receiver")?);
    let subject = py_strip(a.text("subject")?);
    let content = py_strip(a.text("content")?);
    if !valid_email(receiver) {
        return Err("Email address of the receiver is invalid.".into());
    }
    if subject.is_empty() {
        return Err("Subject cannot be empty.".into());
    }
    if content.is_empty() {
        return Err("Content cannot be empty.".into());
    }
    Ok(Output::Value(s("success")))
}

fn book_hotel(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let parse = |k: &str| -> Result<DateTime, String> {
        let t = a.text(k)?;
        strptime_date(t).ok_or_else(|| {
            format!(
                "time data {} does not match format '%Y-%m-%d'",
                value::quoted(t)
            )
        })
    };
    let check_in = parse("check_in_time")?;
    let check_out = parse("check_out_time")?;
    let num = |k: &str| as_number(&a.value(k)).ok_or_else(|| format!("'>' not supported for {k}"));
    let adults = num("adult_count")?;
    let rooms = a.value("room_count");
    if adults > 2.0 && rooms.py_eq(&PyVal::Int(1)) {
        return Err("The number of adults is greater than 2. Two rooms are ordered.".into());
    }
    let hotel = a.value("hotel_name");
    if let PyVal::Dict(orders) = cx.state.table("Hotel") {
        for (_, order) in orders {
            if !get(order, "hotel_name").is_some_and(|h| h.py_eq(&hotel)) {
                continue;
            }
            let t = |k: &str| match get(order, k) {
                Some(PyVal::Str(x)) => {
                    strptime_date(x).ok_or_else(|| format!("bad stored date {x}"))
                }
                _ => Err(format!("KeyError: '{k}'")),
            };
            let (o_in, o_out) = (t("check_in_time")?, t("check_out_time")?);
            if (check_in >= o_in && check_in < o_out) || (check_out > o_in && check_out <= o_out) {
                return Err("The room is not available.".into());
            }
        }
    }
    let id = (value::len(cx.state.table("Hotel")) + 1).to_string();
    let item = dict([
        ("hotel_name", hotel),
        ("check_in_time", a.value("check_in_time")),
        ("check_out_time", a.value("check_out_time")),
        ("room_count", rooms),
        ("adult_count", a.value("adult_count")),
        ("child_count", a.value("child_count")),
    ]);
    value::set_key(cx.state.table_mut("Hotel"), s(&id), item);
    Ok(Output::Value(s(&id)))
}

pub(crate) fn check(api: &'static ApiInfo, r: &ApiResult, gt: &PyVal) -> Result<bool, Crash> {
    match api.name {
        "GetToday" => Ok(!r.output.is_none() && r.exception.is_none() && r.input == PyVal::None),
        "QueryHistoryToday" => {
            let mine = history_date(text_of(r.input("date")?)?);
            let theirs = history_date(text_of(gt_input(gt, "date")?)?);
            let dates = matches!((&mine, &theirs), (Some(a), Some(b)) if a == b);
            Ok(dates && r.output_eq(gt)? && r.exception_eq(gt)?)
        }
        "QueryStock" => {
            let crash = |m: String| Crash::Other(m);
            let (rc, rd) = stock_format(r.input("stock_code")?, r.input("date")?).map_err(crash)?;
            let (gc, gd) =
                stock_format(gt_input(gt, "stock_code")?, gt_input(gt, "date")?).map_err(crash)?;
            let dates = matches!((&rd, &gd), (Some(a), Some(b)) if a == b);
            Ok(rc == gc && dates && r.output_eq(gt)? && r.exception_eq(gt)?)
        }
        "DocumentQA" => Ok(strip(r.input("url")?)? == strip(gt_input(gt, "url")?)?
            && strip(r.input("question")?)? == strip(gt_input(gt, "question")?)?
            && r.output_eq(gt)?
            && r.exception_eq(gt)?),
        "ImageCaption" | "SpeechRecognition" | "BookHotel" => r.exact(gt),
        "Wiki" => Ok(r.api_name_eq(gt)? && r.output_eq(gt)? && r.exception_eq(gt)?),
        "PlayMusic" => r.output_eq(gt),
        "SendEmail" => {
            let f = |v: &PyVal| strip(v);
            Ok(
                lower(&f(r.input("receiver")?)?) == lower(&f(gt_input(gt, "receiver")?)?)
                    && f(r.input("subject")?)? == f(gt_input(gt, "subject")?)?
                    && f(r.input("content")?)? == f(gt_input(gt, "content")?)?
                    && r.output_eq(gt)?
                    && r.exception_eq(gt)?,
            )
        }
        _ => r.exact(gt),
    }
}
