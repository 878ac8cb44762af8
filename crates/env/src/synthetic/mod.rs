//! The built-in synthetic environment: procedurally generated tool-calling
//! tasks with known answers, so training runs with nothing downloaded.
//!
//! Eight tool families (weather, arithmetic, units, calendar, search,
//! finance, messaging, language; 15 tools, see [`families`]) with short
//! queries such as `Add 3 and 5.` or `Weather in Oslo for the next 2
//! days?`. Tasks are single calls, parallel calls (several requests in one
//! query) or no-call tasks (the requested tool is not offered; the answer
//! is `[]`), among distractor tools.
//!
//! Everything is a pure function of the config and the task index, so a
//! seed reproduces every task. The validation split is held out twice:
//! it uses query templates that training never uses and argument values
//! (cities, numbers, …) that training never uses, so validation accuracy
//! measures generalisation, not memorisation. Difficulty is tunable with
//! [`SyntheticConfig`]; [`SyntheticConfig::tiny`] is the default demo's.
//!
//! ```
//! use toolgym_env::synthetic::{Split, SyntheticConfig, SyntheticTasks};
//! use toolgym_env::TaskSource;
//! let gen = SyntheticTasks::new(SyntheticConfig::tiny(7)).unwrap();
//! let train = gen.split(Split::Train);
//! let t = train.get(0).unwrap();
//! assert_eq!(t, gen.split(Split::Train).get(0).unwrap());   // deterministic
//! assert!(t.query().is_some());
//! let val = gen.dataset(Split::Validation, 50);              // deduplicated
//! assert_eq!(val.size(), 50);
//! ```

pub mod families;

use crate::message::Message;
use crate::registry::ToolRegistry;
use crate::rng::{fnv1a, mix, Rng};
use crate::source::{Dataset, TaskSource};
use crate::task::Task;
use crate::template::ChatTemplate;
use crate::tool::{ToolError, ToolSpec};
use families::{ParamDef, ToolDef, Values, TOOLS};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use toolgym_reward::Call;

/// The `source` of synthetic tasks.
pub const SOURCE: &str = "synthetic";

/// Which split to draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training templates and values.
    Train,
    /// Held-out templates and values.
    Validation,
}

impl Split {
    /// `train` or `validation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
        }
    }
}

/// The knobs of the synthetic environment.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    /// Seed of everything: the held-out sets and every task.
    pub seed: u64,
    /// Families to use (names from [`families::family_names`]); empty: all.
    pub families: Vec<String>,
    /// Extra tools offered besides the needed ones: uniform in this
    /// inclusive range (fewer if not enough tools exist).
    pub distractors: (usize, usize),
    /// Share of tasks with several calls in one query.
    pub parallel_share: f64,
    /// Most calls in a parallel task (at least 2).
    pub max_parallel: usize,
    /// Share of tasks whose requested tool is not offered (answer: no call).
    pub no_call_share: f64,
    /// Keep only the first `n` words of each vocabulary (smaller is easier).
    pub vocab_limit: Option<usize>,
    /// Free numbers (operands, amounts) are drawn from `1..=number_max`
    /// (4 to [`MAX_NUMBER`]).
    pub number_max: i64,
    /// Share of each tool's query templates held out for validation (at
    /// least one when positive and the tool has two or more; training keeps
    /// every parameter covered).
    pub template_holdout: f64,
    /// Share of each vocabulary (and number range) held out for validation.
    pub value_holdout: f64,
    /// How validation tasks are held out: by template and values at once
    /// (the default), or by one of the two, chosen per task.
    pub validation_holdout: Holdout,
}

/// How validation tasks differ from training tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Holdout {
    /// A held-out query template filled with held-out values.
    #[default]
    Both,
    /// Per task, at random: a held-out template with training values, or a
    /// training template with held-out values. Every task is still new in
    /// one way; each way can be learned separately.
    Either,
    /// In distribution: training templates and values, but only queries
    /// that training never produces (one query in [`RESERVED_ONE_IN`], by
    /// hash, is reserved for validation and skipped by the training split).
    /// Measures learning on unseen tasks without asking for generalisation
    /// to new phrasings or values.
    Tasks,
}

/// Under [`Holdout::Tasks`], one query in this many is reserved for validation.
pub const RESERVED_ONE_IN: u64 = 8;

/// Whether a query is reserved for validation under [`Holdout::Tasks`].
pub fn is_reserved_query(query: &str) -> bool {
    fnv1a(query).is_multiple_of(RESERVED_ONE_IN)
}

impl SyntheticConfig {
    /// The default demo's setting for a tiny model: four families, at most
    /// one distractor, 15% parallel, 10% no-call, numbers up to 20, eight
    /// words per vocabulary, a quarter of templates and a fifth of values
    /// held out.
    pub fn tiny(seed: u64) -> Self {
        Self {
            seed,
            families: ["weather", "arithmetic", "units", "calendar"]
                .map(String::from)
                .to_vec(),
            distractors: (0, 1),
            parallel_share: 0.15,
            max_parallel: 2,
            no_call_share: 0.1,
            vocab_limit: Some(8),
            number_max: 20,
            template_holdout: 0.25,
            value_holdout: 0.2,
            validation_holdout: Holdout::Both,
        }
    }

    /// All families, one to three distractors, numbers up to 100.
    pub fn standard(seed: u64) -> Self {
        Self {
            seed,
            families: Vec::new(),
            distractors: (1, 3),
            parallel_share: 0.2,
            max_parallel: 2,
            no_call_share: 0.1,
            vocab_limit: None,
            number_max: 100,
            template_holdout: 0.25,
            value_holdout: 0.2,
            validation_holdout: Holdout::Both,
        }
    }

    /// All families, three to five distractors, up to three parallel calls,
    /// numbers up to 1000.
    pub fn hard(seed: u64) -> Self {
        Self {
            distractors: (3, 5),
            parallel_share: 0.3,
            max_parallel: 3,
            no_call_share: 0.15,
            number_max: 1000,
            ..Self::standard(seed)
        }
    }
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self::standard(0)
    }
}

/// Which parts of a task come from the held-out sets.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    template: bool,
    values: bool,
}

/// A config that cannot generate tasks.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A family name is unknown.
    #[error("unknown family {name:?}; known: {known}")]
    UnknownFamily {
        /// The name.
        name: String,
        /// The known names.
        known: String,
    },
    /// A share is outside `[0, 1]` or the shares add up to more than 1.
    #[error("invalid {0}: shares must be in [0, 1] and parallel + no-call at most 1")]
    Share(&'static str),
    /// `number_max` is below the minimum the holdout needs, or above the
    /// numbers listed for the train/held-out split.
    #[error("number_max must be from 4 to {MAX_NUMBER}, got {0}")]
    NumberMax(i64),
    /// `vocab_limit` leaves fewer words than the split needs (one for
    /// training, one held out).
    #[error("vocab_limit must be at least 2, got {0}")]
    VocabLimit(usize),
    /// The distractor range is reversed.
    #[error("distractors: min {0} > max {1}")]
    Distractors(usize, usize),
    /// `max_parallel` is below 2 while parallel tasks are asked for, or
    /// above [`MAX_PARALLEL`].
    #[error("max_parallel must be from 2 to {MAX_PARALLEL} when parallel_share > 0, got {0}")]
    MaxParallel(usize),
}

/// The most calls a parallel task may ask for (`max_parallel`).
pub const MAX_PARALLEL: usize = 64;

/// The largest `number_max`: the numbers are listed once to split them
/// into train and held-out values.
pub const MAX_NUMBER: i64 = 100_000;

/// One tool with its template split.
#[derive(Clone, Debug)]
struct ToolPlan {
    def: ToolDef,
    spec: ToolSpec,
    train_templates: Vec<&'static str>,
    val_templates: Vec<&'static str>,
}

/// The generator: the config, the held-out sets, and the tools.
#[derive(Clone, Debug)]
pub struct SyntheticTasks {
    config: SyntheticConfig,
    tools: Vec<ToolPlan>,
    /// Vocabulary name → (train values, validation values).
    values: BTreeMap<String, (Vec<Value>, Vec<Value>)>,
}

impl SyntheticTasks {
    /// Checks the config and computes the held-out sets.
    pub fn new(config: SyntheticConfig) -> Result<Self, ConfigError> {
        let known = families::family_names();
        for f in &config.families {
            if !known.contains(&f.as_str()) {
                return Err(ConfigError::UnknownFamily {
                    name: f.clone(),
                    known: known.join(", "),
                });
            }
        }
        for (name, v) in [
            ("parallel_share", config.parallel_share),
            ("no_call_share", config.no_call_share),
            ("template_holdout", config.template_holdout),
            ("value_holdout", config.value_holdout),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ConfigError::Share(name));
            }
        }
        if config.parallel_share + config.no_call_share > 1.0 {
            return Err(ConfigError::Share("parallel_share + no_call_share"));
        }
        if !(4..=MAX_NUMBER).contains(&config.number_max) {
            return Err(ConfigError::NumberMax(config.number_max));
        }
        if let Some(n @ 0..2) = config.vocab_limit {
            return Err(ConfigError::VocabLimit(n));
        }
        if config.parallel_share > 0.0 && !(2..=MAX_PARALLEL).contains(&config.max_parallel) {
            return Err(ConfigError::MaxParallel(config.max_parallel));
        }
        if config.distractors.0 > config.distractors.1 {
            return Err(ConfigError::Distractors(
                config.distractors.0,
                config.distractors.1,
            ));
        }
        let defs: Vec<ToolDef> = TOOLS
            .iter()
            .filter(|t| config.families.is_empty() || config.families.iter().any(|f| f == t.family))
            .copied()
            .collect();
        let tools = defs
            .iter()
            .map(|d| {
                let (train_templates, val_templates) = split_templates(d, &config);
                ToolPlan {
                    def: *d,
                    spec: spec_of(d, &config),
                    train_templates,
                    val_templates,
                }
            })
            .collect();
        let values = split_values(&defs, &config);
        Ok(Self {
            config,
            tools,
            values,
        })
    }

    /// The config.
    pub fn config(&self) -> &SyntheticConfig {
        &self.config
    }

    /// The specs of every tool in use.
    pub fn tool_specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec.clone()).collect()
    }

    /// The held-out (validation) values of each vocabulary, as JSON.
    pub fn held_out_values(&self) -> BTreeMap<String, Vec<Value>> {
        self.values
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }

    /// The training values of each vocabulary, as JSON.
    pub fn train_values(&self) -> BTreeMap<String, Vec<Value>> {
        self.values
            .iter()
            .map(|(k, (t, _))| (k.clone(), t.clone()))
            .collect()
    }

    /// The query templates of a split, per tool.
    pub fn templates(&self, split: Split) -> BTreeMap<&'static str, Vec<&'static str>> {
        self.tools
            .iter()
            .map(|t| {
                let ts = match split {
                    Split::Train => t.train_templates.clone(),
                    Split::Validation => t.val_templates.clone(),
                };
                (t.def.name, ts)
            })
            .collect()
    }

    /// A [`TaskSource`] (an unbounded generator) over one split.
    pub fn split(&self, split: Split) -> SyntheticSplit {
        SyntheticSplit {
            tasks: Arc::new(self.clone()),
            split,
            name: format!("{SOURCE}-{}", split.as_str()),
        }
    }

    /// The first `n` distinct tasks of a split (tasks with the same query
    /// and tools are skipped), as a finite dataset — e.g. a fixed validation
    /// set. Gives fewer if the split has fewer distinct tasks.
    pub fn dataset(&self, split: Split, n: usize) -> Dataset {
        let mut seen = HashSet::new();
        let mut tasks = Vec::with_capacity(n.min(1 << 16));
        let mut index = 0u64;
        let budget = (n as u64).saturating_mul(50).max(1000);
        while tasks.len() < n && index < budget {
            let t = self.task(split, index);
            index += 1;
            let names: Vec<&str> = t.tools.iter().map(|s| s.name.as_str()).collect();
            if seen.insert(format!("{}|{}", t.query().unwrap_or(""), names.join(","))) {
                tasks.push(t);
            }
        }
        Dataset::new(format!("{SOURCE}-{}", split.as_str()), tasks)
    }

    /// Texts for training a tokenizer: `n` training tasks rendered as
    /// prompt + canonical reply (SFT target) with `template`.
    pub fn tokenizer_corpus(&self, template: &dyn ChatTemplate, n: usize) -> Vec<String> {
        (0..n as u64)
            .map(|i| {
                let t = self.task(Split::Train, i);
                let mut s = template.prompt(&t);
                s.push_str(&template.target(&t));
                s
            })
            .collect()
    }

    /// The task at `index` of a split: a pure function of the config, the
    /// split and the index.
    pub fn task(&self, split: Split, index: u64) -> Task {
        if self.config.validation_holdout != Holdout::Tasks {
            return self.draw(split, index, 0);
        }
        // Redraw until the query falls on its split's side of the hash.
        let want = split == Split::Validation;
        for attempt in 0..512 {
            let t = self.draw(split, index, attempt);
            if is_reserved_query(t.query().unwrap_or("")) == want {
                return t;
            }
        }
        // (7/8)^512: unreachable in practice; keep the function total.
        self.draw(split, index, 0)
    }

    /// One random task of a split (attempt 0 is the task of `index`).
    fn draw(&self, split: Split, index: u64, attempt: u64) -> Task {
        let stream = match split {
            Split::Train => 1,
            Split::Validation => 2,
        };
        let mut seed = mix(mix(self.config.seed, stream), index);
        if attempt > 0 {
            seed = mix(seed, attempt);
        }
        let mut rng = Rng::new(seed);
        let c = &self.config;
        let hold = match (split, c.validation_holdout) {
            (Split::Train, _) => Held::default(),
            (Split::Validation, Holdout::Both) => Held {
                template: true,
                values: true,
            },
            (Split::Validation, Holdout::Tasks) => Held::default(),
            (Split::Validation, Holdout::Either) => {
                let template = rng.chance(0.5);
                Held {
                    template,
                    values: !template,
                }
            }
        };
        let roll = rng.next_f64();
        let kind_calls = if roll < c.no_call_share {
            0
        } else if roll < c.no_call_share + c.parallel_share && self.tools.len() > 1 {
            2 + rng.below(c.max_parallel.max(2) - 1)
        } else {
            1
        };
        let n_tools = self.tools.len();
        let mut queries = Vec::new();
        let mut calls = Vec::new();
        let mut needed: Vec<usize> = Vec::new();
        let mut excluded: Vec<usize> = Vec::new();
        if kind_calls == 0 {
            let asked = rng.below(n_tools);
            let (q, _) = self.fill(asked, hold, &mut rng);
            queries.push(q);
            excluded.push(asked);
        } else {
            let mut attempts = 0;
            while calls.len() < kind_calls && attempts < 20 {
                attempts += 1;
                let tool = rng.below(n_tools);
                let (q, call) = self.fill(tool, hold, &mut rng);
                if calls.contains(&call) {
                    continue;
                }
                queries.push(q);
                calls.push(call);
                if !needed.contains(&tool) {
                    needed.push(tool);
                }
            }
        }
        // Distractors: other tools, never the excluded (requested) one.
        let mut pool: Vec<usize> = (0..n_tools)
            .filter(|i| !needed.contains(i) && !excluded.contains(i))
            .collect();
        rng.shuffle(&mut pool);
        let (lo, hi) = c.distractors;
        let mut d = lo + rng.below(hi - lo + 1);
        if needed.is_empty() {
            d = d.max(1);
        }
        let mut offered: Vec<usize> = needed.clone();
        offered.extend(pool.into_iter().take(d));
        rng.shuffle(&mut offered);
        let tools = offered
            .iter()
            .map(|&i| self.tools[i].spec.clone())
            .collect();
        let mut task = Task::new(
            format!("{SOURCE}-{}-{index}", split.as_str()),
            SOURCE,
            tools,
            vec![Message::user(queries.join(" "))],
            calls,
        );
        task.meta.insert("split".into(), json!(split.as_str()));
        task
    }

    /// A query for tool `i` and its call, with held-out templates and/or
    /// values as `hold` says.
    fn fill(&self, i: usize, hold: Held, rng: &mut Rng) -> (String, Call) {
        let plan = &self.tools[i];
        let templates = if hold.template && !plan.val_templates.is_empty() {
            &plan.val_templates
        } else {
            &plan.train_templates
        };
        let template = rng.choose(templates).copied().unwrap_or("");
        let mut args = Map::new();
        let mut used: Vec<Value> = Vec::new();
        for param in plan.def.params {
            if !template.contains(&format!("{{{}}}", param.name)) {
                continue;
            }
            let (train, val) = match self.values.get(vocab_name(param)) {
                Some(v) => v,
                None => continue,
            };
            let pool = if hold.values && !val.is_empty() {
                val
            } else {
                train
            };
            // Distinct values for slots sharing a vocabulary (from/to units).
            let fresh: Vec<&Value> = pool.iter().filter(|v| !used.contains(v)).collect();
            let value = rng
                .choose(&fresh)
                .map(|v| (*v).clone())
                .or_else(|| rng.choose(pool).cloned())
                .unwrap_or(Value::Null);
            used.push(value.clone());
            args.insert(param.name.to_string(), value);
        }
        // Arguments by name, as the tools list their parameters.
        args.sort_keys();
        let mut query = template.to_string();
        for (k, v) in &args {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            query = query.replace(&format!("{{{k}}}"), &text);
        }
        (
            query,
            Call {
                name: plan.def.name.to_string(),
                arguments: args,
            },
        )
    }
}

/// The vocabulary a parameter draws from (shared by name across tools).
fn vocab_name(p: &ParamDef) -> &'static str {
    match p.values {
        Values::Words(name, _) => name,
        Values::Numbers => "numbers",
        Values::Ints(..) => p.name,
    }
}

/// A tool's spec, its parameters listed by name (the order the demo's
/// figures were measured with; maps keep the order they are written in),
/// `required` in the order the tool declares them.
fn spec_of(d: &ToolDef, config: &SyntheticConfig) -> ToolSpec {
    let mut b = ToolSpec::builder(d.name, d.description);
    let mut params: Vec<&ParamDef> = d.params.iter().collect();
    params.sort_by_key(|p| p.name);
    for p in params {
        let mut schema = json!({"type": p.json_type});
        if p.is_enum {
            if let Values::Words(_, words) = p.values {
                schema["enum"] = json!(limit(words, config));
            }
        }
        b = b.param(p.name, schema, p.required);
    }
    let mut spec = b.build();
    if let Some(required) = spec.parameters.get_mut("required") {
        let declared = d.params.iter().filter(|p| p.required).map(|p| p.name);
        *required = json!(declared.collect::<Vec<_>>());
    }
    spec
}

fn limit<'a>(words: &'a [&'static str], config: &SyntheticConfig) -> &'a [&'static str] {
    // At least 2 (checked by `SyntheticTasks::new`).
    let n = config.vocab_limit.unwrap_or(words.len()).min(words.len());
    &words[..n]
}

/// Holds out a share of a tool's templates, keeping every parameter that
/// any template sets covered by the training templates.
fn split_templates(
    d: &ToolDef,
    config: &SyntheticConfig,
) -> (Vec<&'static str>, Vec<&'static str>) {
    let n = d.templates.len();
    let want = if config.template_holdout > 0.0 && n >= 2 {
        ((config.template_holdout * n as f64).round() as usize).clamp(1, n - 1)
    } else {
        0
    };
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(mix(config.seed ^ fnv1a(d.name), 11)).shuffle(&mut order);
    let slots = |t: &str| -> Vec<&str> {
        d.params
            .iter()
            .filter(|p| t.contains(&format!("{{{}}}", p.name)))
            .map(|p| p.name)
            .collect()
    };
    let all: HashSet<&str> = d.templates.iter().flat_map(|t| slots(t)).collect();
    let mut held = HashSet::new();
    for i in order {
        if held.len() == want {
            break;
        }
        let covered: HashSet<&str> = (0..n)
            .filter(|j| *j != i && !held.contains(j))
            .flat_map(|j| slots(d.templates[j]))
            .collect();
        if covered == all {
            held.insert(i);
        }
    }
    let mut train = Vec::new();
    let mut val = Vec::new();
    for (i, t) in d.templates.iter().enumerate() {
        if held.contains(&i) {
            val.push(*t);
        } else {
            train.push(*t);
        }
    }
    (train, val)
}

/// Splits every vocabulary (and number range) into train and held-out
/// values; a vocabulary used twice in one call keeps two values on each
/// side.
fn split_values(
    defs: &[ToolDef],
    config: &SyntheticConfig,
) -> BTreeMap<String, (Vec<Value>, Vec<Value>)> {
    let mut out = BTreeMap::new();
    for d in defs {
        for p in d.params {
            let name = vocab_name(p);
            if out.contains_key(name) {
                continue;
            }
            let values: Vec<Value> = match p.values {
                Values::Words(_, words) => limit(words, config).iter().map(|w| json!(w)).collect(),
                Values::Ints(lo, hi) => (lo..=hi).map(|n| json!(n)).collect(),
                Values::Numbers => (1..=config.number_max).map(|n| json!(n)).collect(),
            };
            let per_call = defs
                .iter()
                .map(|t| t.params.iter().filter(|q| vocab_name(q) == name).count())
                .max()
                .unwrap_or(1);
            let n = values.len();
            let want = if config.value_holdout > 0.0 && n >= 2 * per_call {
                ((config.value_holdout * n as f64).round() as usize).clamp(per_call, n - per_call)
            } else {
                0
            };
            let mut order: Vec<usize> = (0..n).collect();
            Rng::new(mix(config.seed ^ fnv1a(name), 13)).shuffle(&mut order);
            let held: HashSet<usize> = order.into_iter().take(want).collect();
            let (mut train, mut val) = (Vec::new(), Vec::new());
            for (i, v) in values.into_iter().enumerate() {
                if held.contains(&i) {
                    val.push(v);
                } else {
                    train.push(v);
                }
            }
            out.insert(name.to_string(), (train, val));
        }
    }
    out
}

/// One split of a [`SyntheticTasks`] generator as a [`TaskSource`]
/// (unbounded; `get(i)` is the `i`-th task of the split).
#[derive(Clone, Debug)]
pub struct SyntheticSplit {
    tasks: Arc<SyntheticTasks>,
    split: Split,
    name: String,
}

impl SyntheticSplit {
    /// The split.
    pub fn which(&self) -> Split {
        self.split
    }
}

impl TaskSource for SyntheticSplit {
    fn name(&self) -> &str {
        &self.name
    }

    fn len(&self) -> Option<usize> {
        None
    }

    fn get(&self, index: u64) -> Option<Arc<Task>> {
        Some(Arc::new(self.tasks.task(self.split, index)))
    }
}

/// A registry that executes every built-in tool with deterministic fake
/// results (weather from a hash of the city, real arithmetic, unit and
/// currency conversion with fixed factors, an in-memory calendar kept in
/// the episode state), for multi-turn episodes over synthetic tasks.
pub fn registry() -> ToolRegistry<SyntheticState> {
    let mut reg = ToolRegistry::new();
    for def in TOOLS {
        let spec = spec_of(
            def,
            &SyntheticConfig {
                vocab_limit: None,
                ..SyntheticConfig::default()
            },
        );
        let name = def.name;
        // Names are unique in TOOLS and the specs are valid, so this cannot
        // fail; a failure would only skip the tool.
        let _ = reg.register_stateful(spec, move |args: &Value, state: &mut SyntheticState| {
            run(name, args, state)
        });
    }
    reg
}

/// The state of a synthetic multi-turn episode: the calendar.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyntheticState {
    /// Events created, as `(date, title, time)`.
    pub events: Vec<(String, String, Option<String>)>,
}

/// `f` as an `i64` when it is a whole number in range.
fn whole_i64(f: f64) -> Option<i64> {
    // Exact: the bound is a power of two.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f)).then_some(f as i64)
}

fn run(name: &str, a: &Value, state: &mut SyntheticState) -> Result<Value, ToolError> {
    let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let n = |k: &str| a.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    // JSON Schema's "integer" takes `30.0` as well as `30` (as_i64 reads
    // only the latter: the model's `2.0 + 3.0` would have added to 0).
    let int = |k: &str| -> Result<Option<i64>, ToolError> {
        match a.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| whole_i64(v.as_f64()?))
                .map(Some)
                .ok_or_else(|| ToolError::failed(format!("{k} = {v} is not a 64-bit integer"))),
        }
    };
    let i = |k: &str| Ok::<_, ToolError>(int(k)?.unwrap_or(0));
    let h = |k: &str| fnv1a(&s(k));
    Ok(match name {
        "get_weather" => {
            let days = int("days")?.unwrap_or(1).clamp(1, 14);
            let temps: Vec<i64> = (0..days)
                .map(|d| (mix(h("city"), d as u64) % 35) as i64 - 5)
                .collect();
            json!({"city": s("city"), "temperatures_c": temps})
        }
        "get_air_quality" => json!({"city": s("city"), "aqi": h("city") % 200}),
        "add" => json!(i("a")?
            .checked_add(i("b")?)
            .ok_or_else(|| ToolError::failed("overflow"))?),
        "multiply" => json!(i("a")?
            .checked_mul(i("b")?)
            .ok_or_else(|| ToolError::failed("overflow"))?),
        "convert_units" => {
            let factor = |u: &str| match u {
                "km" => Some(("length", 1000.0)),
                "miles" => Some(("length", 1609.344)),
                "meters" => Some(("length", 1.0)),
                "feet" => Some(("length", 0.3048)),
                "kg" => Some(("mass", 1.0)),
                "pounds" => Some(("mass", 0.453_592_37)),
                "liters" => Some(("volume", 1.0)),
                "cups" => Some(("volume", 0.236_588)),
                _ => None,
            };
            match (factor(&s("from_unit")), factor(&s("to_unit"))) {
                (Some((d1, f1)), Some((d2, f2))) if d1 == d2 => {
                    json!({"value": (n("value") * f1 / f2 * 1000.0).round() / 1000.0, "unit": s("to_unit")})
                }
                _ => {
                    return Err(ToolError::failed(format!(
                        "cannot convert {} to {}",
                        s("from_unit"),
                        s("to_unit")
                    )))
                }
            }
        }
        "convert_currency" => {
            let rate = (mix(fnv1a(&s("from_currency")), fnv1a(&s("to_currency"))) % 2000) as f64
                / 1000.0
                + 0.1;
            json!({"amount": (n("amount") * rate * 100.0).round() / 100.0, "currency": s("to_currency")})
        }
        "create_event" => {
            let time = a.get("time").and_then(Value::as_str).map(str::to_string);
            state.events.push((s("date"), s("title"), time));
            json!({"created": true, "events_on_date": state.events.iter().filter(|e| e.0 == s("date")).count()})
        }
        "list_events" => {
            let titles: Vec<&str> = state
                .events
                .iter()
                .filter(|e| e.0 == s("date"))
                .map(|e| e.1.as_str())
                .collect();
            json!({"date": s("date"), "events": titles})
        }
        "web_search" => {
            json!({"results": [format!("{} - Wikipedia", s("query")), format!("All about {}", s("query"))]})
        }
        "search_news" => json!({"headlines": [format!("New findings on {}", s("topic"))]}),
        "get_stock_price" => {
            json!({"symbol": s("symbol"), "price": (h("symbol") % 50_000) as f64 / 100.0})
        }
        "send_email" => json!({"sent": true, "to": s("to")}),
        "set_reminder" => json!({"scheduled": true, "in_minutes": i("minutes")?}),
        "translate" => json!({"translation": format!("[{}] {}", s("language"), s("text"))}),
        "define_word" => {
            json!({"word": s("word"), "definition": format!("the meaning of {}", s("word"))})
        }
        other => return Err(ToolError::failed(format!("{other} has no handler"))),
    })
}
