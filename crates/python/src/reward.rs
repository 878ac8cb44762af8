//! `toolgym.Rule`, `toolgym.Verdict` and `toolgym.rules()`.

use crate::convert::{self, CompletionArg, Label};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use toolgym_reward::bfcl::{bfcl_rule_by_name, BfclExpected, BFCL_RULES};
use toolgym_reward::{
    chatml_replies, completion_text, episode_texts, jsonl, rule_with_options, Call, CallShapeError,
    Matcher, Reason, RewardRule, RuleOptions, RULES,
};

/// A rule's judgement of one completion: `reward`, `reason` (a snake_case
/// code such as `ok`, `format_error`, `wrong_args`) and `detail` (a short
/// explanation, empty when the reason is `ok`).
#[pyclass(frozen, eq, module = "toolgym", name = "Verdict")]
#[derive(Clone, PartialEq)]
pub struct PyVerdict {
    /// The scalar reward.
    #[pyo3(get)]
    reward: f64,
    /// Why (snake_case code).
    #[pyo3(get)]
    reason: String,
    /// A short explanation.
    #[pyo3(get)]
    detail: String,
}

impl From<toolgym_reward::Verdict> for PyVerdict {
    fn from(v: toolgym_reward::Verdict) -> Self {
        Self {
            reward: v.reward,
            reason: v.reason.as_str().to_string(),
            detail: v.detail.into_owned(),
        }
    }
}

#[pymethods]
impl PyVerdict {
    #[new]
    #[pyo3(signature = (reward, reason, detail = String::new()))]
    fn new(reward: f64, reason: String, detail: String) -> Self {
        Self {
            reward,
            reason,
            detail,
        }
    }

    /// True when the reason is `ok`.
    #[getter]
    fn ok(&self) -> bool {
        self.reason == "ok"
    }

    /// `{"reward", "reason", "detail"}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("reward", self.reward)?;
        d.set_item("reason", &self.reason)?;
        d.set_item("detail", &self.detail)?;
        Ok(d)
    }

    fn __float__(&self) -> f64 {
        self.reward
    }

    fn __getnewargs__(&self) -> (f64, String, String) {
        (self.reward, self.reason.clone(), self.detail.clone())
    }

    fn __repr__(&self) -> String {
        if self.detail.is_empty() {
            format!(
                "Verdict(reward={:?}, reason={:?})",
                self.reward, self.reason
            )
        } else {
            format!(
                "Verdict(reward={:?}, reason={:?}, detail={:?})",
                self.reward, self.reason, self.detail
            )
        }
    }
}

/// The built-in rules: `(name, description)` pairs, the call-list rules
/// then BFCL's checker.
#[pyfunction]
pub fn rules() -> Vec<(&'static str, &'static str)> {
    RULES.iter().chain(BFCL_RULES.iter()).copied().collect()
}

/// A tolerance argument (`abs_tol`, `rel_tol`): a number. A bool is
/// refused: `True` reads as 1.0, a tolerance that passes nearly anything.
fn tolerance(value: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name}= must be a number, not a bool"
        )));
    }
    value
        .extract::<f64>()
        .map_err(|_| PyTypeError::new_err(format!("{name}= must be a number")))
}

/// Whether `calls` match `ground_truth` as multisets (order-free), as the
/// multi-turn envs' `calls-match` rule compares an episode's calls:
/// `Verdict(1.0, "ok")`, or 0 with `missing_call`, `extra_call`,
/// `wrong_name` or `wrong_args`. Both are lists of `{"name", "arguments"}`
/// dicts (or one dict; OpenAI's `{"type": "function", "function": …}`
/// with arguments as JSON text, as TRL's parser gives calls, reads too)
/// or their JSON text. Numbers compare as written (`1` is not
/// `1.0`) unless `abs_tol` / `rel_tol` is given ([`RuleOptions::matcher`]).
/// A list that is not calls is a `ValueError` naming it.
#[pyfunction]
#[pyo3(signature = (calls, ground_truth, abs_tol = None, rel_tol = None))]
pub fn match_calls(
    calls: &Bound<'_, PyAny>,
    ground_truth: &Bound<'_, PyAny>,
    abs_tol: Option<&Bound<'_, PyAny>>,
    rel_tol: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyVerdict> {
    let options = RuleOptions {
        abs_tol: abs_tol.map(|v| tolerance(v, "abs_tol")).transpose()?,
        rel_tol: rel_tol.map(|v| tolerance(v, "rel_tol")).transpose()?,
        ..Default::default()
    };
    let matcher = options
        .matcher()
        .map_err(|e| PyValueError::new_err(e.to_string()))?
        .unwrap_or(Matcher::EXACT);
    // JSON text and Python values read alike (either in OpenAI's form).
    let read = |obj: &Bound<'_, PyAny>, what: &str| -> PyResult<Vec<Call>> {
        let bad = |e: CallShapeError| PyValueError::new_err(format!("{what}: {e}"));
        let value = match obj.cast::<PyString>() {
            Ok(s) => serde_json::from_str(&s.to_cow()?)
                .map_err(|e| bad(CallShapeError::Json(e.to_string())))?,
            Err(_) => convert::to_json(obj, Label::Arg(what))?,
        };
        Call::list_from_value(flat_calls(value)).map_err(bad)
    };
    let (predicted, truth) = (read(calls, "calls")?, read(ground_truth, "ground_truth")?);
    Ok(matcher.compare(&predicted, &truth).verdict("calls").into())
}

/// OpenAI's form of calls (`{"type": "function", "function": {"name",
/// "arguments": JSON text}}`, as chat APIs and TRL's response parser give
/// them) in the flat `{"name", "arguments"}` form, arguments read from
/// their text (an empty text is no arguments); other values as they are.
fn flat_calls(value: Value) -> Value {
    let flat = |item: Value| {
        let Value::Object(mut call) = item else {
            return item;
        };
        let Some(Value::Object(mut function)) = call.shift_remove("function") else {
            return Value::Object(call);
        };
        if let Some(Value::String(text)) = function.get("arguments") {
            let read = if text.trim().is_empty() {
                Some(Value::Object(Default::default()))
            } else {
                serde_json::from_str(text).ok()
            };
            if let Some(arguments) = read {
                function.insert("arguments".into(), arguments);
            }
        }
        Value::Object(function)
    };
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(flat).collect()),
        other => flat(other),
    }
}

/// The turns of a text written in ChatML with its special tokens kept (a
/// multi-turn response as verl's tool loop lays it out): `(role, text)`
/// pairs, `role` `None` for the text before the first header. A header is
/// `<|im_start|>ROLE\n` at the start of the text or right after an end
/// token; see `toolgym_reward::message::chatml_turns`.
#[pyfunction]
pub fn chatml_turns(text: &str) -> Vec<(Option<&str>, &str)> {
    toolgym_reward::chatml_turns(text)
        .into_iter()
        .map(|t| (t.role, t.text))
        .collect()
}

/// A rule and the ground-truth type it reads.
#[derive(Clone)]
enum Kind {
    Calls(Arc<dyn RewardRule<[Call]>>),
    Bfcl(Arc<dyn RewardRule<BfclExpected>>),
}

/// A ground truth read under the GIL; JSON text is parsed later, in
/// parallel.
enum TruthArg {
    Text(String),
    Json(Value),
}

/// A ground truth ready for the rule.
enum Truth {
    Calls(Vec<Call>),
    Bfcl(Box<BfclExpected>),
}

/// A reward rule by name: `Rule("binary")`, `Rule("tool-n1")`,
/// `Rule("binary", think=False, free_text=True)`, `Rule("bfcl-ast")`.
///
/// Options (the `binary` and `fine-grained` families only): `think` (bool,
/// require the think block), `free_text` (bool, allow text outside the
/// blocks), `no_call_without_block` (bool, a reply without a tool-call
/// block means "no call"), `abs_tol` / `rel_tol` (float, compare numbers
/// with tolerance). The `tool-n1` rules reproduce the released script and
/// take none.
///
/// A completion is a `str`, UTF-8 `bytes`, an OpenAI-style assistant message
/// `dict` (`content`, `reasoning_content`, `tool_calls`) or a list of chat
/// messages (the last assistant message is scored). A ground truth is a
/// list of `{"name", "arguments"}` dicts (or one dict) or its JSON text;
/// for the `bfcl-*` rules, a BFCL case dict (`functions`,
/// `possible_answer`, `category` or `id`) or its JSON text.
#[pyclass(frozen, module = "toolgym", name = "Rule")]
pub struct PyRule {
    name: String,
    options: RuleOptions,
    kind: Kind,
    /// The last ground truth `score` read from JSON text, and what it
    /// parsed to: verl's per-sample reward manager passes the G responses
    /// of a prompt one after another with the same ground-truth text.
    last_truth: Mutex<Option<(String, Arc<Truth>)>>,
    /// Whether the rule scores multi-step episodes
    /// ([`RewardRule::score_episode`] gives a verdict).
    episodes: bool,
}

impl PyRule {
    /// [`PyRule::score`]'s verdict as `reward reason detail` text (for the
    /// fuzz target).
    #[cfg(feature = "fuzzing")]
    pub fn score_value(
        &self,
        completion: &Bound<'_, PyAny>,
        ground_truth: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        let v = self.score(completion, ground_truth, false, false)?;
        Ok(format!("{} {} {}", v.reward, v.reason, v.detail))
    }

    /// A rule by name, without options (for the env classes).
    pub fn named(name: &str) -> PyResult<Self> {
        Self::build(name, RuleOptions::default())
    }

    /// The call-list rule, or a `ValueError` for the BFCL rules.
    pub fn calls_rule(&self) -> PyResult<Arc<dyn RewardRule<[Call]>>> {
        match &self.kind {
            Kind::Calls(r) => Ok(r.clone()),
            Kind::Bfcl(_) => Err(PyValueError::new_err(format!(
                "rule {:?} checks BFCL cases, not call lists; use a call-list rule here",
                self.name
            ))),
        }
    }

    fn build(name: &str, options: RuleOptions) -> PyResult<Self> {
        let kind = if name.starts_with("bfcl-") {
            if !options.is_empty() {
                return Err(PyTypeError::new_err(format!(
                    "rule {name:?} takes no options"
                )));
            }
            Kind::Bfcl(Arc::from(
                bfcl_rule_by_name(name).map_err(|e| PyValueError::new_err(e.to_string()))?,
            ))
        } else {
            Kind::Calls(Arc::from(rule_with_options(name, &options).map_err(
                |e| match e {
                    toolgym_reward::RuleOptionError::NoOptions(_) => {
                        PyTypeError::new_err(e.to_string())
                    }
                    _ => PyValueError::new_err(e.to_string()),
                },
            )?))
        };
        // Asked once: a rule without episode semantics answers `None`
        // whatever the replies.
        let episodes = match &kind {
            Kind::Calls(r) => toolgym_reward::scores_episodes(&**r),
            Kind::Bfcl(_) => false,
        };
        Ok(Self {
            name: name.to_string(),
            options,
            kind,
            last_truth: Mutex::new(None),
            episodes,
        })
    }

    fn read_truth(&self, obj: &Bound<'_, PyAny>, what: Label<'_>) -> PyResult<TruthArg> {
        if let Ok(s) = obj.cast::<PyString>() {
            return s
                .to_cow()
                .map(|t| TruthArg::Text(t.into_owned()))
                .map_err(|e| PyValueError::new_err(format!("{what}: not valid Unicode ({e})")));
        }
        let value = convert::to_json(obj, what)?;
        if matches!(self.kind, Kind::Calls(_)) {
            warn_null_arguments(obj.py(), &value);
        }
        Ok(TruthArg::Json(value))
    }

    fn parse_truth(&self, arg: &TruthArg, what: Label<'_>) -> Result<Truth, String> {
        let value = match arg {
            TruthArg::Json(v) => v.clone(),
            TruthArg::Text(t) => match &self.kind {
                Kind::Calls(_) => {
                    return Call::list_from_json(t)
                        .map(Truth::Calls)
                        .map_err(|e| format!("{what}: {e}"))
                }
                Kind::Bfcl(_) => {
                    serde_json::from_str(t).map_err(|e| format!("{what}: not JSON: {e}"))?
                }
            },
        };
        match &self.kind {
            Kind::Calls(_) => Call::list_from_value(value)
                .map(Truth::Calls)
                .map_err(|e| format!("{what}: {e}")),
            Kind::Bfcl(_) => {
                let Value::Object(mut case) = value else {
                    return Err(format!("{what}: a BFCL case must be a dict"));
                };
                let id = case.shift_remove("id").unwrap_or(Value::Null);
                jsonl::bfcl_truth(&id, &mut case)
                    .map(|c| Truth::Bfcl(Box::new(c)))
                    .map_err(|e| format!("{what}: {e}"))
            }
        }
    }

    /// [`PyRule::parse_truth`] for `score`, reusing the last ground truth
    /// read from the same JSON text.
    fn truth_of(&self, arg: &TruthArg) -> Result<Arc<Truth>, String> {
        let what = Label::Arg("ground_truth");
        let TruthArg::Text(text) = arg else {
            return self.parse_truth(arg, what).map(Arc::new);
        };
        // A poisoned lock only means another call panicked: the cache is
        // still a valid (text, truth) pair or empty.
        let lock = || self.last_truth.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, truth)) = lock().as_ref() {
            if seen == text {
                return Ok(truth.clone());
            }
        }
        // Parsed without the lock: threads scoring other prompts (verl's
        // reward loop scores on several) do not queue behind this one.
        let truth = Arc::new(self.parse_truth(arg, what)?);
        *lock() = Some((text.clone(), truth.clone()));
        Ok(truth)
    }

    /// How `episode` and `reply` ask a completion to be read: `Ok` when
    /// `episode` is false or the rule scores episodes, else the
    /// `ValueError` saying which rules do; both at once is refused (an
    /// episode's replies are read as replies already).
    fn read_as(&self, episode: bool, reply: bool) -> PyResult<ReadAs> {
        match (episode, reply) {
            (true, true) => Err(PyValueError::new_err(
                "episode=True and reply=True: an episode's replies are read as replies already; \
                 pass one of them",
            )),
            (true, false) if !self.episodes => Err(PyValueError::new_err(
                toolgym_reward::NoEpisodes::new(&self.name).to_string(),
            )),
            (true, false) => Ok(ReadAs::Episode),
            (false, true) => Ok(ReadAs::Reply),
            (false, false) => Ok(ReadAs::Completion),
        }
    }

    /// [`PyRule::judge`]; as a [`ReadAs::Reply`], a model's reply alone
    /// ([`toolgym_reward::reply_verdict`]: an assistant header in it is
    /// text for the binary and fine-grained families); as a
    /// [`ReadAs::Episode`], every assistant message of a list of
    /// messages, or every assistant turn of a ChatML text
    /// ([`chatml_replies`]), as one reply of an episode
    /// ([`RewardRule::score_episode`]; one message, or text without turn
    /// headers, is an episode of one reply).
    fn judge_as(
        &self,
        completion: &CompletionArg,
        truth: &Truth,
        read_as: ReadAs,
    ) -> toolgym_reward::Verdict {
        let (Kind::Calls(r), Truth::Calls(t)) = (&self.kind, truth) else {
            return self.judge(completion, truth);
        };
        match read_as {
            ReadAs::Completion => return self.judge(completion, truth),
            ReadAs::Reply => {
                return match completion_text_of(completion) {
                    Ok(text) => toolgym_reward::reply_verdict(&**r, &text, t),
                    Err(v) => v,
                }
            }
            ReadAs::Episode => {}
        }
        let turns = match completion {
            CompletionArg::Json(v) => match episode_texts(v) {
                Ok(turns) => turns,
                Err(e) => return toolgym_reward::Verdict::fail(Reason::InputError, e.to_string()),
            },
            CompletionArg::Text(text) => chatml_replies(text)
                .into_iter()
                .map(std::borrow::Cow::Borrowed)
                .collect(),
            CompletionArg::Bad(_) => return self.judge(completion, truth),
        };
        let turns: Vec<&str> = turns.iter().map(|t| t.as_ref()).collect();
        toolgym_reward::episode_verdict(&**r, &turns, t)
    }

    fn judge(&self, completion: &CompletionArg, truth: &Truth) -> toolgym_reward::Verdict {
        let text = match completion_text_of(completion) {
            Ok(text) => text,
            Err(v) => return v,
        };
        match (&self.kind, truth) {
            (Kind::Calls(r), Truth::Calls(t)) => r.score(&text, t),
            (Kind::Bfcl(r), Truth::Bfcl(t)) => r.score(&text, t),
            _ => toolgym_reward::Verdict::fail(Reason::InputError, "ground truth of another rule"),
        }
    }

    /// Reads and scores pairs: inputs are read under the GIL, then parsed
    /// and scored in parallel without it. A ground truth object that
    /// recurs (GRPO repeats a prompt's ground truth for its G samples, as
    /// verl and TRL pass it) is read and parsed once.
    fn score_pairs(
        &self,
        py: Python<'_>,
        completions: &Bound<'_, PyAny>,
        ground_truths: &Bound<'_, PyAny>,
        threads: Option<Threads>,
        errors: &str,
        read_as: ReadAs,
    ) -> PyResult<Vec<toolgym_reward::Verdict>> {
        // What an item that cannot be read gives: an error naming the first
        // such item, or an `input_error` verdict for it alone.
        let verdict_mode = match errors {
            "raise" => false,
            "verdict" => true,
            other => {
                return Err(PyValueError::new_err(format!(
                    "errors={other:?}: expected \"raise\" or \"verdict\""
                )))
            }
        };
        let completions = sequence(completions, "completions")?;
        let truths = sequence(ground_truths, "ground_truths")?;
        if completions.len() != truths.len() {
            return Err(PyValueError::new_err(format!(
                "completions and ground_truths differ in length ({} vs {})",
                completions.len(),
                truths.len()
            )));
        }
        let mut inputs = Vec::with_capacity(completions.len());
        for (i, c) in completions.iter().enumerate() {
            inputs.push(if verdict_mode {
                // The caller knows the row: the message names the argument.
                CompletionArg::read(c, Label::Arg("completion"))
                    .unwrap_or_else(|e| CompletionArg::Bad(e.to_string()))
            } else {
                CompletionArg::read(c, Label::Item("completions", i))?
            });
        }
        // One slot per distinct ground-truth object (`truths` keeps them
        // alive, so their addresses are stable keys).
        let label = |i: usize| {
            if verdict_mode {
                Label::Arg("ground_truth")
            } else {
                Label::Item("ground_truths", i)
            }
        };
        let mut slots: Vec<(usize, Result<TruthArg, String>)> = Vec::new();
        let mut slot_of = Vec::with_capacity(truths.len());
        let mut by_object: HashMap<usize, usize> = HashMap::new();
        for (i, t) in truths.iter().enumerate() {
            let slot = match by_object.entry(t.as_ptr() as usize) {
                std::collections::hash_map::Entry::Occupied(e) => *e.get(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let read = match self.read_truth(t, label(i)) {
                        Ok(arg) => Ok(arg),
                        Err(e) if verdict_mode => Err(e.to_string()),
                        Err(e) => return Err(e),
                    };
                    slots.push((i, read));
                    *e.insert(slots.len() - 1)
                }
            };
            slot_of.push(slot);
        }
        if inputs.is_empty() {
            // No pool is made for nothing (`threads` is checked by its type).
            return Ok(Vec::new());
        }
        let pool = pool(threads)?;
        // The inputs are borrowed by the workers, not moved: they are freed
        // afterwards on this thread (frees on the workers of memory
        // allocated here contend on the allocator and cost the parallelism).
        let scored: Result<Vec<toolgym_reward::Verdict>, String> = py.detach(|| {
            let work = || {
                // Each distinct ground truth is parsed once, by the first
                // worker that needs it, and freed on the workers too.
                let parsed: Vec<OnceLock<Result<Truth, String>>> =
                    slots.iter().map(|_| OnceLock::new()).collect();
                let verdicts = inputs
                    .par_iter()
                    .zip(slot_of.par_iter())
                    .map(|(c, &s)| {
                        let (first, arg) = &slots[s];
                        let truth = parsed[s].get_or_init(|| {
                            let arg = arg.as_ref().map_err(Clone::clone)?;
                            self.parse_truth(arg, label(*first))
                        });
                        match truth {
                            Ok(t) => Ok(self.judge_as(c, t, read_as)),
                            Err(e) if verdict_mode => {
                                Ok(toolgym_reward::Verdict::fail(Reason::InputError, e.clone()))
                            }
                            Err(e) => Err(e.clone()),
                        }
                    })
                    .collect::<Vec<_>>();
                parsed.into_par_iter().for_each(drop);
                // In input order, so the error raised is the first bad item's,
                // whatever the threads.
                verdicts.into_iter().collect::<Result<Vec<_>, String>>()
            };
            pool.install(work)
        });
        scored.map_err(PyValueError::new_err)
    }
}

/// How a completion is read ([`PyRule::read_as`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadAs {
    /// As given: from its last assistant header on, when it has one.
    Completion,
    /// A model's reply alone ([`toolgym_reward::reply_verdict`]).
    Reply,
    /// A multi-step episode.
    Episode,
}

/// The text of a completion argument, or the `input_error` verdict of
/// one that has none.
fn completion_text_of(
    completion: &CompletionArg,
) -> Result<std::borrow::Cow<'_, str>, toolgym_reward::Verdict> {
    match completion {
        CompletionArg::Text(t) => Ok(std::borrow::Cow::Borrowed(t.as_str())),
        CompletionArg::Json(v) => completion_text(v)
            .map_err(|e| toolgym_reward::Verdict::fail(Reason::InputError, e.to_string())),
        CompletionArg::Bad(why) => Err(toolgym_reward::Verdict::fail(
            Reason::InputError,
            why.clone(),
        )),
    }
}

#[pymethods]
impl PyRule {
    #[new]
    #[pyo3(signature = (name = "binary", **options))]
    fn new(name: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut opts = RuleOptions::default();
        for (key, value) in options.into_iter().flat_map(|d| d.iter()) {
            let key: String = key.extract()?;
            let flag = |v: &Bound<'_, PyAny>| -> PyResult<bool> {
                v.cast::<pyo3::types::PyBool>()
                    .map(|b| b.is_true())
                    .map_err(|_| PyTypeError::new_err(format!("option {key}= must be a bool")))
            };
            let number = |v: &Bound<'_, PyAny>| tolerance(v, &format!("option {key}"));
            match key.as_str() {
                "think" => opts.think = Some(flag(&value)?),
                "free_text" => opts.free_text = Some(flag(&value)?),
                "no_call_without_block" => opts.no_call_without_block = Some(flag(&value)?),
                "abs_tol" => opts.abs_tol = Some(number(&value)?),
                "rel_tol" => opts.rel_tol = Some(number(&value)?),
                other => {
                    return Err(PyTypeError::new_err(format!(
                        "Rule() got an unknown option {other:?}; options: think, free_text, \
                         no_call_without_block, abs_tol, rel_tol"
                    )))
                }
            }
        }
        Self::build(name, opts)
    }

    /// The rule's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Whether the rule scores multi-step episodes (`episode=True`): the
    /// `binary` and `fine-grained` families do, the `tool-n1` and `bfcl-*`
    /// rules score one reply.
    #[getter]
    fn scores_episodes(&self) -> bool {
        self.episodes
    }

    /// Scores one completion against its ground truth.
    ///
    /// `episode=True` scores a list of messages as one multi-step episode:
    /// every assistant message is a reply (tool results between them are
    /// skipped), each reply that calls must be well formed, the last may
    /// answer without a call, and the calls of all replies together must
    /// match the ground truth, order-free. A string is split at its ChatML
    /// turn headers (`<|im_start|>assistant\n`: a multi-turn response
    /// decoded with its special tokens kept, as verl's tool loop lays it
    /// out; pass the response, not the prompt); a string without headers
    /// or one message is an episode of one reply, scored as without
    /// `episode`. Rules without episode semantics (`tool-n1*`, `bfcl-*`)
    /// raise `ValueError`.
    ///
    /// `reply=True` reads the completion as a model's reply alone (what
    /// verl's reward managers and TRL pass: the generated text, never the
    /// prompt): for the binary and fine-grained families an assistant turn
    /// header in it is text, a format error, so a reply cannot hide a
    /// wrong call before a header it wrote itself. Without it the text is
    /// read from its last assistant header on (a prompt and its
    /// completion together, as the released verl passed them). Only the
    /// binary and fine-grained families read a reply otherwise: the
    /// `tool-n1*` rules read from the last header either way, as the
    /// released script does, and the `bfcl-*` rules judge the calls as
    /// BFCL's checker does, headers or not.
    #[pyo3(signature = (completion, ground_truth, episode = false, reply = false))]
    fn score(
        &self,
        completion: &Bound<'_, PyAny>,
        ground_truth: &Bound<'_, PyAny>,
        episode: bool,
        reply: bool,
    ) -> PyResult<PyVerdict> {
        let read_as = self.read_as(episode, reply)?;
        let c = CompletionArg::read(completion, Label::Arg("completion"))?;
        let t = self.read_truth(ground_truth, Label::Arg("ground_truth"))?;
        // Parsed and scored without the GIL: engines that score rows on
        // threads (verl 0.9's reward loop) score them at once.
        let verdict = completion.py().detach(|| {
            let truth = self.truth_of(&t)?;
            Ok::<_, String>(self.judge_as(&c, &truth, read_as))
        });
        Ok(verdict.map_err(PyValueError::new_err)?.into())
    }

    /// Scores completions against their ground truths (two sequences of the
    /// same length) in parallel, without the GIL; verdicts in input order.
    /// `threads`: worker threads (default: all cores). `errors`: what an
    /// item that cannot be read (a ground truth that is not a list of
    /// calls, a completion of another type) does: `"raise"` (default) a
    /// `ValueError` / `TypeError` naming the first such item, `"verdict"`
    /// an `input_error` verdict (reward 0) for that item alone. `episode`,
    /// `reply`: as for `score`.
    #[pyo3(signature = (completions, ground_truths, threads = None, errors = "raise", episode = false, reply = false))]
    #[allow(clippy::too_many_arguments)]
    fn score_batch(
        &self,
        py: Python<'_>,
        completions: &Bound<'_, PyAny>,
        ground_truths: &Bound<'_, PyAny>,
        threads: Option<Threads>,
        errors: &str,
        episode: bool,
        reply: bool,
    ) -> PyResult<Vec<PyVerdict>> {
        let read_as = self.read_as(episode, reply)?;
        let verdicts =
            self.score_pairs(py, completions, ground_truths, threads, errors, read_as)?;
        Ok(verdicts.into_iter().map(PyVerdict::from).collect())
    }

    /// Like `score_batch`, the rewards only.
    #[pyo3(signature = (completions, ground_truths, threads = None, errors = "raise", episode = false, reply = false))]
    #[allow(clippy::too_many_arguments)]
    fn rewards(
        &self,
        py: Python<'_>,
        completions: &Bound<'_, PyAny>,
        ground_truths: &Bound<'_, PyAny>,
        threads: Option<Threads>,
        errors: &str,
        episode: bool,
        reply: bool,
    ) -> PyResult<Vec<f64>> {
        let read_as = self.read_as(episode, reply)?;
        let verdicts =
            self.score_pairs(py, completions, ground_truths, threads, errors, read_as)?;
        // With errors="verdict" an unreadable item is a 0 like a wrong
        // answer: without its reason, say how many there were.
        let unread: Vec<usize> = (0..verdicts.len())
            .filter(|&i| verdicts[i].reason == Reason::InputError)
            .collect();
        if let Some(&first) = unread.first() {
            crate::tasks::warn(
                py,
                &format!(
                    "rewards: {} of {} item(s) could not be read and score 0 (item {first}: {}); \
                     score_batch gives each one's reason",
                    unread.len(),
                    verdicts.len(),
                    verdicts[first].detail
                ),
            )?;
        }
        Ok(verdicts.into_iter().map(|v| v.reward).collect())
    }

    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<((String,), Bound<'py, PyDict>)> {
        let kwargs = PyDict::new(py);
        let o = &self.options;
        for (k, v) in [
            ("think", o.think),
            ("free_text", o.free_text),
            ("no_call_without_block", o.no_call_without_block),
        ] {
            if let Some(v) = v {
                kwargs.set_item(k, v)?;
            }
        }
        for (k, v) in [("abs_tol", o.abs_tol), ("rel_tol", o.rel_tol)] {
            if let Some(v) = v {
                kwargs.set_item(k, v)?;
            }
        }
        Ok(((self.name.clone(),), kwargs))
    }

    /// Rules are equal when their names and options are: they score alike.
    fn __eq__(&self, other: PyRef<'_, Self>) -> bool {
        self.name == other.name && self.options == other.options
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let o = &self.options;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.name.hash(&mut h);
        (o.think, o.free_text, o.no_call_without_block).hash(&mut h);
        // Equal options have equal bits: tolerances are finite and not
        // negative, and 0.0 is the only zero a `-0.0` check would need.
        for t in [o.abs_tol, o.rel_tol] {
            t.map(|v| (v + 0.0).to_bits()).hash(&mut h);
        }
        h.finish()
    }

    fn __repr__(&self) -> String {
        let o = &self.options;
        let mut out = format!("Rule({:?}", self.name);
        let py_bool = |b: bool| if b { "True" } else { "False" };
        for (k, v) in [
            ("think", o.think),
            ("free_text", o.free_text),
            ("no_call_without_block", o.no_call_without_block),
        ] {
            if let Some(v) = v {
                out.push_str(&format!(", {k}={}", py_bool(v)));
            }
        }
        for (k, v) in [("abs_tol", o.abs_tol), ("rel_tol", o.rel_tol)] {
            if let Some(v) = v {
                out.push_str(&format!(", {k}={v:?}"));
            }
        }
        out.push(')');
        out
    }
}

/// Warns, once in the process, when a ground truth given as Python
/// objects (not JSON text) has a call with an argument of `None`: a parquet
/// or `datasets` column of call dicts is stored by Arrow with every row's
/// argument keys merged, the ones a row lacks filled with `None`, and such
/// a ground truth matches no reply (the keys differ), so right answers
/// score 0 without a word.
fn warn_null_arguments(py: Python<'_>, truth: &Value) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let calls = match truth {
        Value::Array(calls) => calls.as_slice(),
        one => std::slice::from_ref(one),
    };
    let null = calls.iter().find_map(|c| {
        let args = c.get("arguments")?.as_object()?;
        let (key, _) = args.iter().find(|(_, v)| v.is_null())?;
        Some((
            c.get("name")?.as_str().unwrap_or("?").to_string(),
            key.clone(),
        ))
    });
    let Some((name, key)) = null else {
        return;
    };
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let _ = crate::tasks::warn(
        py,
        &format!(
            "a ground truth's call {name:?} has the argument {key:?} = None: if the ground \
             truths come from a parquet or datasets column of call dicts, Arrow filled the \
             argument keys a row lacks with None, and right answers then score 0 (keep ground \
             truths as JSON text, as toolgym.verl.rows does). Said once."
        ),
    );
}

/// The items of a sequence argument, or a `TypeError` naming it.
fn sequence<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    use pyo3::types::{PyByteArray, PyBytes, PyFrozenSet, PySet};
    // Text and dicts iterate as characters and keys; a set in no order
    // (paired with the wrong ground truths when the lengths match), bytes
    // as integers, a data frame as its column names.
    let frame = obj.get_type().name().is_ok_and(|n| n == "DataFrame");
    if obj.cast::<PyString>().is_ok()
        || obj.cast::<PyDict>().is_ok()
        || obj.cast::<PySet>().is_ok()
        || obj.cast::<PyFrozenSet>().is_ok()
        || obj.cast::<PyBytes>().is_ok()
        || obj.cast::<PyByteArray>().is_ok()
        || frame
    {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a sequence (list, tuple, …), not {}",
            convert::type_name(obj)
        )));
    }
    obj.try_iter()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be a sequence, not {}",
                convert::type_name(obj)
            ))
        })?
        .collect()
}

/// A `threads` argument: `None` or 0 (all cores), or a count of threads
/// up to [`toolgym_reward::jsonl::MAX_THREADS`]; anything else (a negative
/// or huge int, another type) is an error naming `threads`.
pub struct Threads(usize);

impl<'a, 'py> FromPyObject<'a, 'py> for Threads {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        // An int, or an integer type of another library (numpy's): what
        // `__index__` reads. Not a bool, nor a float (3.9 would truncate).
        if obj.cast::<PyBool>().is_ok() || !obj.hasattr("__index__")? {
            return Err(PyTypeError::new_err(format!(
                "threads must be None or an int, not {}",
                convert::type_name(&obj)
            )));
        }
        let max = toolgym_reward::jsonl::MAX_THREADS;
        match obj
            .extract::<i64>()
            .ok()
            .and_then(|n| usize::try_from(n).ok())
        {
            Some(n) if n <= max => Ok(Self(n)),
            // Each is an OS thread started at once: a million would take
            // the machine down before the first item is scored.
            Some(n) => Err(PyValueError::new_err(format!(
                "threads={n}: at most {max} (more threads than cores do not score faster)"
            ))),
            None => Err(PyValueError::new_err(format!(
                "threads={}: must be None or 0 (all cores), or a count of threads up to {max}",
                &*obj
            ))),
        }
    }
}

/// A rayon pool of `threads` workers (`None` or 0: rayon's default, one
/// per CPU or `RAYON_NUM_THREADS`), cached.
///
/// Never rayon's global pool, and never a pool made before a `fork`: a
/// child process has none of its parent's threads, so waiting on a pool
/// the parent made never returns (a `multiprocessing` or
/// `datasets.map(num_proc=…)` worker would hang). The cache is per
/// process, and holds a few pools at most (each `threads` value would
/// otherwise keep its threads for good).
fn pool(threads: Option<Threads>) -> PyResult<Arc<rayon::ThreadPool>> {
    /// Pools kept: the most recently used.
    const KEPT: usize = 4;
    struct Pools {
        pid: u32,
        /// Most recently used last.
        pools: Vec<(usize, Arc<rayon::ThreadPool>)>,
    }
    static POOLS: Mutex<Option<Pools>> = Mutex::new(None);
    // 0 lets rayon choose (it reads RAYON_NUM_THREADS).
    let n = threads.map_or(0, |t| t.0);
    let pid = std::process::id();
    let mut guard = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(stale) = guard.take_if(|p| p.pid != pid) {
        // Made by the parent before a fork: their threads are not in this
        // process, and dropping them would wait on nothing. Leaked.
        std::mem::forget(stale.pools);
    }
    let cache = guard.get_or_insert_with(|| Pools {
        pid,
        pools: Vec::new(),
    });
    if let Some(i) = cache.pools.iter().position(|(k, _)| *k == n) {
        let hit = cache.pools.remove(i);
        cache.pools.push(hit.clone());
        return Ok(hit.1);
    }
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("toolgym-score-{i}"))
            .build()
            .map_err(|e| PyValueError::new_err(format!("threads={n}: {e}")))?,
    );
    if cache.pools.len() >= KEPT {
        // Its threads end once no call is using it.
        cache.pools.remove(0);
    }
    cache.pools.push((n, p.clone()));
    Ok(p)
}
