//! Judging one reply with the official rule (`evaluator.py`,
//! `Evaluator.evaluate`): read the call, require the expected API name,
//! convert and run the call on a fresh state, then ask the API's
//! `check_api_call_correctness` about its result against the recorded one.

use super::apis::{self, Args, Crash, Ctx, Raised, Rejected};
use super::parse::{parse_bracket, parse_tool_n1, ParsedCall, ToolCallProblem};
use super::samples::ApiBankSample;
use super::world::ApiBankState;
use super::Network;
use serde::Serialize;

/// The `error_type` of a sample that had no completion.
pub const NO_COMPLETION: &str = "no_completion";

/// How replies are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplyFormat {
    /// The benchmark's `[ApiName(key='value', …)]`, read with the official
    /// regular expressions ([`parse_bracket`]).
    #[default]
    Bracket,
    /// Tool-N1 `<tool_call>[{"name", "arguments"}]</tool_call>` with exactly
    /// one call; arguments become the strings the official parser would
    /// give ([`crate::data::apibank::json_argument`]).
    ToolN1,
    /// Tool-N1 when the reply has a `<tool_call>` tag, else the bracket
    /// form.
    Auto,
}

impl ReplyFormat {
    /// By name: `bracket`, `tool-n1`, `auto`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "bracket" | "official" => ReplyFormat::Bracket,
            "tool-n1" => ReplyFormat::ToolN1,
            "auto" => ReplyFormat::Auto,
            _ => return None,
        })
    }

    /// The name (`bracket`, `tool-n1`, `auto`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyFormat::Bracket => "bracket",
            ReplyFormat::ToolN1 => "tool-n1",
            ReplyFormat::Auto => "auto",
        }
    }
}

/// The verdict on one sample, as a line of the verdicts file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiBankVerdict {
    /// The sample id (`<file stem>#<index>`).
    pub id: String,
    /// The dialogue file.
    pub file: String,
    /// The official sample id within the file.
    pub sample_index: usize,
    /// The expected API.
    pub api_name: String,
    /// Whether the reply counts as correct.
    pub valid: bool,
    /// Why not (`None` when valid): `no_completion`, `no_api_call`,
    /// `unreadable_tool_call`, `call_count`, `api_name_mismatch`,
    /// `invalid_parameter_name`, `invalid_parameter_type`,
    /// `unsupported_digits`, `missing_argument`, `api_error`,
    /// `calculator_hang`, `has_exception`, `check_failed`, `key_error`,
    /// `api_name_assertion`, `checker_crash`.
    pub error_type: Option<String>,
    /// Details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The call as read from the reply, in the benchmark's form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_output: Option<String>,
    /// What the call returned (`str(output)`) or raised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The file is a `-level-1-` one.
    pub level1_file: bool,
    /// No reply can pass this sample (see [`ApiBankSample::never_passes`]),
    /// or, with [`Network::Unavailable`], its expected API needs the
    /// network.
    pub never_passes: bool,
    /// The expected API needs the network in the original and was answered
    /// from recorded results ([`Network::Recorded`]).
    pub offline_substitute: bool,
}

/// What running a call gave, before the verdict.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CallOutcome {
    /// Parameters rejected before the API ran.
    Rejected(Rejected),
    /// An exception escaped the API's `call`.
    Raised(Raised),
    /// The API returned a result.
    Returned(apis::ApiResult),
}

/// Converts and runs `call` (name already known to be an API) on `state`.
pub(crate) fn run_call(
    api: &'static apis::ApiInfo,
    params: &[(String, String)],
    state: &mut ApiBankState,
    network: Network,
) -> CallOutcome {
    let args: Args = match apis::convert(api, params) {
        Ok(a) => a,
        Err(r) => return CallOutcome::Rejected(r),
    };
    state.count_call();
    let mut cx = Ctx { state, network };
    match apis::call(api, &args, &mut cx) {
        Ok(r) => CallOutcome::Returned(r),
        Err(e) => CallOutcome::Raised(e),
    }
}

/// How replies are judged: how they are read, and what stands in for the
/// network APIs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Judge {
    /// How replies are read.
    pub format: ReplyFormat,
    /// Dictionary and Translate: recorded answers or none.
    pub network: Network,
}

impl Judge {
    /// The official setting: bracket replies, network APIs answered from
    /// the recorded results (the one deviation; see [`Network`]).
    pub fn official() -> Self {
        Self {
            format: ReplyFormat::Bracket,
            network: Network::Recorded,
        }
    }

    /// Tool-N1 `<tool_call>` replies, otherwise as [`Judge::official`].
    pub fn tool_n1() -> Self {
        Self {
            format: ReplyFormat::ToolN1,
            ..Self::official()
        }
    }

    /// Reads the one call of a reply.
    pub fn read(&self, reply: &str) -> Result<ParsedCall, (&'static str, String)> {
        let tool_n1 = match self.format {
            ReplyFormat::Bracket => false,
            ReplyFormat::ToolN1 => true,
            ReplyFormat::Auto => reply.contains(toolgym_reward::TOOL_CALL_OPEN),
        };
        if !tool_n1 {
            return parse_bracket(reply).ok_or(("no_api_call", "No API call found".into()));
        }
        parse_tool_n1(reply).map_err(|p| match p {
            ToolCallProblem::NoBlock => {
                ("no_api_call", "no complete <tool_call> block".to_string())
            }
            ToolCallProblem::Unreadable(m) => ("unreadable_tool_call", m),
            ToolCallProblem::CallCount(n) => (
                "call_count",
                format!("expected exactly one call, the reply makes {n}"),
            ),
        })
    }

    /// Judges one reply (`None`: the sample has no completion, which counts
    /// as wrong with error type [`NO_COMPLETION`]). Never panics.
    ///
    /// ```no_run
    /// use std::path::Path;
    /// use toolgym_env::data::apibank::{load_samples, Judge};
    /// let samples = load_samples(Path::new("api-bank"), Some(1)).unwrap();
    /// let v = Judge::official().judge(&samples[0], Some(&samples[0].expected_reply()));
    /// assert!(v.valid || v.never_passes);
    /// ```
    pub fn judge(&self, sample: &ApiBankSample, reply: Option<&str>) -> ApiBankVerdict {
        let mut v = ApiBankVerdict {
            id: sample.id.clone(),
            file: sample.file.clone(),
            sample_index: sample.index,
            api_name: sample.api_name.clone(),
            valid: false,
            error_type: None,
            error: None,
            model_output: None,
            result: None,
            level1_file: sample.in_level1_file(),
            // Without the network, no Dictionary or Translate call can
            // answer: such a sample cannot pass either.
            never_passes: sample.never_passes.is_some()
                || (sample.uses_network() && self.network == Network::Unavailable),
            offline_substitute: sample.uses_network() && self.network == Network::Recorded,
        };
        let fail = |v: &mut ApiBankVerdict, kind: &str, detail: String| {
            v.error_type = Some(kind.to_string());
            v.error = Some(detail);
        };
        let Some(reply) = reply else {
            fail(
                &mut v,
                NO_COMPLETION,
                "no completion for this sample".into(),
            );
            return v;
        };
        let call = match self.read(reply) {
            Ok(c) => c,
            Err((kind, detail)) => {
                fail(&mut v, kind, detail);
                return v;
            }
        };
        v.model_output = Some(call.to_bracket());
        match self.judge_call(sample, &call) {
            Ok(result) => {
                v.valid = true;
                v.result = result;
            }
            Err((kind, detail, result)) => {
                v.result = result;
                fail(&mut v, kind, detail);
            }
        }
        v
    }

    /// The official verdict on a call already read: `Ok(result text)` when
    /// correct, else `(error_type, detail, result text)`.
    #[allow(clippy::type_complexity)]
    pub(crate) fn judge_call(
        &self,
        sample: &ApiBankSample,
        call: &ParsedCall,
    ) -> Result<Option<String>, (&'static str, String, Option<String>)> {
        if call.name != sample.api_name {
            return Err((
                "api_name_mismatch",
                format!("API Name Mismatch: {} vs {}", call.name, sample.api_name),
                None,
            ));
        }
        let Some(api) = apis::info(&call.name) else {
            return Err((
                "api_error",
                format!("invalid tool name: {}", call.name),
                None,
            ));
        };
        let mut state = sample.data.fresh_state();
        let result = match run_call(api, &call.params, &mut state, self.network) {
            CallOutcome::Rejected(r) => {
                let kind = match r {
                    Rejected::Name(_) => "invalid_parameter_name",
                    Rejected::Type(..) => "invalid_parameter_type",
                    Rejected::NonAsciiDigits(..) => "unsupported_digits",
                    Rejected::Missing(_) => "missing_argument",
                };
                return Err((kind, r.to_string(), None));
            }
            CallOutcome::Raised(e) => {
                let kind = match e {
                    Raised::Hang(_) => "calculator_hang",
                    Raised::Error(_) => "api_error",
                };
                return Err((kind, e.to_string(), None));
            }
            CallOutcome::Returned(r) => r,
        };
        let text = Some(match &result.exception {
            Some(e) => format!("exception: {e}"),
            None => result.output.text(),
        });
        match apis::check(api, &result, &sample.result) {
            Ok(true) => Ok(text),
            Ok(false) => match &result.exception {
                Some(e) => Err(("has_exception", e.clone(), text)),
                None => Err((
                    "check_failed",
                    "the call's input or result differs from the recorded one".into(),
                    text,
                )),
            },
            Err(c) => {
                let kind = match c {
                    Crash::KeyError(_) => "key_error",
                    Crash::ApiNameAssertion => "api_name_assertion",
                    Crash::Other(_) => "checker_crash",
                };
                Err((kind, c.to_string(), text))
            }
        }
    }

    /// Judges every sample (in parallel on rayon's pool), in order, with
    /// `completion(index, sample)`.
    pub fn judge_all<'c>(
        &self,
        samples: &[ApiBankSample],
        completion: impl Fn(usize, &ApiBankSample) -> Option<&'c str> + Sync,
    ) -> Vec<ApiBankVerdict> {
        use rayon::prelude::*;
        samples
            .par_iter()
            .enumerate()
            .map(|(i, s)| self.judge(s, completion(i, s)))
            .collect()
    }
}
