//! # toolgym-reward
//!
//! The rule-based reward of *Nemotron-Research-Tool-N1* (arXiv 2505.00024):
//! read a model's completion, find its `<think>` and `<tool_call>` blocks,
//! parse the calls, compare them with the ground truth, and return a
//! [`Verdict`] — a reward and a [`Reason`]. No ML dependencies; never panics;
//! linear in the input, but for call matching past [`GREEDY_LIMIT`] calls
//! (exact: sorted, `n log n`) and past [`KUHN_LIMIT`] (tolerant: quadratic
//! in the ground truth's count). Memory is not capped: a service taking
//! text from clients bounds its size. A model's reply alone (not a
//! completion with its prompt) is scored with [`reply_verdict`], which,
//! under the `binary` and `fine-grained` families, reads an assistant
//! header the model wrote as text (the `tool-n1` rules read from the last
//! header, as the released script does).
//!
//! ```
//! use toolgym_reward::{rule_by_name, Call, Reason};
//! use serde_json::json;
//!
//! let truth = vec![Call::new("get_weather", json!({"city": "Paris", "days": 3})).unwrap()];
//! let reply = "<think>The user wants the weather.</think>\n\
//!              <tool_call>[{\"name\": \"get_weather\", \"arguments\": {\"days\": 3, \"city\": \"Paris\"}}]</tool_call>";
//! let rule = rule_by_name("binary").unwrap();
//! let v = rule.score(reply, &truth);
//! assert_eq!((v.reward, v.reason), (1.0, Reason::Ok));
//! ```
//!
//! ## Rules
//! - [`BinaryRule`] (`binary`): the paper's reward. 1 iff the format is right
//!   — one `<think>…</think>` block, then one or more `<tool_call>…</tool_call>`
//!   blocks, nothing but whitespace (and `<|im_end|>` / `<|endoftext|>`)
//!   around them — and the calls match the ground truth as an order-free
//!   multiset (names equal, arguments equal as JSON values: key order ignored,
//!   array order kept, `1` ≠ `1.0`). Options: no think block
//!   (`binary-no-think`), free text outside blocks, a reply without any
//!   tool-call block accepted as "no call", numeric tolerance
//!   ([`Matcher::tolerant`], `binary-tolerant`).
//! - [`FineGrainedRule`] (`fine-grained`, `fine-grained-names`): the paper's
//!   Table 4 partial-credit ablations on the same parser.
//! - [`ToolN1Rule`] (`tool-n1`, `tool-n1-no-think`, `tool-n1-fine`,
//!   `tool-n1-fine-names`): the released script (`compute_score_v0`, `v2`,
//!   `v3`, `v4` of `verl/verl/utils/reward_score/toolcall.py` in
//!   NVlabs/Tool-N1), reproduced bit for bit on Python semantics, tested
//!   against the script's own outputs.
//! - [`AllOf`] and [`WeightedSum`] compose any rules, yours included
//!   (implement [`RewardRule`]).
//!
//! ## Completions from inference servers
//! Servers with a tool parser (vLLM, SGLang, OpenAI-compatible) return an
//! assistant message with `tool_calls` instead of the model's text;
//! [`completion_text`] reads such a message (or a chat transcript) back into
//! the text every rule scores. The JSONL scorer ([`jsonl`]) accepts both.
//!
//! ## Multi-step episodes
//! An agent that calls, reads the results and calls again makes one call
//! list over several replies. [`RewardRule::score_episode`] scores such an
//! episode against the calls of all its steps: every reply that calls is
//! held to the rule's format, the last may answer in words, and the calls
//! of all the replies together are compared, order-free
//! ([`EpisodeJudgement`]). [`episode_texts`] reads the replies out of a
//! transcript (TRL's tool-loop completions) or a ChatML text decoded with
//! its turn headers (verl's agent loop; [`chatml_replies`]), and
//! [`jsonl::score_jsonl_episodes`] scores a JSONL file of such records.
//! The `binary` and `fine-grained` rules score episodes; the `tool-n1`
//! rules (the script scores one reply) and BFCL's do not (`None`,
//! [`scores_episodes`]; asked anyway, they refuse with [`NoEpisodes`]).
//!
//! ## How `binary` differs from the released script, and why
//! | | `binary` | `tool-n1` (script) | why `binary` differs |
//! |---|---|---|---|
//! | think | one closed `<think>` block, first, not repeated, before the calls | the substrings `<think>` and `</think>` anywhere (even after the call, or inside arguments) | the script is known to be reward-hacked by endless `<think>` tags |
//! | blocks | every `<tool_call>` block is read (Qwen2.5 / Hermes native form: one call per block) | only the last block; earlier ones are ignored, even broken ones | a broken earlier call is a wrong answer |
//! | tags | unterminated, nested, stray closing tags and stray text are format errors | ignored | the format is part of the reward |
//! | JSON | RFC 8259 (serde_json): no `NaN` / `Infinity`, nesting ≤ 128 | Python `json`: `NaN`, `Infinity` accepted; `NaN` equals `NaN` (compared as dumped text); nesting to ~1000 then `RecursionError` | a model must emit valid JSON; no ground truth holds NaN or deep nesting, so the reward cannot differ except for invalid JSON |
//! | `arguments` as a JSON string | decoded | compared as a string, so never equal to the object | both forms occur in model outputs and mean the same call |
//! | zeros: `0`, `-0`, `0.0`, `-0.0` | all equal | `0` and `-0` equal, `0.0` and `-0.0` different (compared as dumped text: `"0"`, `"0.0"`, `"-0.0"`) | serde_json reads `-0` as the float -0.0, so it must equal both `0` and `0.0`; one zero keeps equality transitive (matching cannot depend on call order) |
//! | payload `"\"\""` (a JSON string holding an empty string) | schema error | an empty call list (reward 1 when no call is expected) | a quirk |
//! | a number or bool as payload | schema error, 0 | the script raises `TypeError` (the run crashes); `tool-n1` scores 0 | no panics |
//! | surrounding whitespace | Rust `trim` (Unicode `White_Space`) | Python `str.strip()` (also U+001C–U+001F); `tool-n1` follows Python | only control characters differ |
//! | no call expected, no `<tool_call>` block | 0 by default; 1 with [`FormatPolicy::no_call_without_block`] | 0 | natural replies without a call are common |
//! | integers beyond 64 bits | read as floats by serde_json | exact Python ints; `tool-n1` keeps them exact in the completion (ground truth goes through serde_json, so beyond 64 bits it is a float there too) | serde_json's number model |
//!
//! Both score `1` ≠ `1.0` (`binary` aside from zeros) and `true` ≠ `1`, compare call lists as multisets,
//! ignore object key order, keep array order, and let a repeated key's last
//! value win.
//!
//! Where `tool-n1` itself departs from the script, all in the ground truth
//! (each pinned in `tests/tooln1_parity.rs`: on the parity fixture, the
//! integer `-0` in a test of its own):
//! - a ground truth is read by serde_json: one the script reads but
//!   serde_json refuses (`NaN`, `Infinity`, lone surrogates, nesting past
//!   128 levels) is an input error (reward 0) where the script may score 1,
//!   and so is one whose calls have a name that is not a str or `arguments`
//!   that are neither an object nor a JSON string holding one (`null`,
//!   `""`, `"abc"`, `[1]`: the script compares them as they are, and scores
//!   1 where the reply's are the same);
//! - `arguments` written as a JSON string holding an object are decoded
//!   into the object (as for every call-list rule), where the script
//!   compares the string itself: a reply's object matches them here, not
//!   in the script, and the same string matches there, not here;
//! - a ground truth that is one call object is read as a list of that call,
//!   where the script iterates the dict's keys and scores a wrong answer;
//! - integers beyond 64 bits become floats (the table above);
//! - the integer `-0` becomes the float -0.0 (serde_json's reading), so
//!   only a reply's `-0.0` matches it, where the script reads the integer
//!   0, matched by `0` and `-0` and not by `-0.0`.
//!
//! And in the completion: one that is not Unicode text (a lone surrogate,
//! from Python, or a `\udc00` escape in a JSON Lines record) is an input
//! error, where the script scores it as it reads it (a surrogate in the
//! `<think>` text, which it never parses, can score 1). A tokenizer's
//! decoded output never holds one.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod acebench;
mod batch;
pub mod bfcl;
mod call;
pub mod jsonl;
mod matcher;
pub mod message;
mod parse;
pub mod pycall;
pub mod pyjson;
mod registry;
mod rule;
mod rules;
mod search;
pub mod tooln1;
mod verdict;

#[cfg(feature = "rayon")]
pub use batch::par_score_batch;
pub use batch::{score_batch, Summary};
pub use call::{json_type_name, Call, CallShapeError};
pub use matcher::{MatchOutcome, Matcher, NumberMatch, GREEDY_LIMIT, KUHN_LIMIT};
pub use message::{
    chatml_replies, chatml_turns, completion_text, episode_texts, ChatTurn, CompletionError,
};
pub use parse::{
    after_marker, cut_at_marker, Completion, Diagnostic, ParseOptions, Severity, ASSISTANT_MARKER,
    END_TOKENS, THINK_CLOSE, THINK_OPEN, TOOL_CALL_CLOSE, TOOL_CALL_OPEN,
};
pub use registry::{
    rule_by_name, rule_with_options, RuleOptionError, RuleOptions, UnknownRule, RULES,
};
pub use rule::{episode_verdict, reply_verdict, scores_episodes, NoEpisodes, RewardRule};
pub use rules::{
    is_payload_fault, AllOf, BinaryRule, EpisodeJudgement, FineGrainedRule, FormatPolicy,
    Judgement, WeightedSum,
};
pub use tooln1::{CanonicalCalls, ScriptVariant, ToolN1Rule};
pub use verdict::{Reason, Verdict};
