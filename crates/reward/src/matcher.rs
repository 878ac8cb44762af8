//! Matching predicted calls against the ground truth, as the paper defines
//! it: an order-free multiset of calls, each matched by name and by
//! arguments compared as JSON values (object key order ignored, array order
//! kept).

use crate::pycall::int_float_eq;
use crate::{Call, Reason, Verdict};
use serde_json::{Map, Number, Value};

/// How numbers compare.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum NumberMatch {
    /// JSON values as written: `1` and `1.0` differ (an integer is not a
    /// float), as in the paper and the released script. Floats compare by
    /// value (`-0.0 == 0.0`). Zero is the one place where an integer and a
    /// float compare equal: `0`, `-0`, `0.0` and `-0.0` are one zero.
    /// (serde_json reads the integer `-0` as the float -0.0, so `-0` must
    /// equal `0`; were `0.0` not also equal to `0`, equality would not be
    /// transitive, and whether calls match would depend on their order.)
    #[default]
    Exact,
    /// Numbers compare by numeric value: `1 == 1.0`, and two numbers are
    /// equal when `|a - b| <= max(abs_tol, rel_tol * max(|a|, |b|))`.
    /// `Tolerant { abs_tol: 0.0, rel_tol: 0.0 }` only unifies ints and
    /// floats, exactly, as Python's `==` does (`2**53 + 1 != 2.0**53`,
    /// though the integer rounds to that float), and is then an
    /// equivalence. (An integer past 64 bits is read as a float, by
    /// serde_json as by the Python package's conversion, so
    /// `18446744073709551617` equals `18446744073709551616.0` here.)
    Tolerant {
        /// Absolute tolerance.
        abs_tol: f64,
        /// Relative tolerance.
        rel_tol: f64,
    },
}

/// Compares calls and argument values.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Matcher {
    /// How numbers compare.
    pub numbers: NumberMatch,
}

/// The result of comparing predicted calls with the ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOutcome {
    /// The multisets are equal.
    Match,
    /// Fewer predicted calls than expected.
    Missing,
    /// More predicted calls than expected.
    Extra,
    /// Same count, but the multisets of names differ.
    WrongName,
    /// Same names, but some arguments differ.
    WrongArgs,
}

impl MatchOutcome {
    /// The verdict reason for this outcome.
    pub fn reason(self) -> Reason {
        match self {
            MatchOutcome::Match => Reason::Ok,
            MatchOutcome::Missing => Reason::MissingCall,
            MatchOutcome::Extra => Reason::ExtraCall,
            MatchOutcome::WrongName => Reason::WrongName,
            MatchOutcome::WrongArgs => Reason::WrongArgs,
        }
    }

    /// Whether the multiset of tool names matched (always true for
    /// [`MatchOutcome::Match`] and [`MatchOutcome::WrongArgs`]).
    pub fn names_match(self) -> bool {
        matches!(self, MatchOutcome::Match | MatchOutcome::WrongArgs)
    }

    /// The outcome as a verdict: reward 1 for a match, else 0 with the
    /// reason and `"{what} vs ground truth: {reason}"`.
    ///
    /// ```
    /// use toolgym_reward::MatchOutcome;
    /// assert_eq!(MatchOutcome::Match.verdict("calls").reward, 1.0);
    /// assert_eq!(MatchOutcome::Missing.verdict("calls").detail, "calls vs ground truth: missing_call");
    /// ```
    pub fn verdict(self, what: &str) -> Verdict {
        match self.reason() {
            Reason::Ok => Verdict::ok(),
            r => Verdict::fail(r, format!("{what} vs ground truth: {r}")),
        }
    }
}

impl Matcher {
    /// Exact JSON matching (the paper's).
    pub const EXACT: Matcher = Matcher {
        numbers: NumberMatch::Exact,
    };

    /// Tolerant numeric matching: ints equal floats, with the given tolerances.
    pub fn tolerant(abs_tol: f64, rel_tol: f64) -> Self {
        Matcher {
            numbers: NumberMatch::Tolerant { abs_tol, rel_tol },
        }
    }

    /// Compares predicted calls with the ground truth as multisets.
    ///
    /// ```
    /// use toolgym_reward::{Call, Matcher, MatchOutcome};
    /// use serde_json::json;
    /// let a = Call::new("f", json!({"x": 1, "y": [1, 2]})).unwrap();
    /// let b = Call::new("g", json!({})).unwrap();
    /// let truth = [a.clone(), b.clone()];
    /// assert_eq!(Matcher::EXACT.compare(&[b, a.clone()], &truth), MatchOutcome::Match);
    /// assert_eq!(Matcher::EXACT.compare(&[a], &truth), MatchOutcome::Missing);
    /// ```
    pub fn compare(&self, predicted: &[Call], truth: &[Call]) -> MatchOutcome {
        use std::cmp::Ordering::*;
        match predicted.len().cmp(&truth.len()) {
            Less => return MatchOutcome::Missing,
            Greater => return MatchOutcome::Extra,
            Equal => {}
        }
        if self.perfect_matching(predicted, truth, false) {
            MatchOutcome::Match
        } else if self.perfect_matching(predicted, truth, true) {
            MatchOutcome::WrongArgs
        } else {
            MatchOutcome::WrongName
        }
    }

    /// Whether two calls match: same name, equal arguments.
    pub fn calls_equal(&self, a: &Call, b: &Call) -> bool {
        a.name == b.name && self.maps_equal(&a.arguments, &b.arguments)
    }

    /// Objects equal as maps: same keys, equal values. Walks both maps in
    /// step (maps keep the order their keys were written in, which is
    /// mostly the same on both sides) and, from the first key where the
    /// orders differ, looks the rest up. Every value pair is compared once
    /// (comparing the in-step part again would double the work at each
    /// level of nesting: exponential in the depth).
    fn maps_equal(&self, x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
        if x.len() != y.len() {
            return false;
        }
        let mut in_step = 0;
        for ((k, v), (l, w)) in x.iter().zip(y) {
            if k != l {
                break;
            }
            if !self.values_equal(v, w) {
                return false;
            }
            in_step += 1;
        }
        // The first `in_step` keys are the same on both sides, so the rest
        // of `x`'s keys can only be found among the rest of `y`'s.
        x.iter()
            .skip(in_step)
            .all(|(k, v)| y.get(k).is_some_and(|w| self.values_equal(v, w)))
    }

    /// Whether two JSON values are equal under this matcher: object key order
    /// ignored, array order kept, numbers per [`NumberMatch`].
    pub fn values_equal(&self, a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => self.numbers_equal(x, y),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(u, v)| self.values_equal(u, v))
            }
            (Value::Object(x), Value::Object(y)) => self.maps_equal(x, y),
            _ => a == b,
        }
    }

    fn numbers_equal(&self, x: &Number, y: &Number) -> bool {
        match self.numbers {
            // All zeros are one (see `NumberMatch::Exact`).
            NumberMatch::Exact => x == y || (is_zero(x) && is_zero(y)),
            NumberMatch::Tolerant { abs_tol, rel_tol } => {
                if let (Some(a), Some(b)) = (as_i128(x), as_i128(y)) {
                    return a == b
                        || (abs_tol > 0.0 || rel_tol > 0.0)
                            && close(a as f64, b as f64, abs_tol, rel_tol);
                }
                let (Some(a), Some(b)) = (x.as_f64(), y.as_f64()) else {
                    return false;
                };
                // An integer and a float are equal by value, exactly, as
                // Python compares them: 2^53 + 1 is not the float 2^53,
                // which it rounds to as an f64.
                let equal = match (as_i128(x), as_i128(y)) {
                    (Some(i), None) => int_float_eq(i, b),
                    (None, Some(j)) => int_float_eq(j, a),
                    _ => a == b,
                };
                equal || (abs_tol > 0.0 || rel_tol > 0.0) && close(a, b, abs_tol, rel_tol)
            }
        }
    }

    /// Whether a perfect matching exists between `a` and `b` (same length),
    /// comparing whole calls or only names.
    ///
    /// Exact equality is an equivalence, so a greedy pass is optimal for small
    /// lists; long lists (more than [`GREEDY_LIMIT`] calls) are compared by
    /// sorting canonical keys, keeping the cost `O(n log n)` whatever the input.
    /// Tolerant equality (with a tolerance above 0) is not transitive, so
    /// it uses augmenting paths
    /// (Kuhn's algorithm), which is exact; beyond [`KUHN_LIMIT`] calls it falls
    /// back to a greedy pass, which may miss a matching that exists.
    fn perfect_matching(&self, a: &[Call], b: &[Call], names_only: bool) -> bool {
        let eq = |x: &Call, y: &Call| {
            if names_only {
                x.name == y.name
            } else {
                self.calls_equal(x, y)
            }
        };
        let n = a.len();
        let exact = matches!(self.numbers, NumberMatch::Exact);
        if exact && n > GREEDY_LIMIT {
            let keys = |calls: &[Call]| {
                let mut k: Vec<String> = calls
                    .iter()
                    .map(|c| {
                        if names_only {
                            c.name.clone()
                        } else {
                            format!(
                                "{}\u{0}{}",
                                c.name,
                                canonical(&Value::Object(c.arguments.clone()))
                            )
                        }
                    })
                    .collect();
                k.sort_unstable();
                k
            };
            return keys(a) == keys(b);
        }
        if exact || n > KUHN_LIMIT {
            let mut used = vec![false; n];
            return a
                .iter()
                .all(|x| match (0..n).find(|&j| !used[j] && eq(x, &b[j])) {
                    Some(j) => {
                        used[j] = true;
                        true
                    }
                    None => false,
                });
        }
        let adj: Vec<Vec<usize>> = a
            .iter()
            .map(|x| (0..n).filter(|&j| eq(x, &b[j])).collect())
            .collect();
        let mut owner: Vec<Option<usize>> = vec![None; n];
        (0..n).all(|i| {
            let mut seen = vec![false; n];
            augment(i, &adj, &mut owner, &mut seen)
        })
    }
}

/// Above this many calls, exact matching compares sorted canonical keys.
pub const GREEDY_LIMIT: usize = 32;
/// Above this many calls, tolerant matching is greedy (see [`Matcher::compare`]).
pub const KUHN_LIMIT: usize = 64;

/// Canonical text of a value for exact comparison: keys sorted (maps keep
/// the order they were written in), every zero written `0`, as
/// [`Matcher::values_equal`] compares them.
fn canonical(v: &Value) -> String {
    fn norm(v: &Value) -> Value {
        match v {
            Value::Number(n) if is_zero(n) => Value::from(0),
            Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
            Value::Object(o) => {
                let mut members: Vec<(&String, &Value)> = o.iter().collect();
                members.sort_unstable_by_key(|&(k, _)| k);
                Value::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| (k.clone(), norm(v)))
                        .collect(),
                )
            }
            other => other.clone(),
        }
    }
    norm(v).to_string()
}

fn augment(i: usize, adj: &[Vec<usize>], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for &j in &adj[i] {
        if seen[j] {
            continue;
        }
        seen[j] = true;
        if owner[j].is_none_or(|k| augment(k, adj, owner, seen)) {
            owner[j] = Some(i);
            return true;
        }
    }
    false
}

/// Any zero: the integer, or the float of either sign.
fn is_zero(n: &Number) -> bool {
    n.as_f64() == Some(0.0)
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn close(a: f64, b: f64, abs_tol: f64, rel_tol: f64) -> bool {
    (a - b).abs() <= abs_tol.max(rel_tol * a.abs().max(b.abs()))
}
