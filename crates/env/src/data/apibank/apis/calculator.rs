//! Calculator: the official evaluator's own arithmetic, step by step.
//!
//! Spaces are removed; the formula must use only `0123456789+-*/()`, have
//! balanced parenthesis counts, at least one operator, and not be all
//! operators but one character. Numbers become floats. Then, on a list of
//! tokens: the span from the first `(` to the **first** `)` is replaced by
//! its value (so nesting breaks), then the leftmost `*` or `/` is applied
//! repeatedly, then the leftmost `+` or `-`, each as
//! `formula[i-1:i+2] = [op(formula[i-1], formula[i+1])]` — Python's
//! negative index makes an operator at position 0 use the *last* token and
//! never shrink the list, so a leading operator (a unary minus) loops
//! forever. Here that case is reported as [`Raised::Hang`]; the official
//! run never returns from it.

use super::{gt_input, text_of, ApiInfo, ApiResult, Args, Crash, Output, Raised};
use crate::data::apibank::value::dict;
use toolgym_reward::pycall::PyVal;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Op(char),
}

/// Why the calculation did not give a number.
#[derive(Debug, PartialEq)]
enum Fail {
    /// An exception inside `call` (caught: the result's `exception`).
    Error(String),
    /// The official loop never ends.
    Hang,
}

pub(crate) fn call(api: &'static ApiInfo, a: &Args) -> Result<ApiResult, Raised> {
    let input = dict([("formula", a.value("formula"))]);
    let formula = match a.text("formula") {
        Ok(f) => f.to_string(),
        Err(e) => return Ok(ApiResult::new(Some(api.name), input, Err(e))),
    };
    match calculate(&formula) {
        Ok(x) => Ok(ApiResult::new(
            Some(api.name),
            input,
            Ok(Output::Value(PyVal::Float(x))),
        )),
        Err(Fail::Error(e)) => Ok(ApiResult::new(Some(api.name), input, Err(e))),
        Err(Fail::Hang) => Err(Raised::Hang(formula)),
    }
}

/// The official Calculator on `formula` (see [`crate::data::apibank::semantics::calculate`]).
pub(crate) fn evaluate_formula(formula: &str) -> crate::data::apibank::semantics::Calculation {
    use crate::data::apibank::semantics::Calculation;
    match calculate(formula) {
        Ok(x) => Calculation::Value(x),
        Err(Fail::Error(e)) => Calculation::Exception(e),
        Err(Fail::Hang) => Calculation::Hang,
    }
}

fn calculate(formula: &str) -> Result<f64, Fail> {
    let f: String = formula.chars().filter(|&c| c != ' ').collect();
    if !valid(&f) {
        return Err(Fail::Error("invalid formula".into()));
    }
    let mut tokens = Vec::new();
    let mut number = String::new();
    for c in f.chars() {
        if c.is_ascii_digit() {
            number.push(c);
        } else {
            if !number.is_empty() {
                tokens.push(Tok::Num(number.parse().unwrap_or(f64::INFINITY)));
                number.clear();
            }
            tokens.push(Tok::Op(c));
        }
    }
    if !number.is_empty() {
        tokens.push(Tok::Num(number.parse().unwrap_or(f64::INFINITY)));
    }
    evaluate(tokens)
}

fn valid(f: &str) -> bool {
    if f.is_empty() || !f.chars().all(|c| "0123456789+-*/()".contains(c)) {
        return false;
    }
    let count = |c: char| f.chars().filter(|&x| x == c).count();
    let ops = count('+') + count('-') + count('*') + count('/');
    count('(') == count(')') && ops != 0 && ops + 1 != f.chars().count()
}

fn index_of(t: &[Tok], op: char) -> Option<usize> {
    t.iter().position(|x| *x == Tok::Op(op))
}

fn evaluate(mut t: Vec<Tok>) -> Result<f64, Fail> {
    while let Some(l) = index_of(&t, '(') {
        let r = index_of(&t, ')').ok_or_else(|| Fail::Error("')' is not in list".into()))?;
        let inner = if l < r {
            t[l + 1..r].to_vec()
        } else {
            Vec::new()
        };
        let v = evaluate(inner)?;
        // `t[l:r+1] = [v]` (an empty slice when r < l: insertion at l; the
        // empty inner formula already failed above, so r > l here).
        t.splice(l..=r, [Tok::Num(v)]);
    }
    for ops in [['*', '/'], ['+', '-']] {
        loop {
            let i = match (index_of(&t, ops[0]), index_of(&t, ops[1])) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            let Tok::Op(op) = t[i] else { break };
            // `formula[index - 1]`: Python wraps -1 to the last token.
            let left = if i == 0 { t[t.len() - 1] } else { t[i - 1] };
            let right = *t
                .get(i + 1)
                .ok_or_else(|| Fail::Error("list index out of range".into()))?;
            if i == 0 && op == '+' && matches!((left, right), (Tok::Op(_), Tok::Op(_))) {
                // Python concatenates the two operator strings and goes on
                // forever, as below.
                return Err(Fail::Hang);
            }
            let v = apply(left, op, right)?;
            if i == 0 {
                // `formula[-1:2] = [v]` leaves the operator at index 0, so
                // the loop never ends (Python keeps going forever).
                return Err(Fail::Hang);
            }
            t.splice(i - 1..=i + 1, [Tok::Num(v)]);
        }
    }
    match t.first() {
        Some(Tok::Num(x)) => Ok(*x),
        // `return formula[0]` of an empty list.
        None => Err(Fail::Error("list index out of range".into())),
        // A lone operator token cannot remain after the loops above.
        Some(Tok::Op(c)) => Err(Fail::Error(format!("unsupported result {c:?}"))),
    }
}

fn apply(a: Tok, op: char, b: Tok) -> Result<f64, Fail> {
    let (Tok::Num(x), Tok::Num(y)) = (a, b) else {
        return Err(Fail::Error(format!(
            "unsupported operand type(s) for {op}: mixing an operator and a number"
        )));
    };
    Ok(match op {
        '+' => x + y,
        '-' => x - y,
        '*' => x * y,
        _ => {
            if y == 0.0 {
                return Err(Fail::Error("float division by zero".into()));
            }
            x / y
        }
    })
}

pub(crate) fn check(r: &ApiResult, gt: &PyVal) -> Result<bool, Crash> {
    let mine: String = text_of(r.input("formula")?)?
        .chars()
        .filter(|&c| c != ' ')
        .collect();
    let theirs: String = text_of(gt_input(gt, "formula")?)?
        .chars()
        .filter(|&c| c != ' ')
        .collect();
    Ok(mine == theirs && r.output_eq(gt)? && r.exception_eq(gt)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_the_official_calculator() {
        assert_eq!(calculate("(5+6)*3"), Ok(33.0));
        assert_eq!(calculate("2+3*4-6/2"), Ok(11.0));
        assert_eq!(calculate("10-2-3"), Ok(5.0));
        assert_eq!(calculate("8/2/2"), Ok(2.0));
        assert_eq!(calculate("-2+3"), Err(Fail::Hang));
        assert_eq!(calculate("(-2)*3"), Err(Fail::Hang));
        assert!(matches!(calculate("((1+2))"), Err(Fail::Error(_))));
        assert!(matches!(calculate("1/0"), Err(Fail::Error(_))));
        assert!(matches!(calculate("2+"), Err(Fail::Error(_))));
        assert!(matches!(calculate("1+2a"), Err(Fail::Error(_))));
        assert!(matches!(calculate("1)+(2"), Err(Fail::Error(_))));
        assert!(matches!(calculate("2+*3"), Err(Fail::Error(_))));
        assert_eq!(calculate("1 2+3"), Ok(15.0));
        assert_eq!(calculate("+-12+"), Err(Fail::Hang));
        assert!(matches!(calculate("/00"), Err(Fail::Error(_))));
    }
}
