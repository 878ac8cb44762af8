//! # BFCL's AST checker as a reward
//!
//! A re-implementation of the Berkeley Function-Calling Leaderboard's
//! official AST checker (PyPI `bfcl-eval==2026.3.23`,
//! `bfcl_eval/eval_checker/ast_eval/ast_checker.py` and the relevance
//! rules of `eval_runner.py`) for the single-turn Python categories, with
//! the same verdicts — quirks included — tested against the official
//! checker's own outputs (`tests/fixtures/bfcl/`).
//!
//! - [`BfclExpected`]: one case (category, function docs, possible answer)
//!   — the ground-truth type of the rules.
//! - [`check`]: the official `(valid, error_type, error)` verdict on a
//!   decoded `model_output` ([`CheckOutcome`]); [`check_completion`] decodes
//!   first.
//! - [`BfclAstRule`] (`bfcl-ast`, `bfcl-ast-python`) and its strict variant
//!   (`bfcl-ast-strict`, `bfcl-ast-python-strict`): reward rules
//!   ([`RewardRule<BfclExpected>`](crate::RewardRule)); [`bfcl_rule_by_name`].
//! - Decoders: [`decode_tool_n1`] (our `<tool_call>` JSON format) and
//!   [`decode_python_prompt`] (BFCL's prompt-mode Python syntax decoder,
//!   quirks included, on [`crate::pycall`]).
//! - [`leaderboard`]: the official aggregation; [`python_only`]: a clearly
//!   non-official Python-only view.
//!
//! ## Quirks of the official checker (all reproduced by `bfcl-ast`)
//! Greedy first-fit matching of parallel calls; an `int` passes for a
//! `float` only at top level; one-level array element checks; string
//! standardisation (drop ` ,./-_*^`, lowercase, `'`→`"`) only on top-level
//! strings, list elements and dict values; `""` (the optional marker)
//! doubles as a value; `True == 1` where no type check guards; "variable"
//! answers (answer type ≠ schema type) compared exactly; a parameter in
//! the schema but not in the answer is unexpected; the simple categories
//! use the first function doc whatever its name; dotted names need `_`
//! under `underscore_to_dot`. [`CheckOptions`] documents what the strict
//! variant changes, flag by flag.
//!
//! ## Error types and key order
//! Validity is the AND of all checks, so it never depends on the order of
//! the model's keys. Which error is *reported* does (first failing
//! parameter in the model's order): [`decode_tool_n1`] and
//! [`decode_python_prompt`] keep the model's order, and so do values built
//! from serde_json (`PyVal::from_json`: this workspace's maps keep the
//! order their keys were read in, a repeated key at its first place with
//! its last value, as a Python dict built by `json.loads`).

mod aggregate;
mod case;
mod checker;
pub(crate) mod decode;
pub(crate) mod pyeval;
mod rule;

pub use aggregate::{
    full_size, leaderboard, percentage_weighted, python_only, unweighted, weighted, CategoryScore,
    Leaderboard, Metric, PythonOnly, FULL_SIZES,
};
pub use case::{
    BfclExpected, CaseError, Category, CheckerKind, ExpectedCall, FunctionDoc, ParamType, TypeDoc,
};
pub use checker::{
    check, is_empty_output, is_function_calling_format, standardize_string, CandidateError,
    CheckOptions, CheckOutcome, ErrorType,
};
pub use decode::{
    decode, decode_python_prompt, decode_tool_n1, decoder_gap_note, DecodeError, Decoder,
};
pub use rule::{bfcl_rule_by_name, check_completion, BfclAstRule, BFCL_RULES};
