//! Constant arithmetic with Python's semantics, for the official decoder's
//! `eval(ast.unparse(binop))` on binary operations (`x=2*3`, `y='a'+'b'`).
//!
//! Evaluated: constants, list / tuple / set / dict displays, unary
//! `- + ~ not`, and `+ - * / // % ** << >> & | ^` on `bool` / `int` /
//! `float` (Python's floor division, modulo sign and `0 ** -1` rules),
//! concatenation and repetition of `str` / `bytes` / `list` / `tuple`.
//! Names raise `NameError` (CPython would also find builtins such as
//! `len`); calls, subscripts, attributes, comparisons, complex numbers,
//! `%` formatting, set algebra and dict `|` are `Unsupported` (CPython
//! evaluates them; the ones it evaluates without names are
//! [`DecodeError::official_decoder_reads`]); integers are limited to
//! `i128`.

use super::decode::DecodeError;
use crate::pycall::{BinOp, DictBuilder, Expr, ExprKind, PyVal, UnaryOp};

/// Most values (list items, characters, bytes, at every level) that
/// repetitions and concatenations may build for one decoded reply: a
/// reply of a few bytes (`[[0]*1048576]*2048`) must not ask for
/// gigabytes (CPython shares the inner list; copies here would not).
const MAX_BUILT: usize = 1 << 22;

thread_local! {
    /// Values built so far by the reply being decoded on this thread
    /// (`None`: no [`ReplyBudget`] is open; each operation is then
    /// limited on its own).
    static BUILT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    /// The first value of the reply the official decoder reads and this
    /// one could not ([`defer`]).
    static DEFERRED: std::cell::RefCell<Option<DecodeError>> = const { std::cell::RefCell::new(None) };
}

/// While it lives, every evaluation on this thread draws on one budget of
/// [`MAX_BUILT`] values and defers what [`defer`] defers: open one per
/// decoded reply, and hand its result to [`ReplyBudget::finish`].
pub(crate) struct ReplyBudget {
    outer: (Option<usize>, Option<DecodeError>),
}

impl ReplyBudget {
    /// Opens a budget (the one open before comes back when this drops).
    pub(crate) fn open() -> Self {
        Self {
            outer: (BUILT.replace(Some(0)), DEFERRED.take()),
        }
    }

    /// The reply's result: an error, as raised; a value, unless a part
    /// of it was deferred (then that part's error: the official decoder
    /// read all of it, this one not).
    pub(crate) fn finish(self, result: Result<PyVal, DecodeError>) -> Result<PyVal, DecodeError> {
        let deferred = DEFERRED.take();
        match (result, deferred) {
            (Ok(_), Some(e)) | (Err(e), _) => Err(e),
            (Ok(v), None) => Ok(v),
        }
    }
}

impl Drop for ReplyBudget {
    fn drop(&mut self) {
        BUILT.set(self.outer.0);
        DEFERRED.set(self.outer.1.take());
    }
}

/// `result`, or, for a value the official decoder reads and this one does
/// not ([`DecodeError::official_decoder_reads`]) inside an open
/// [`ReplyBudget`], a placeholder (`None`) while the error is kept: the
/// official decoder goes on past that value, so a later error in the
/// reply is what it raises, and the kept one stands only when there is
/// none.
pub(crate) fn defer(result: Result<PyVal, DecodeError>) -> Result<PyVal, DecodeError> {
    match result {
        Err(e) if e.official_decoder_reads() && BUILT.get().is_some() => {
            DEFERRED.with_borrow_mut(|d| {
                d.get_or_insert(e);
            });
            Ok(PyVal::None)
        }
        r => r,
    }
}

fn too_large() -> DecodeError {
    DecodeError::official_reads("repetition too large")
}

/// Takes `n` built values from the reply's budget.
fn charge(n: usize) -> Result<(), DecodeError> {
    let used = BUILT.get();
    let total = used
        .unwrap_or(0)
        .checked_add(n)
        .filter(|&t| t <= MAX_BUILT)
        .ok_or_else(too_large)?;
    if used.is_some() {
        BUILT.set(Some(total));
    }
    Ok(())
}

/// How many values `v` holds, itself included (characters for a `str`,
/// bytes for `bytes`).
fn weight(v: &PyVal) -> usize {
    match v {
        PyVal::Str(s) => 1 + s.len(),
        PyVal::Bytes(b) => 1 + b.len(),
        PyVal::List(items) | PyVal::Tuple(items) | PyVal::Set(items) => {
            1 + items.iter().map(weight).sum::<usize>()
        }
        PyVal::Dict(items) => {
            1 + items
                .iter()
                .map(|(k, v)| weight(k) + weight(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn overflow() -> DecodeError {
    DecodeError::official_reads("integer result beyond 128 bits")
}

/// Evaluates a constant expression.
pub(crate) fn eval(e: &Expr) -> Result<PyVal, DecodeError> {
    Ok(match &e.kind {
        ExprKind::Const { value, .. } => value.clone(),
        ExprKind::Name(n) => {
            return Err(DecodeError::new(
                "NameError",
                format!("name '{n}' is not defined"),
            ))
        }
        ExprKind::List(items) => PyVal::List(items.iter().map(eval).collect::<Result<_, _>>()?),
        ExprKind::Tuple(items) => PyVal::Tuple(items.iter().map(eval).collect::<Result<_, _>>()?),
        ExprKind::Set(items) => {
            let mut b = DictBuilder::default();
            for i in items {
                let v = eval(i)?;
                let t = v.py_type().name();
                if !b.insert(v, PyVal::None) {
                    return Err(DecodeError::new(
                        "TypeError",
                        format!("unhashable type: '{t}'"),
                    ));
                }
            }
            b.into_set()
        }
        ExprKind::Dict(items) => {
            let mut b = DictBuilder::default();
            for (k, v) in items {
                let Some(k) = k else {
                    return Err(DecodeError::unsupported("** unpacking in arithmetic"));
                };
                let key = eval(k)?;
                let val = eval(v)?;
                let t = key.py_type().name();
                if !b.insert(key, val) {
                    return Err(DecodeError::new(
                        "TypeError",
                        format!("unhashable type: '{t}'"),
                    ));
                }
            }
            b.into_dict()
        }
        ExprKind::Unary(op, x) => unary(*op, eval(x)?)?,
        ExprKind::Binary(op, l, r) => {
            let a = eval(l)?;
            let b = eval(r)?;
            binop(*op, a, b)?
        }
        other => {
            return Err(DecodeError::unsupported(format!(
                "evaluating a {} inside arithmetic",
                other.ast_class()
            )))
        }
    })
}

fn unary(op: UnaryOp, v: PyVal) -> Result<PyVal, DecodeError> {
    let bad = |sym: &str, v: &PyVal| {
        Err(DecodeError::new(
            "TypeError",
            format!("bad operand type for unary {sym}: '{}'", v.py_type().name()),
        ))
    };
    match op {
        UnaryOp::Not => Ok(PyVal::Bool(!v.truthy())),
        UnaryOp::Neg => match v {
            PyVal::Int(i) => i.checked_neg().map(PyVal::Int).ok_or_else(overflow),
            PyVal::Bool(b) => Ok(PyVal::Int(-i128::from(b))),
            PyVal::Float(f) => Ok(PyVal::Float(-f)),
            PyVal::Complex(r, i) => Ok(PyVal::Complex(-r, -i)),
            other => bad("-", &other),
        },
        UnaryOp::Pos => match v {
            PyVal::Bool(b) => Ok(PyVal::Int(i128::from(b))),
            v @ (PyVal::Int(_) | PyVal::Float(_) | PyVal::Complex(..)) => Ok(v),
            other => bad("+", &other),
        },
        UnaryOp::Invert => match v {
            PyVal::Int(i) => Ok(PyVal::Int(!i)),
            PyVal::Bool(b) => Ok(PyVal::Int(!i128::from(b))),
            other => bad("~", &other),
        },
    }
}

fn type_error(op: BinOp, a: &PyVal, b: &PyVal) -> DecodeError {
    DecodeError::new(
        "TypeError",
        format!(
            "unsupported operand type(s) for {}: '{}' and '{}'",
            op.symbol(),
            a.py_type().name(),
            b.py_type().name()
        ),
    )
}

/// `items * n`; `item_weight` is what the items hold in all (see
/// [`weight`]), charged `n` times to the reply's budget.
fn repeat<T: Clone>(items: &[T], item_weight: usize, n: i128) -> Result<Vec<T>, DecodeError> {
    if n <= 0 || items.is_empty() {
        return Ok(Vec::new());
    }
    let n = usize::try_from(n).map_err(|_| too_large())?;
    charge(item_weight.saturating_mul(n))?;
    let mut out = Vec::with_capacity(items.len() * n);
    for _ in 0..n {
        out.extend_from_slice(items);
    }
    Ok(out)
}

/// The items of `x` then `y`, charged to the reply's budget.
fn concat<T: Clone>(x: &[T], y: &[T], weight: usize) -> Result<Vec<T>, DecodeError> {
    charge(weight)?;
    Ok([x, y].concat())
}

fn as_int(v: &PyVal) -> Option<i128> {
    match v {
        PyVal::Int(i) => Some(*i),
        PyVal::Bool(b) => Some(i128::from(*b)),
        _ => None,
    }
}

/// A binary operation on two values.
pub(crate) fn binop(op: BinOp, a: PyVal, b: PyVal) -> Result<PyVal, DecodeError> {
    use PyVal as V;
    // Sequences.
    match (op, &a, &b) {
        (BinOp::Add, V::Str(x), V::Str(y)) => {
            charge(x.len() + y.len())?;
            return Ok(V::Str(format!("{x}{y}")));
        }
        (BinOp::Add, V::Bytes(x), V::Bytes(y)) => {
            return Ok(V::Bytes(concat(x, y, x.len() + y.len())?))
        }
        (BinOp::Add, V::List(x), V::List(y)) => {
            return Ok(V::List(concat(x, y, weight(&a) + weight(&b))?))
        }
        (BinOp::Add, V::Tuple(x), V::Tuple(y)) => {
            return Ok(V::Tuple(concat(x, y, weight(&a) + weight(&b))?))
        }
        (BinOp::Mul, s, n) | (BinOp::Mul, n, s)
            if as_int(n).is_some()
                && matches!(s, V::Str(_) | V::Bytes(_) | V::List(_) | V::Tuple(_)) =>
        {
            let n = as_int(n).unwrap_or(0);
            return Ok(match s {
                V::Str(x) => {
                    let chars: Vec<char> = x.chars().collect();
                    V::Str(repeat(&chars, x.len(), n)?.into_iter().collect())
                }
                V::Bytes(x) => V::Bytes(repeat(x, x.len(), n)?),
                V::List(x) => V::List(repeat(x, weight(s), n)?),
                V::Tuple(x) => V::Tuple(repeat(x, weight(s), n)?),
                _ => return Err(type_error(op, &a, &b)),
            });
        }
        (BinOp::Mod, V::Str(_) | V::Bytes(_), _) => {
            return Err(DecodeError::official_reads("% string formatting"))
        }
        (BinOp::BitOr | BinOp::BitAnd | BinOp::BitXor | BinOp::Sub, V::Set(_), V::Set(_))
        | (BinOp::BitOr, V::Dict(_), V::Dict(_)) => {
            return Err(DecodeError::official_reads("set or dict algebra"))
        }
        _ => {}
    }
    if matches!(a, V::Complex(..)) || matches!(b, V::Complex(..)) {
        return Err(DecodeError::official_reads("complex arithmetic"));
    }
    if let (V::Bool(x), V::Bool(y)) = (&a, &b) {
        match op {
            BinOp::BitAnd => return Ok(V::Bool(x & y)),
            BinOp::BitOr => return Ok(V::Bool(x | y)),
            BinOp::BitXor => return Ok(V::Bool(x ^ y)),
            _ => {}
        }
    }
    if let (Some(x), Some(y)) = (as_int(&a), as_int(&b)) {
        return int_op(op, x, y, &a, &b);
    }
    let f = |v: &PyVal| match v {
        V::Float(f) => Some(*f),
        other => as_int(other).map(|i| i as f64),
    };
    match (f(&a), f(&b)) {
        (Some(x), Some(y)) => float_op(op, x, y, &a, &b),
        _ => Err(type_error(op, &a, &b)),
    }
}

fn int_op(op: BinOp, x: i128, y: i128, a: &PyVal, b: &PyVal) -> Result<PyVal, DecodeError> {
    let zero = |msg: &str| Err(DecodeError::new("ZeroDivisionError", msg));
    let floor_div = |x: i128, y: i128| -> Option<i128> {
        let q = x.checked_div(y)?;
        if (x % y != 0) && ((x < 0) != (y < 0)) {
            q.checked_sub(1)
        } else {
            Some(q)
        }
    };
    Ok(PyVal::Int(match op {
        BinOp::Add => x.checked_add(y).ok_or_else(overflow)?,
        BinOp::Sub => x.checked_sub(y).ok_or_else(overflow)?,
        BinOp::Mul => x.checked_mul(y).ok_or_else(overflow)?,
        BinOp::Div => {
            if y == 0 {
                return zero("division by zero");
            }
            return Ok(PyVal::Float(x as f64 / y as f64));
        }
        BinOp::FloorDiv => {
            if y == 0 {
                return zero("integer division or modulo by zero");
            }
            floor_div(x, y).ok_or_else(overflow)?
        }
        BinOp::Mod => {
            if y == 0 {
                return zero("integer division or modulo by zero");
            }
            let q = floor_div(x, y).ok_or_else(overflow)?;
            x.checked_sub(q.checked_mul(y).ok_or_else(overflow)?)
                .ok_or_else(overflow)?
        }
        BinOp::Pow => {
            if y < 0 {
                if x == 0 {
                    return zero("0.0 cannot be raised to a negative power");
                }
                return Ok(PyVal::Float((x as f64).powf(y as f64)));
            }
            let e = u32::try_from(y).map_err(|_| overflow())?;
            x.checked_pow(e).ok_or_else(overflow)?
        }
        BinOp::LShift => {
            if y < 0 {
                return Err(DecodeError::new("ValueError", "negative shift count"));
            }
            if x == 0 {
                0
            } else {
                let s = u32::try_from(y)
                    .ok()
                    .filter(|s| *s < 127)
                    .ok_or_else(overflow)?;
                let r = x << s;
                if r >> s != x {
                    return Err(overflow());
                }
                r
            }
        }
        BinOp::RShift => {
            if y < 0 {
                return Err(DecodeError::new("ValueError", "negative shift count"));
            }
            x >> u32::try_from(y).unwrap_or(127).min(127)
        }
        BinOp::BitAnd => x & y,
        BinOp::BitOr => x | y,
        BinOp::BitXor => x ^ y,
        BinOp::MatMul => return Err(type_error(op, a, b)),
    }))
}

/// CPython's `float_divmod` → (floor quotient, modulo).
fn float_divmod(vx: f64, wx: f64) -> (f64, f64) {
    let mut m = vx % wx;
    let mut div = (vx - m) / wx;
    if m != 0.0 {
        if (wx < 0.0) != (m < 0.0) {
            m += wx;
            div -= 1.0;
        }
    } else {
        m = 0.0f64.copysign(wx);
    }
    let floordiv = if div != 0.0 {
        let mut f = div.floor();
        if div - f > 0.5 {
            f += 1.0;
        }
        f
    } else {
        0.0f64.copysign(vx / wx)
    };
    (floordiv, m)
}

fn float_op(op: BinOp, x: f64, y: f64, a: &PyVal, b: &PyVal) -> Result<PyVal, DecodeError> {
    let zero = |msg: &str| Err(DecodeError::new("ZeroDivisionError", msg));
    Ok(PyVal::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => {
            if y == 0.0 {
                return zero("float division by zero");
            }
            x / y
        }
        BinOp::FloorDiv => {
            if y == 0.0 {
                return zero("float floor division by zero");
            }
            float_divmod(x, y).0
        }
        BinOp::Mod => {
            if y == 0.0 {
                return zero("float modulo");
            }
            float_divmod(x, y).1
        }
        BinOp::Pow => {
            if y == 0.0 {
                1.0
            } else if x == 0.0 && y < 0.0 {
                return zero("0.0 cannot be raised to a negative power");
            } else if x < 0.0 && x.is_finite() && y.is_finite() && y.fract() != 0.0 {
                return Err(DecodeError::official_reads("complex result of **"));
            } else {
                let r = x.powf(y);
                if r.is_infinite() && x.is_finite() && y.is_finite() {
                    return Err(DecodeError::new(
                        "OverflowError",
                        "(34, 'Numerical result out of range')",
                    ));
                }
                r
            }
        }
        _ => return Err(type_error(op, a, b)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pycall::parse_expression;

    fn ev(s: &str) -> Result<PyVal, DecodeError> {
        eval(&parse_expression(s).unwrap())
    }

    #[test]
    fn a_reply_cannot_build_more_than_its_budget() {
        use crate::bfcl::decode_python_prompt;
        // CPython shares the inner list; built here it would be 2^31
        // values. Refused, as is the same budget spent in pieces.
        let nested = decode_python_prompt("[f(a=[[0]*1048576]*2048)]").unwrap_err();
        assert_eq!(nested.exception, "Unsupported");
        let pieces: Vec<String> = (0..8).map(|i| format!("a{i}=[0]*1048576")).collect();
        let many = decode_python_prompt(&format!("[f({})]", pieces.join(", "))).unwrap_err();
        assert_eq!(many.exception, "Unsupported");
        let calls: Vec<String> = (0..8).map(|i| format!("f{i}(a='ab'*1048576)")).collect();
        let across = crate::acebench::decode(&format!("[{}]", calls.join(","))).unwrap_err();
        assert_eq!(across.exception, "Unsupported");
        // Each reply has a budget of its own; usual sizes are untouched.
        for _ in 0..3 {
            let one = decode_python_prompt("[f(a=[0]*1048576, b='x'*3 + 'y')]").unwrap();
            assert!(one.repr().contains("'xxxy'"));
        }
        assert_eq!(ev("[1, 2] * 2 + [3]").unwrap().repr(), "[1, 2, 1, 2, 3]");
    }

    #[test]
    fn python_arithmetic() {
        assert_eq!(ev("2*3").unwrap(), PyVal::Int(6));
        assert_eq!(ev("10/4").unwrap(), PyVal::Float(2.5));
        assert_eq!(ev("7//2").unwrap(), PyVal::Int(3));
        assert_eq!(ev("-7//2").unwrap(), PyVal::Int(-4));
        assert_eq!(ev("-7%3").unwrap(), PyVal::Int(2));
        assert_eq!(ev("7%-3").unwrap(), PyVal::Int(-2));
        assert_eq!(ev("-7.5//2").unwrap(), PyVal::Float(-4.0));
        assert_eq!(ev("-7.5%2").unwrap(), PyVal::Float(0.5));
        assert_eq!(ev("2**10").unwrap(), PyVal::Int(1024));
        assert_eq!(ev("2**-1").unwrap(), PyVal::Float(0.5));
        assert_eq!(ev("True+True").unwrap(), PyVal::Int(2));
        assert_eq!(ev("True&False").unwrap(), PyVal::Bool(false));
        assert_eq!(ev("'ab'*2").unwrap(), PyVal::Str("abab".into()));
        assert_eq!(
            ev("2*[1]").unwrap(),
            PyVal::List(vec![PyVal::Int(1), PyVal::Int(1)])
        );
        assert_eq!(
            ev("(1,)+(2,)").unwrap(),
            PyVal::Tuple(vec![PyVal::Int(1), PyVal::Int(2)])
        );
        assert_eq!(ev("1<<3").unwrap(), PyVal::Int(8));
        assert_eq!(ev("-1>>300").unwrap(), PyVal::Int(-1));
        assert_eq!(ev("1e308*10").unwrap(), PyVal::Float(f64::INFINITY));
        assert_eq!(ev("1/0").unwrap_err().exception, "ZeroDivisionError");
        assert_eq!(ev("0**-1").unwrap_err().exception, "ZeroDivisionError");
        assert_eq!(ev("x+1").unwrap_err().exception, "NameError");
        assert_eq!(ev("'a'+1").unwrap_err().exception, "TypeError");
        assert_eq!(ev("1<<-1").unwrap_err().exception, "ValueError");
        assert_eq!(ev("10.0**400").unwrap_err().exception, "OverflowError");
        assert_eq!(ev("2**200").unwrap_err().exception, "Unsupported");
        assert_eq!(ev("'x'*100000000").unwrap_err().exception, "Unsupported");
    }
}
