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
/// ```
pub fn rule_by_name(name: &str) -> Result<Box<dyn RewardRule<[Call]>>, UnknownRule> {
    let tool_n1 = |variant| Box::new(ToolN1Rule { variant });
    Ok(match name {
        "binary" => Box::new(BinaryRule::default()),
        "binary-no-think" => Box::new(BinaryRule::without_think()),
        "binary-tolerant" => Box::new(BinaryRule {
            matcher: Matcher::tolerant(0.0, 0.0),
            ..BinaryRule::default()
        }),
        "fine-grained" => Box::new(FineGrainedRule::format_and_match()),
        "fine-grained-names" => Box::new(FineGrainedRule::format_and_names()),
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
