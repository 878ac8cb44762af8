//! Python's `datetime.strptime` for the three formats the APIs use, and the
//! `format_check` normalisation several APIs share.
//!
//! `strptime` compiles the format into a regular expression (`%Y` is
//! `\d\d\d\d`, `%m` is `1[0-2]|0[1-9]|[1-9]`, `%d` is
//! `3[01]|[12]\d|0[1-9]|[1-9]| [1-9]`, `%H` is `2[0-3]|[0-1]\d|\d`, `%M` is
//! `[0-5]\d|\d`, `%S` is `6[0-1]|[0-5]\d|\d`, a space is `\s+`), matches it
//! at the start of the text (alternatives in order, backtracking), fails
//! when text remains after the match, then builds the date (year ≥ 1, a
//! real calendar day, seconds ≤ 59). This module runs the same matcher.
//! One difference: `\d` is ASCII here (Python accepts any Unicode decimal
//! digit).

use toolgym_reward::pyjson::{is_py_space, py_strip};

/// A naive `datetime.datetime` (what the formats here can express).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DateTime {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// `strftime('%Y-%m-%d')` (glibc writes years below 1000 unpadded).
    pub fn date_string(&self) -> String {
        format!("{}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `strftime('%Y-%m-%d %H:%M:%S')`.
    pub fn datetime_string(&self) -> String {
        format!(
            "{} {:02}:{:02}:{:02}",
            self.date_string(),
            self.hour,
            self.minute,
            self.second
        )
    }
}

#[derive(Clone, Copy)]
enum Tok {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Lit(char),
    Space,
}

const DATETIME: &[Tok] = &[
    Tok::Year,
    Tok::Lit('-'),
    Tok::Month,
    Tok::Lit('-'),
    Tok::Day,
    Tok::Space,
    Tok::Hour,
    Tok::Lit(':'),
    Tok::Minute,
    Tok::Lit(':'),
    Tok::Second,
];
const DATE: &[Tok] = &[
    Tok::Year,
    Tok::Lit('-'),
    Tok::Month,
    Tok::Lit('-'),
    Tok::Day,
];
const MONTH_DAY: &[Tok] = &[Tok::Month, Tok::Lit('-'), Tok::Day];

/// One alternative of a field: a sequence of character classes.
type Alt = &'static [fn(char) -> bool];

fn digit(c: char) -> bool {
    c.is_ascii_digit()
}
fn one(c: char) -> bool {
    c == '1'
}
fn two(c: char) -> bool {
    c == '2'
}
fn three(c: char) -> bool {
    c == '3'
}
fn six(c: char) -> bool {
    c == '6'
}
fn zero(c: char) -> bool {
    c == '0'
}
fn space(c: char) -> bool {
    c == ' '
}
fn d0_1(c: char) -> bool {
    matches!(c, '0' | '1')
}
fn d0_2(c: char) -> bool {
    matches!(c, '0'..='2')
}
fn d0_3(c: char) -> bool {
    matches!(c, '0'..='3')
}
fn d0_5(c: char) -> bool {
    matches!(c, '0'..='5')
}
fn d1_2(c: char) -> bool {
    matches!(c, '1' | '2')
}
fn d1_9(c: char) -> bool {
    matches!(c, '1'..='9')
}

fn alternatives(t: Tok) -> &'static [Alt] {
    match t {
        Tok::Year => &[&[digit, digit, digit, digit]],
        Tok::Month => &[&[one, d0_2], &[zero, d1_9], &[d1_9]],
        Tok::Day => &[
            &[three, d0_1],
            &[d1_2, digit],
            &[zero, d1_9],
            &[d1_9],
            &[space, d1_9],
        ],
        Tok::Hour => &[&[two, d0_3], &[d0_1, digit], &[digit]],
        Tok::Minute => &[&[d0_5, digit], &[digit]],
        Tok::Second => &[&[six, d0_1], &[d0_5, digit], &[digit]],
        Tok::Lit(_) | Tok::Space => &[],
    }
}

/// The first match of `pattern` at `pos` in Python's backtracking order:
/// the field values and the end position.
fn match_at(pattern: &[Tok], text: &[char], pos: usize, fields: &mut Vec<u32>) -> Option<usize> {
    let Some((&tok, rest)) = pattern.split_first() else {
        return Some(pos);
    };
    match tok {
        Tok::Lit(c) => {
            if text.get(pos) == Some(&c) {
                match_at(rest, text, pos + 1, fields)
            } else {
                None
            }
        }
        Tok::Space => {
            let mut end = pos;
            while text.get(end).is_some_and(|&c| is_py_space(c)) {
                end += 1;
            }
            // Greedy `\s+`: longest run first, then shorter ones.
            (pos + 1..=end)
                .rev()
                .find_map(|e| match_at(rest, text, e, fields))
        }
        field => {
            for alt in alternatives(field) {
                let end = pos + alt.len();
                if end > text.len() || !alt.iter().zip(&text[pos..end]).all(|(f, &c)| f(c)) {
                    continue;
                }
                // `int()` ignores the space of ` 5`.
                let value = text[pos..end]
                    .iter()
                    .filter_map(|c| c.to_digit(10))
                    .fold(0, |n, d| n * 10 + d);
                fields.push(value);
                if let Some(e) = match_at(rest, text, end, fields) {
                    return Some(e);
                }
                fields.pop();
            }
            None
        }
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

fn strptime(text: &str, pattern: &[Tok], default_year: u32) -> Option<DateTime> {
    let chars: Vec<char> = text.chars().collect();
    let mut f = Vec::new();
    let end = match_at(pattern, &chars, 0, &mut f)?;
    if end != chars.len() {
        return None; // "unconverted data remains"
    }
    let (year, rest) = if pattern.len() == MONTH_DAY.len() {
        (default_year, &f[..])
    } else {
        (f[0], &f[1..])
    };
    let get = |i: usize| rest.get(i).copied().unwrap_or(0);
    let dt = DateTime {
        year,
        month: get(0),
        day: get(1),
        hour: get(2),
        minute: get(3),
        second: get(4),
    };
    let valid = dt.year >= 1
        && (1..=12).contains(&dt.month)
        && dt.day >= 1
        && dt.day <= days_in_month(dt.year, dt.month)
        && dt.second <= 59;
    valid.then_some(dt)
}

/// `datetime.strptime(text, '%Y-%m-%d %H:%M:%S')`.
pub(crate) fn strptime_datetime(text: &str) -> Option<DateTime> {
    strptime(text, DATETIME, 0)
}

/// `datetime.strptime(text, '%Y-%m-%d')`.
pub(crate) fn strptime_date(text: &str) -> Option<DateTime> {
    strptime(text, DATE, 0)
}

/// `datetime.strptime(text, '%m-%d')` (year 1900, so `02-29` fails).
pub(crate) fn strptime_month_day(text: &str) -> Option<DateTime> {
    strptime(text, MONTH_DAY, 1900)
}

/// Python's `s.zfill(width)`.
fn zfill(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        return s.to_string();
    }
    let pad = "0".repeat(width - n);
    match s.chars().next() {
        Some(sign @ ('+' | '-')) => format!("{sign}{pad}{}", &s[1..]),
        _ => format!("{pad}{s}"),
    }
}

/// The first step of every `format_check`: `strip()`, then when the text
/// splits into exactly three pieces on `-`, the first one is `zfill(4)`ed.
pub(crate) fn normalise_prefix(text: &str) -> String {
    let t = py_strip(text);
    let pieces: Vec<&str> = t.split('-').collect();
    if pieces.len() == 3 && pieces[0].chars().count() != 4 {
        format!("{}-{}-{}", zfill(pieces[0], 4), pieces[1], pieces[2])
    } else {
        t.to_string()
    }
}

/// `format_check` for `%Y-%m-%d` (AppointmentRegistration, QueryStock, …):
/// the normalised date, or `None` where Python keeps an exception object.
pub(crate) fn format_date(text: &str) -> Option<String> {
    strptime_date(&normalise_prefix(text)).map(|d| d.date_string())
}

/// `format_check` for `%Y-%m-%d %H:%M:%S` (TimedSwitch, RecordHealthData, …).
pub(crate) fn format_datetime(text: &str) -> Option<String> {
    format_datetime_value(text).map(|d| d.datetime_string())
}

/// QueryHealthData's `format_check` of a time: the datetime itself.
pub(crate) fn format_datetime_value(text: &str) -> Option<DateTime> {
    strptime_datetime(&normalise_prefix(text))
}

/// QueryHistoryToday's `filter_date_format`: `MM-DD` from `%Y-%m-%d` or
/// `%m-%d`.
pub(crate) fn history_date(text: &str) -> Option<String> {
    let t = normalise_prefix(text);
    strptime_date(&t)
        .or_else(|| strptime_month_day(&t))
        .map(|d| format!("{:02}-{:02}", d.month, d.day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strptime_like_python() {
        let ok = strptime_datetime;
        assert!(ok("2023-03-05 08:00:00").is_some());
        assert!(ok("2023-3-5 8:0:0").is_some());
        assert!(ok("2023-03-05\t \n08:00:00").is_some());
        assert!(ok("2023-03- 5 08:00:00").is_some());
        assert!(ok("2023-03-05T08:00:00").is_none());
        assert!(ok(" 2023-03-05 08:00:00").is_none());
        assert!(ok("2023-03-05 08:00:00 ").is_none());
        assert!(ok("2023-02-29 08:00:00").is_none());
        assert!(ok("2024-02-29 08:00:00").is_some());
        assert!(ok("2023-03-05 08:00:60").is_none());
        assert!(ok("0000-03-05 08:00:00").is_none());
        assert!(ok("2023-13-05 08:00:00").is_none());
        assert!(strptime_month_day("02-29").is_none());
        assert_eq!(format_date(" 23-3-5 ").as_deref(), Some("23-03-05"));
        assert_eq!(format_date("2023-3-5").as_deref(), Some("2023-03-05"));
        assert_eq!(
            format_datetime("2023-3-5 8:0:0").as_deref(),
            Some("2023-03-05 08:00:00")
        );
        assert_eq!(history_date("3-31").as_deref(), Some("03-31"));
        assert_eq!(history_date("2021-03-31").as_deref(), Some("03-31"));
        assert_eq!(history_date("02-29"), None);
        assert_eq!(zfill("-5", 4), "-005");
    }
}
