//! From a [`TrainConfig`] to a trained policy: build the policy (a Hugging
//! Face directory or the built-in tiny model), the tasks (JSONL files or the
//! built-in synthetic environment), the prompt template and reward rule, then
//! run SFT and/or GRPO, resuming whatever a previous invocation left.

use crate::{
    parse_device, parse_dtype, EvalReport, GrpoTrainer, Policy, SftTrainer, StepMetrics,
    TrainConfig, TrainError,
};
use std::sync::Arc;
use toolgym_env::synthetic::{Split, SyntheticTasks};
use toolgym_env::template::{template_by_name, ChatTemplate};
use toolgym_env::{Dataset, SingleTurnSpec, Task, TaskSource};
use toolgym_reward::rule_by_name;

/// Which phases to run, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phases {
    /// Supervised fine-tuning only.
    Sft,
    /// GRPO only.
    Grpo,
    /// SFT warm start, then GRPO from its result.
    SftThenGrpo,
}

/// Validation accuracies along the way.
#[derive(Clone, Debug, Default)]
pub struct PipelineReport {
    /// After SFT.
    pub after_sft: Option<EvalReport>,
    /// Before GRPO (the warm-started policy).
    pub before_grpo: Option<EvalReport>,
    /// After GRPO.
    pub after_grpo: Option<EvalReport>,
}

/// Training and validation tasks, and the spec that renders and scores them.
pub struct TaskSetup {
    /// Where training tasks come from.
    pub train: Arc<dyn TaskSource>,
    /// Held-out tasks.
    pub validation: Vec<Arc<Task>>,
    /// Template + reward rule.
    pub spec: SingleTurnSpec,
    /// The synthetic generator, when the built-in environment is used.
    pub synthetic: Option<SyntheticTasks>,
}

/// Builds tasks and spec from the config's `data` section and reward rule.
pub fn task_setup(cfg: &TrainConfig) -> Result<TaskSetup, TrainError> {
    let template = template_by_name(&cfg.data.template).ok_or_else(|| {
        TrainError::Config(format!(
            "data.template: unknown template {:?} (tool-n1, tool-n1-no-think, compact, compact-no-think)",
            cfg.data.template
        ))
    })?;
    let rule = rule_by_name(&cfg.grpo.reward_rule)
        .map_err(|e| TrainError::Config(format!("grpo.reward_rule: {e}")))?;
    let spec = SingleTurnSpec::new(Arc::from(rule), Arc::new(template));
    let load = |p: &std::path::Path| {
        Dataset::from_jsonl(p).map_err(|e| TrainError::Data(format!("{}: {e}", p.display())))
    };
    Ok(match &cfg.data.train {
        Some(path) => {
            let train = load(path)?;
            if train.size() == 0 {
                return Err(TrainError::Data(format!("{} has no tasks", path.display())));
            }
            let validation = match &cfg.data.validation {
                Some(v) => load(v)?.tasks().to_vec(),
                None => Vec::new(),
            };
            TaskSetup {
                train: Arc::new(train),
                validation,
                spec,
                synthetic: None,
            }
        }
        None => {
            let gen = SyntheticTasks::new(cfg.data.synthetic.to_config(cfg.run.seed)?)
                .map_err(|e| TrainError::Config(format!("data.synthetic: {e}")))?;
            let validation = match &cfg.data.validation {
                Some(v) => load(v)?.tasks().to_vec(),
                None => gen
                    .dataset(Split::Validation, cfg.data.synthetic.validation_tasks)
                    .tasks()
                    .to_vec(),
            };
            TaskSetup {
                train: Arc::new(gen.split(Split::Train)),
                validation,
                spec,
                synthetic: Some(gen),
            }
        }
    })
}

/// Builds the policy: the configured model directory, or the built-in tiny
/// Qwen2 whose tokenizer is trained on rendered training tasks.
pub fn build_policy(cfg: &TrainConfig, setup: &TaskSetup) -> Result<Policy, TrainError> {
    let builtin = &cfg.model.builtin;
    let device = parse_device(&cfg.model.device)?;
    let dtype = parse_dtype(&cfg.model.dtype)?;
    match &cfg.model.path {
        Some(dir) => Policy::load(dir, dtype, &device),
        None => {
            let template: &dyn ChatTemplate = setup.spec.template.as_ref();
            let corpus: Vec<String> = match &setup.synthetic {
                Some(gen) => gen.tokenizer_corpus(template, 4000),
                None => (0..4000u64)
                    .map_while(|i| setup.train.get(i))
                    .map(|t| format!("{}{}", template.prompt(&t), template.target(&t)))
                    .collect(),
            };
            Policy::builtin(&corpus, builtin, dtype, &device)
        }
    }
}

/// Runs the phases; `on_step` sees every step's metrics.
pub fn run(
    cfg: &TrainConfig,
    phases: Phases,
    mut on_step: impl FnMut(&StepMetrics),
) -> Result<PipelineReport, TrainError> {
    let setup = task_setup(cfg)?;
    let mut policy = build_policy(cfg, &setup)?;
    let mut report = PipelineReport::default();
    let grpo_started = crate::checkpoint::latest(&cfg.run.out_dir.join("grpo"))?.is_some();
    if matches!(phases, Phases::Sft | Phases::SftThenGrpo) && !grpo_started {
        let mut sft = SftTrainer::new(
            policy,
            setup.spec.clone(),
            setup.train.clone(),
            setup.validation.clone(),
            cfg.sft.clone(),
            cfg.run.clone(),
        )?;
        sft.set_eval_limits(cfg.grpo.max_prompt_tokens, cfg.grpo.max_response_tokens);
        report.after_sft = sft.run(&mut on_step)?;
        if report.after_sft.is_none() {
            report.after_sft = sft.validate()?;
        }
        policy = sft.into_policy();
    }
    if matches!(phases, Phases::Grpo | Phases::SftThenGrpo) {
        let mut grpo = GrpoTrainer::new(
            policy,
            setup.spec.clone(),
            setup.train.clone(),
            setup.validation.clone(),
            cfg.grpo.clone(),
            cfg.run.clone(),
        )?;
        if let Some(r) = &report.after_sft {
            if grpo.step_count() == 0 {
                grpo.set_baseline(r.clone());
            }
        }
        let summary = grpo.run(&mut on_step)?;
        report.before_grpo = summary.before;
        report.after_grpo = summary.after;
        grpo.policy().save(&cfg.run.out_dir.join("final"))?;
    } else {
        policy.save(&cfg.run.out_dir.join("final"))?;
    }
    Ok(report)
}
