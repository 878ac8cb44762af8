//! Built-in rules by name, for the CLI and config files.

use crate::{BinaryRule, Call, FineGrainedRule, Matcher, RewardRule, ScriptVariant, ToolN1Rule};

/// Names accepted by [`rule_by_name`], with a one-line description each.
pub const RULES: [(&str, &str); 9] = [
    (
        "binary",
        "the paper's reward: think block then tool_call block(s), calls match exactly",
    ),
    (
        "binary-no-think",
        "Table 4 ablation: binary without the reasoning format",
    ),
    (
        "binary-tolerant",
        "binary, numbers compared by value (1 == 1.0)",
    ),
    (
        "fine-grained",
        "Table 4 ablation: 0.2 for the format + 0.8 for a full match",
    ),
    (
        "fine-grained-names",
        "Table 4 ablation: 0.2 format + 0.8 full match, or + 0.2 for right names",
    ),
    (
        "tool-n1",
        "the released script's compute_score_v0, bit for bit",
    ),
    (
        "tool-n1-no-think",
        "the released script's compute_score_v2 (no think check)",
    ),
    (
        "tool-n1-fine",
        "the released script's compute_score_v3 (0.2 think + 0.8 match)",
    ),
    (
        "tool-n1-fine-names",
        "the released script's compute_score_v4 (+0.2 for names)",
    ),
];

/// An unknown rule name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown reward rule {name:?}; known rules: {known}")]
pub struct UnknownRule {
    /// The name asked for.
    pub name: String,
    /// The known names, comma-separated.
    pub known: String,
}

/// A built-in rule by name (see [`RULES`]).
///
/// ```
/// let rule = toolgym_reward::rule_by_name("tool-n1").unwrap();
/// assert_eq!(rule.name(), "tool-n1");
/// assert!(toolgym_reward::rule_by_name("nope").is_err());
/// // Every built-in rule goes by the name it was asked for.
/// for (name, _) in toolgym_reward::RULES {
///     assert_eq!(toolgym_reward::rule_by_name(name).unwrap().name(), name);
/// }
/// ```
pub fn rule_by_name(name: &str) -> Result<Box<dyn RewardRule<[Call]>>, UnknownRule> {
    let tool_n1 = |variant| Box::new(ToolN1Rule { variant });
    if let Some(rule) = adjustable(name) {
        return Ok(rule.boxed());
    }
    Ok(match name {
        "tool-n1" => tool_n1(ScriptVariant::V0),
        "tool-n1-no-think" => tool_n1(ScriptVariant::V2),
        "tool-n1-fine" => tool_n1(ScriptVariant::V3),
        "tool-n1-fine-names" => tool_n1(ScriptVariant::V4),
        _ => {
            return Err(UnknownRule {
                name: name.to_string(),
                known: RULES.map(|(n, _)| n).join(", "),
            })
        }
    })
}

/// Options that adjust a built-in rule of the `binary` and `fine-grained`
/// families (the `tool-n1` rules are the released script and take none).
/// `None` keeps the rule's own setting.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RuleOptions {
    /// Require the `<think>` block ([`FormatPolicy::require_think`](crate::FormatPolicy)).
    pub think: Option<bool>,
    /// Allow free text outside the blocks
    /// ([`FormatPolicy::allow_text_outside`](crate::FormatPolicy)).
    pub free_text: Option<bool>,
    /// Accept a reply without any tool-call block as "no call"
    /// ([`FormatPolicy::no_call_without_block`](crate::FormatPolicy)).
    pub no_call_without_block: Option<bool>,
    /// Compare numbers with this absolute tolerance (with `rel_tol`:
    /// [`Matcher::tolerant`]).
    pub abs_tol: Option<f64>,
    /// Compare numbers with this relative tolerance.
    pub rel_tol: Option<f64>,
}

impl RuleOptions {
    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The matcher `abs_tol` and `rel_tol` ask for: `None` when neither
    /// is set (a rule keeps its own), else [`Matcher::tolerant`] (an unset
    /// one is 0). A negative or non-finite tolerance is refused.
    ///
    /// ```
    /// use toolgym_reward::RuleOptions;
    /// assert!(RuleOptions::default().matcher().unwrap().is_none());
    /// let loose = RuleOptions { abs_tol: Some(0.01), ..Default::default() };
    /// assert!(loose.matcher().unwrap().is_some());
    /// assert!(RuleOptions { rel_tol: Some(-1.0), ..Default::default() }.matcher().is_err());
    /// ```
    pub fn matcher(&self) -> Result<Option<Matcher>, RuleOptionError> {
        for (label, value) in [("abs_tol", self.abs_tol), ("rel_tol", self.rel_tol)] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(RuleOptionError::BadTolerance {
                    name: label,
                    value: v,
                });
            }
        }
        Ok((self.abs_tol.is_some() || self.rel_tol.is_some())
            .then(|| Matcher::tolerant(self.abs_tol.unwrap_or(0.0), self.rel_tol.unwrap_or(0.0))))
    }
}

/// Why [`rule_with_options`] refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RuleOptionError {
    /// The name is not a rule.
    #[error(transparent)]
    Unknown(#[from] UnknownRule),
    /// The rule takes no options (the `tool-n1` rules are the released
    /// script, bit for bit).
    #[error("rule {0:?} takes no options (it reproduces the released script exactly)")]
    NoOptions(String),
    /// A tolerance is negative or not a number.
    #[error("{name} must be a finite number >= 0, got {value}")]
    BadTolerance {
        /// `abs_tol` or `rel_tol`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
}

/// A built-in rule by name with [`RuleOptions`] applied.
///
/// ```
/// use toolgym_reward::{rule_with_options, Call, RuleOptions};
/// use serde_json::json;
/// let truth = vec![Call::new("f", json!({"x": 1})).unwrap()];
/// let reply = "Sure!<tool_call>[{\"name\": \"f\", \"arguments\": {\"x\": 1.0}}]</tool_call>";
/// let options = RuleOptions { think: Some(false), free_text: Some(true), abs_tol: Some(0.0), ..Default::default() };
/// let rule = rule_with_options("binary", &options).unwrap();
/// assert_eq!(rule.score(reply, &truth).reward, 1.0);
/// assert!(rule_with_options("tool-n1", &options).is_err());
/// ```
pub fn rule_with_options(
    name: &str,
    options: &RuleOptions,
) -> Result<Box<dyn RewardRule<[Call]>>, RuleOptionError> {
    if options.is_empty() {
        return Ok(rule_by_name(name)?);
    }
    let tolerant = options.matcher()?;
    let Some(mut rule) = adjustable(name) else {
        rule_by_name(name)?;
        return Err(RuleOptionError::NoOptions(name.to_string()));
    };
    let (format, matcher) = match &mut rule {
        Adjustable::Binary(r) => (&mut r.format, &mut r.matcher),
        Adjustable::Fine(r) => (&mut r.format, &mut r.matcher),
    };
    {
        if let Some(v) = options.think {
            format.require_think = v;
        }
        if let Some(v) = options.free_text {
            format.allow_text_outside = v;
        }
        if let Some(v) = options.no_call_without_block {
            format.no_call_without_block = v;
        }
        if let Some(m) = tolerant {
            *matcher = m;
        }
    }
    Ok(rule.boxed())
}

/// The rules whose format policy and matcher can be adjusted.
enum Adjustable {
    Binary(BinaryRule),
    Fine(FineGrainedRule),
}

impl Adjustable {
    fn boxed(self) -> Box<dyn RewardRule<[Call]>> {
        match self {
            Adjustable::Binary(r) => Box::new(r),
            Adjustable::Fine(r) => Box::new(r),
        }
    }
}

fn adjustable(name: &str) -> Option<Adjustable> {
    Some(match name {
        "binary" => Adjustable::Binary(BinaryRule::default()),
        "binary-no-think" => Adjustable::Binary(BinaryRule::without_think()),
        "binary-tolerant" => Adjustable::Binary(BinaryRule {
            matcher: Matcher::tolerant(0.0, 0.0),
            ..BinaryRule::default()
        }),
        "fine-grained" => Adjustable::Fine(FineGrainedRule::format_and_match()),
        "fine-grained-names" => Adjustable::Fine(FineGrainedRule::format_and_names()),
        _ => return None,
    })
}
