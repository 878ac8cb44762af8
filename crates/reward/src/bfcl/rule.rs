//! The `bfcl-ast` reward rules: decode a completion, run the checker,
//! reward 1 if the official verdict is valid.

use super::case::BfclExpected;
use super::checker::{check, CheckOptions, CheckOutcome};
use super::decode::{decode, DecodeError, Decoder};
use crate::pycall::PyVal;
use crate::{RewardRule, UnknownRule, Verdict};

/// Names accepted by [`bfcl_rule_by_name`], with a one-line description.
pub const BFCL_RULES: [(&str, &str); 4] = [
    (
        "bfcl-ast",
        "BFCL's official AST checker (quirks included) on Tool-N1 <tool_call> output",
    ),
    (
        "bfcl-ast-strict",
        "BFCL's AST checker with its quirks fixed (optimal parallel matching, deep types, ...)",
    ),
    (
        "bfcl-ast-python",
        "BFCL's official AST checker on prompt-mode Python call syntax (after </think>)",
    ),
    (
        "bfcl-ast-python-strict",
        "bfcl-ast-strict on prompt-mode Python call syntax (after </think>)",
    ),
];

/// A BFCL reward rule: reward 1 when BFCL's checker (official or strict,
/// see [`CheckOptions`]) accepts the decoded calls, 0 otherwise. The
/// verdict's reason comes from the error type
/// ([`ErrorType::reason`](super::ErrorType::reason)); its detail is
/// `error_type: first message`.
///
/// ```
/// use serde_json::json;
/// use toolgym_reward::bfcl::{BfclAstRule, BfclExpected};
/// use toolgym_reward::{Reason, RewardRule};
/// let entry = json!({"id": "simple_python_0", "function": [{"name": "get_weather",
///     "parameters": {"type": "dict", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]});
/// let answer = json!({"id": "simple_python_0", "ground_truth": [{"get_weather": {"city": ["Paris"]}}]});
/// let case = BfclExpected::from_entry(&entry, Some(&answer)).unwrap();
/// let rule = BfclAstRule::official();
/// let reply = "<think>weather</think>\n<tool_call>[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"paris\"}}]</tool_call>";
/// assert_eq!(rule.score(reply, &case).reward, 1.0);
/// let v = rule.score("<think>x</think>", &case);
/// assert_eq!((v.reward, v.reason), (0.0, Reason::MissingCall));
/// assert!(v.detail.starts_with("simple_function_checker:wrong_count"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BfclAstRule {
    name: &'static str,
    /// Checker options.
    pub options: CheckOptions,
    /// How completions are decoded.
    pub decoder: Decoder,
    /// Require a `<think>…</think>` block before the calls (a reply
    /// without one scores 0 with reason `format_error`). Off by default:
    /// BFCL grades calls only.
    pub require_think: bool,
}

impl BfclAstRule {
    /// `bfcl-ast`: the official checker on Tool-N1 output.
    pub fn official() -> Self {
        Self {
            name: "bfcl-ast",
            options: CheckOptions::official(),
            decoder: Decoder::ToolN1,
            require_think: false,
        }
    }

    /// `bfcl-ast-strict`: the checker with its quirks fixed
    /// ([`CheckOptions::strict`]), on Tool-N1 output.
    pub fn strict() -> Self {
        Self {
            name: "bfcl-ast-strict",
            options: CheckOptions::strict(),
            ..Self::official()
        }
    }

    /// `bfcl-ast-python`: the official checker on BFCL prompt-mode output
    /// (Python call syntax after the last `</think>`).
    pub fn python() -> Self {
        Self {
            name: "bfcl-ast-python",
            decoder: Decoder::PythonAfterThink,
            ..Self::official()
        }
    }

    /// `bfcl-ast-python-strict`.
    pub fn python_strict() -> Self {
        Self {
            name: "bfcl-ast-python-strict",
            decoder: Decoder::PythonAfterThink,
            ..Self::strict()
        }
    }

    /// The same rule with `underscore_to_dot` (the FC-model name setting).
    pub fn with_underscore_to_dot(mut self, on: bool) -> Self {
        self.options.underscore_to_dot = on;
        self
    }

    /// The official-style verdict on one completion (for the eval command).
    pub fn check(&self, completion: &str, truth: &BfclExpected) -> CheckOutcome {
        check_completion(completion, truth, self.decoder, &self.options)
    }
}

/// Decodes `completion` with `decoder` and checks it: the official
/// `(valid, error_type, error)` triple in a [`CheckOutcome`].
pub fn check_completion(
    completion: &str,
    truth: &BfclExpected,
    decoder: Decoder,
    options: &CheckOptions,
) -> CheckOutcome {
    decode_and_check(completion, truth, decoder, options).1
}

/// [`check_completion`], with the decoding it judged.
fn decode_and_check(
    completion: &str,
    truth: &BfclExpected,
    decoder: Decoder,
    options: &CheckOptions,
) -> (Result<PyVal, DecodeError>, CheckOutcome) {
    let decoded = decode(completion, decoder);
    let outcome = check(truth, decoded.as_ref(), options);
    (decoded, outcome)
}

impl RewardRule<BfclExpected> for BfclAstRule {
    fn name(&self) -> &str {
        self.name
    }

    fn score(&self, completion: &str, truth: &BfclExpected) -> Verdict {
        if self.require_think {
            let c = crate::Completion::parse(completion);
            if c.think.is_none() {
                return Verdict::fail(crate::Reason::FormatError, "no <think> block");
            }
        }
        let (decoded, out) = decode_and_check(completion, truth, self.decoder, &self.options);
        if out.valid {
            match decoded {
                // Judged as holding no call (an irrelevance case passes)
                // where the official decoder may read one: said, not
                // silent (`eval bfcl` marks it `decoder_gap`).
                Err(e) if e.is_unsupported() => Verdict::new(
                    1.0,
                    crate::Reason::Ok,
                    format!(
                        "decoder gap: {e}; judged as no call here, where the official decoder \
                         may read a call (then irrelevance_error:decoder_success)"
                    ),
                ),
                _ => Verdict::ok(),
            }
        } else {
            Verdict::fail(out.reason, out.detail())
        }
    }
}

/// A BFCL rule by name (see [`BFCL_RULES`]).
///
/// ```
/// let rule = toolgym_reward::bfcl::bfcl_rule_by_name("bfcl-ast-strict").unwrap();
/// assert_eq!(rule.name(), "bfcl-ast-strict");
/// assert!(toolgym_reward::bfcl::bfcl_rule_by_name("binary").is_err());
/// ```
pub fn bfcl_rule_by_name(name: &str) -> Result<Box<dyn RewardRule<BfclExpected>>, UnknownRule> {
    Ok(Box::new(match name {
        "bfcl-ast" => BfclAstRule::official(),
        "bfcl-ast-strict" => BfclAstRule::strict(),
        "bfcl-ast-python" => BfclAstRule::python(),
        "bfcl-ast-python-strict" => BfclAstRule::python_strict(),
        _ => {
            return Err(UnknownRule {
                name: name.to_string(),
                known: BFCL_RULES.map(|(n, _)| n).join(", "),
            })
        }
    }))
}
