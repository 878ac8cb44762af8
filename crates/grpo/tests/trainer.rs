//! GRPO and SFT trainers end to end on a tiny model: a smoke run, exact
//! resumption after a kill, and atomic checkpoints.

mod common;

use common::*;
use std::sync::Arc;
use toolgym_env::Task;
use toolgym_grpo::checkpoint;
use toolgym_grpo::metrics::read_metrics;
use toolgym_grpo::{GrpoTrainer, Policy, RunSection, SftConfig, SftTrainer};
use toolgym_model::candle_core::{DType, Device};

#[test]
fn skipping_the_validation_before_training_changes_no_update() {
    let gen = tasks();
    let run = |val_before_train: bool| {
        let dir = run_dir(&format!("val-before-{val_before_train}"));
        let mut t = GrpoTrainer::new(
            policy(&gen),
            factory(),
            Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
            validation(&gen),
            grpo_config(2),
            RunSection {
                val_before_train,
                ..run_section(dir.clone(), 0)
            },
        )
        .unwrap();
        let summary = t.run(|_| {}).unwrap();
        let (metrics, bad) = read_metrics(&dir).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        let _ = std::fs::remove_dir_all(&dir);
        (summary, metrics, params_of(t.policy()))
    };
    let (with, with_lines, with_params) = run(true);
    let (without, lines, params) = run(false);
    assert!(with.before.is_some() && without.before.is_none());
    // No step-0 line; the steps and the validation after the last are
    // there, and the weights are those of the run that validated first
    // (validation draws from no generator training uses).
    assert_eq!(with_lines.len(), 3);
    assert_eq!(
        lines.iter().map(|m| m.step).collect::<Vec<_>>(),
        [1, 2],
        "{lines:?}"
    );
    assert_eq!(
        without.after.unwrap().accuracy,
        with.after.unwrap().accuracy
    );
    assert_eq!(lines[1].loss.to_bits(), with_lines[2].loss.to_bits());
    assert!(params == with_params, "the weights differ");
}

/// The common factory, counting the envs it makes.
struct CountingFactory(std::sync::atomic::AtomicUsize);

impl toolgym_env::env::DynEnvFactory for CountingFactory {
    fn make_env(&self, task: Arc<Task>) -> Box<dyn toolgym_env::env::ToolEnv> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        factory().make_env(task)
    }
}

/// A finished run started again runs no step and validates its policy
/// once: that one report is both its "before" and its "after".
#[test]
fn a_finished_run_started_again_validates_once() {
    let gen = tasks();
    let dir = run_dir("finished-again");
    let counting = Arc::new(CountingFactory(Default::default()));
    let trainer = |f: Arc<dyn toolgym_env::env::DynEnvFactory>| {
        GrpoTrainer::new(
            policy(&gen),
            f,
            Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
            validation(&gen),
            grpo_config(1),
            run_section(dir.clone(), 1),
        )
        .unwrap()
    };
    trainer(factory()).run(|_| {}).unwrap();
    let mut again = trainer(counting.clone());
    // What one validation makes: every task, greedy and sampled (the
    // envs the constructor made to measure prompts left out).
    counting.0.store(0, std::sync::atomic::Ordering::Relaxed);
    again.validate().unwrap();
    let one = counting.0.swap(0, std::sync::atomic::Ordering::Relaxed);
    assert!(one > 0);
    let summary = again.run(|_| {}).unwrap();
    assert_eq!(summary.steps, 1);
    assert_eq!(counting.0.load(std::sync::atomic::Ordering::Relaxed), one);
    let (before, after) = (summary.before.unwrap(), summary.after.unwrap());
    assert_eq!(before.accuracy, after.accuracy);
    std::fs::remove_dir_all(&dir).ok();
}

/// A "before" handed in (SFT's last validation) stands only for the
/// tasks it was measured on: of other tasks, GRPO validates its own.
#[test]
fn a_baseline_of_other_tasks_is_not_the_before() {
    let gen = tasks();
    let counting = Arc::new(CountingFactory(Default::default()));
    let run = |ids: Option<Vec<String>>| {
        let dir = run_dir(&format!("baseline-{}", ids.is_some()));
        let mut t = GrpoTrainer::new(
            policy(&gen),
            counting.clone(),
            Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
            validation(&gen),
            grpo_config(1),
            run_section(dir.clone(), 0),
        )
        .unwrap();
        let mut given = t.validate().unwrap().unwrap();
        given.accuracy = 0.123;
        if let Some(ids) = ids {
            given.task_ids = ids;
        }
        t.set_baseline(given);
        counting.0.store(0, std::sync::atomic::Ordering::Relaxed);
        let summary = t.run(|_| {}).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        (
            summary.before.unwrap().accuracy,
            counting.0.load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    // Of the same tasks: taken as it is.
    let (same, made_same) = run(None);
    assert_eq!(same, 0.123);
    // One task fewer, or the same number of other tasks: validated here,
    // one validation's envs more.
    let mut ids: Vec<String> = validation(&gen).iter().map(|t| t.id.clone()).collect();
    ids.pop();
    let (fewer, made_fewer) = run(Some(ids.clone()));
    ids.push("another-task".into());
    let (other, made_other) = run(Some(ids));
    assert!(fewer != 0.123 && other != 0.123, "{fewer} {other}");
    assert!(made_fewer > made_same && made_other == made_fewer);
}

/// Validation reports accuracy per task source (as verl's
/// `val/test_score/{data_source}`), and the metrics line carries it when
/// the tasks come from more than one.
#[test]
fn validation_accuracy_is_given_per_source() {
    let gen = tasks();
    let dir = run_dir("by-source");
    let mut tasks = validation(&gen);
    // Every other task of another source (validation runs the first
    // `run.eval_tasks` of them).
    for t in tasks.iter_mut().skip(1).step_by(2) {
        Arc::make_mut(t).source = "other".into();
    }
    let mut t = GrpoTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        tasks.clone(),
        grpo_config(1),
        run_section(dir.clone(), 0),
    )
    .unwrap();
    let report = t.validate().unwrap().unwrap();
    let by = &report.accuracy_by_source;
    assert_eq!(by.keys().collect::<Vec<_>>(), ["other", "synthetic"]);
    // Each source's share of its own tasks' verdicts.
    let source_of = |id: &str| {
        let t = tasks.iter().find(|t| t.id == id).unwrap();
        t.source.clone()
    };
    let ok = |source: &str| {
        let of: Vec<_> = report
            .task_ids
            .iter()
            .zip(&report.verdicts)
            .filter(|(id, _)| source_of(id) == source)
            .collect();
        let right = of
            .iter()
            .filter(|(_, v)| v.reason == toolgym_reward::Reason::Ok)
            .count();
        right as f64 / of.len() as f64
    };
    assert_eq!(by["synthetic"], ok("synthetic"));
    assert_eq!(by["other"], ok("other"));
    assert_eq!(report.over_limit, 0);
    let summary = t.run(|_| {}).unwrap();
    let (metrics, _) = read_metrics(&dir).unwrap();
    let last = metrics.last().unwrap();
    assert_eq!(
        last.val_accuracy_by_source,
        summary.after.unwrap().accuracy_by_source
    );
    assert!(last.val_over_limit.is_none());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn grpo_smoke_run_writes_metrics_and_checkpoints() {
    let gen = tasks();
    let dir = run_dir("smoke");
    let policy = policy(&gen);
    let before = params_of(&policy);
    let mut t = GrpoTrainer::new(
        policy,
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        validation(&gen),
        grpo_config(2),
        run_section(dir.clone(), 1),
    )
    .unwrap();
    let summary = t.run(|_| {}).unwrap();
    assert_eq!(summary.steps, 2);
    assert!(summary.before.is_some() && summary.after.is_some());
    let (metrics, bad) = read_metrics(&dir).unwrap();
    assert!(bad.is_empty());
    let all: Vec<_> = metrics.iter().filter(|m| m.phase == "grpo").collect();
    // Step 0 records the validation before the first step, and only that.
    assert_eq!(all[0].step, 0);
    assert_eq!(all[0].val_accuracy, Some(summary.before.unwrap().accuracy));
    assert!(all[0].reward_mean.is_none() && !all[0].is_step());
    // Validation tasks of one source: no per-source accuracies.
    assert!(all[0].val_accuracy_by_source.is_empty());
    // No update ran: nothing of one is written as if measured.
    let m0 = all[0];
    assert!(
        m0.loss.is_nan() && m0.lr.is_nan() && m0.grad_norm.is_nan() && m0.step_seconds.is_nan(),
        "{m0:?}"
    );
    assert!(
        m0.update_seconds.is_nan() && m0.train_tokens_per_s.is_nan(),
        "{m0:?}"
    );
    let grpo: Vec<_> = all.into_iter().filter(|m| m.is_step()).collect();
    assert_eq!(grpo.len(), 2);
    for m in &grpo {
        assert!(
            m.loss.is_finite() && m.grad_norm.is_finite() && m.grad_norm > 0.0,
            "{m:?}"
        );
        assert!(m.kl.is_some_and(f64::is_finite));
        assert!(m.reward_mean.is_some() && m.response_len_mean.unwrap() > 0.0);
        assert_eq!(m.reasons.values().sum::<usize>(), 12);
    }
    // The last step validated.
    assert!(grpo[1].val_accuracy.is_some());
    assert!(checkpoint::latest(&dir.join("grpo")).unwrap().is_some());
    assert!(dir.join("grpo/reference/model.safetensors").is_file());
    assert_ne!(
        params_of(t.policy()),
        before,
        "GRPO must change the weights"
    );
    // The KL reference is read again on resume: bytes of it changed since
    // (a disk error, a stray write) are found by its checksums, not taken
    // silently for another penalty.
    let resume = || {
        GrpoTrainer::new(
            common::policy(&gen),
            factory(),
            Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
            validation(&gen),
            grpo_config(3),
            run_section(dir.clone(), 1),
        )
    };
    assert!(resume().is_ok());
    let weights = dir.join("grpo/reference/model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    let e = resume()
        .err()
        .expect("a changed reference is refused")
        .to_string();
    assert!(
        e.contains("KL reference") && e.contains("its bytes changed"),
        "{e}"
    );
    let (png, _) = toolgym_grpo::plot::plot_run(&dir, None).unwrap();
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    // Drawn under another name and renamed when whole: nothing else left.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The built-in model's heads split its width as Hugging Face's Qwen2
/// does (`hidden_size / heads`) unless `head_dim` says otherwise; heads
/// that do not divide the width are refused by name.
#[test]
fn builtin_heads_split_the_width_unless_head_dim_is_set() {
    let gen = tasks();
    let corpus = gen.tokenizer_corpus(spec().template.as_ref(), 300);
    let shape = |hidden_size, heads, head_dim| toolgym_grpo::BuiltinPolicy {
        hidden_size,
        heads,
        kv_heads: 1,
        head_dim,
        layers: 1,
        ..builtin_spec()
    };
    let head_dim = |b: &toolgym_grpo::BuiltinPolicy| {
        Policy::builtin(&corpus, b, DType::F32, &Device::Cpu).map(|p| p.model.config().head_dim)
    };
    assert_eq!(head_dim(&shape(64, 4, None)).unwrap(), 16);
    assert_eq!(head_dim(&shape(64, 4, Some(32))).unwrap(), 32);
    let e = head_dim(&shape(64, 5, None)).unwrap_err().to_string();
    assert!(
        e.contains("model.builtin.heads (5) must divide model.builtin.hidden_size (64)"),
        "{e}"
    );
    assert_eq!(head_dim(&shape(64, 5, Some(16))).unwrap(), 16);
    let e = head_dim(&shape(64, 0, Some(16))).unwrap_err().to_string();
    assert!(e.contains("model.builtin.heads must be at least 1"), "{e}");
}

/// A built-in policy whose vocabulary is padded beyond the tokenizer's (as
/// Qwen2.5's is) trains: rollouts that sample padding ids decode and score.
#[test]
fn grpo_step_with_padded_vocabulary() {
    let gen = tasks();
    let b = toolgym_grpo::BuiltinPolicy {
        layers: 1,
        padded_vocab_size: 4096,
        ..builtin_spec()
    };
    let policy = builtin_policy(&gen, &b, DType::F32);
    assert_eq!(policy.model.config().vocab_size, 4096);
    assert!(policy.tokenizer.vocab_size() < 4096);
    let dir = run_dir("padded");
    let mut t = GrpoTrainer::new(
        policy,
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        grpo_config(1),
        run_section(dir.clone(), 0),
    )
    .unwrap();
    let m = t.step().unwrap();
    assert!(m.loss.is_finite() && m.grad_norm.is_finite(), "{m:?}");
    assert_eq!(m.reasons.values().sum::<usize>(), 12);
    std::fs::remove_dir_all(&dir).ok();
}

/// A run killed after its step-2 checkpoint (with a third step done but not
/// saved, and a half-written checkpoint left behind) resumes and ends with
/// exactly the weights of an uninterrupted run.
#[test]
fn grpo_resume_after_kill_matches_uninterrupted_run() {
    resume_after_kill(DType::F32, 1e-3, "f32");
}

/// The same in bf16. The optimiser keeps f32 master weights and they are
/// checkpointed, so the resumed run matches bit for bit. At lr 1e-5 a single
/// update is below half a bf16 ulp of any weight with |w| ≥ 512·lr, so
/// without masters none of those weights could ever move (measured: 0 of
/// ~38k); with them, the updates accumulate until they cross (about 17k
/// do in 4 steps, an entropy bonus giving the gradient).
#[test]
fn grpo_bf16_resume_after_kill_matches_uninterrupted_run() {
    let gen = tasks();
    let start = params_of(&policy_in(&gen, DType::BF16));
    let end = resume_after_kill(DType::BF16, 1e-5, "bf16");
    let (mut moved, mut total) = (0usize, 0usize);
    for ((_, a), (_, b)) in start.iter().zip(&end) {
        for (x, y) in a.iter().zip(b) {
            if x.abs() >= 512.0 * 1e-5 {
                total += 1;
                moved += usize::from(x != y);
            }
        }
    }
    assert!(
        moved >= 20,
        "only {moved} of {total} bf16 weights with |w| >= 512 lr changed in 4 steps"
    );
}

/// In bf16 the old policy and the KL reference score as the trainable
/// policy does: with weights that do not move (lr 0), every mini-batch's
/// ratio is exactly 1 and the KL exactly 0. With candle's CPU RMSNorm
/// kernel in the frozen models (it rounds each row's root mean square to
/// bf16) the KL was 1.5e-7 per token; off the CPU the scorers run the
/// training ops (`with_training_ops`) for the same reason.
#[test]
fn bf16_old_policy_and_reference_score_as_the_trainable_policy() {
    let gen = tasks();
    let mut c = grpo_config(1);
    c.optim.lr = 0.0;
    c.kl_coef = 1e-3;
    c.epochs = 2;
    assert!(
        c.mini_batch_prompts < c.prompts_per_step,
        "old log-probs are scored"
    );
    let dir = run_dir("bf16-scoring");
    let mut t = GrpoTrainer::new(
        policy_in(&gen, DType::BF16),
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        c,
        run_section(dir.clone(), 0),
    )
    .unwrap();
    let m = t.step().unwrap();
    assert_eq!(m.kl, Some(0.0), "{m:?}");
    assert_eq!(m.clip_fraction, Some(0.0), "{m:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs 4 uninterrupted steps and a killed-and-resumed run; asserts they end
/// with identical weights and returns them.
fn resume_after_kill(dtype: DType, lr: f64, tag: &str) -> Vec<(String, Vec<f32>)> {
    let gen = tasks();
    let train = || Arc::new(gen.split(toolgym_env::synthetic::Split::Train));
    let config = || {
        let mut c = grpo_config(4);
        c.optim.lr = lr;
        // A gradient whatever the rewards: the untrained tiny policy scores
        // 0 on every episode (no advantage), and its reference is itself
        // (no KL gradient at first).
        c.entropy_coef = 1e-2;
        c
    };

    let full_dir = run_dir(&format!("full-{tag}"));
    let mut full = GrpoTrainer::new(
        policy_in(&gen, dtype),
        factory(),
        train(),
        vec![],
        config(),
        run_section(full_dir.clone(), 2),
    )
    .unwrap();
    full.run(|_| {}).unwrap();
    let want = params_of(full.policy());

    let dir = run_dir(&format!("killed-{tag}"));
    {
        let mut t = GrpoTrainer::new(
            policy_in(&gen, dtype),
            factory(),
            train(),
            vec![],
            config(),
            run_section(dir.clone(), 2),
        )
        .unwrap();
        t.step().unwrap();
        t.step().unwrap();
        t.save_checkpoint().unwrap();
        t.step().unwrap(); // lost with the kill
                           // A checkpoint being written when the process died.
        let tmp = dir.join("grpo/checkpoints/.tmp-step-00000003");
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("model.safetensors"), b"half").unwrap();
    }
    let mut resumed = GrpoTrainer::new(
        policy_in(&gen, dtype),
        factory(),
        train(),
        vec![],
        config(),
        run_section(dir.clone(), 2),
    )
    .unwrap();
    assert_eq!(resumed.step_count(), 2);
    resumed.run(|_| {}).unwrap();
    assert_eq!(
        params_of(resumed.policy()),
        want,
        "resumed run diverged from the uninterrupted one"
    );
    let (metrics, _) = read_metrics(&dir).unwrap();
    let steps: Vec<usize> = metrics
        .iter()
        .filter(|m| m.phase == "grpo")
        .map(|m| m.step)
        .collect();
    assert_eq!(steps, vec![3, 4], "metrics of the resumed invocation");
    assert!(!dir.join("grpo/checkpoints/.tmp-step-00000003").exists());
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&full_dir).ok();
    want
}

#[test]
fn sft_learns_the_reply_format() {
    let gen = tasks();
    let dir = run_dir("sft");
    let mut cfg = SftConfig {
        steps: 30,
        batch_size: 8,
        micro_batch_seqs: 8,
        ..SftConfig::default()
    };
    cfg.optim.lr = 1e-2;
    let mut t = SftTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        cfg,
        run_section(dir.clone(), 0),
    )
    .unwrap();
    let mut losses = Vec::new();
    t.run(|m| losses.push(m.loss)).unwrap();
    assert_eq!(losses.len(), 30);
    let first: f64 = losses[..3].iter().sum::<f64>() / 3.0;
    let last: f64 = losses[27..].iter().sum::<f64>() / 3.0;
    assert!(last < first - 1.5, "SFT loss {first} -> {last}");
    assert!(checkpoint::latest(&dir.join("sft")).unwrap().is_some());
    std::fs::remove_dir_all(&dir).ok();
}

/// With 1.5× `mini_batch_prompts` tasks the last mini-batch is smaller; it
/// must still see the rollout policy as π_old (an earlier version took the
/// already-updated policy there, so its ratio was 1 and clipping never
/// acted).
#[test]
fn a_partial_last_mini_batch_uses_the_rollout_policy_as_pi_old() {
    let gen = tasks();
    let dir = run_dir("partial-mini-batch");
    let mut c = grpo_config(1);
    c.prompts_per_step = 3;
    c.mini_batch_prompts = 2;
    c.max_response_tokens = 24;
    c.optim.lr = 3e-2;
    let mut t = GrpoTrainer::new(
        policy(&gen),
        Arc::new(length_spec()),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        c,
        run_section(dir.clone(), 0),
    )
    .unwrap();
    let m = t.step().unwrap();
    // The first mini-batch starts at π_old = π (ratio 1, nothing clipped);
    // only the second, after a large update, can clip.
    assert!(m.clip_fraction.unwrap() > 0.0, "{m:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Every public trainer constructor checks its config.
#[test]
fn trainers_refuse_invalid_configs() {
    let gen = tasks();
    let train = || Arc::new(gen.split(toolgym_env::synthetic::Split::Train));
    let mut c = grpo_config(1);
    c.group_size = 1;
    let e = GrpoTrainer::new(
        policy(&gen),
        factory(),
        train(),
        vec![],
        c,
        run_section(run_dir("bad-grpo"), 0),
    );
    assert!(e.err().unwrap().to_string().contains("group_size"));
    let s = SftConfig {
        batch_size: 0,
        ..SftConfig::default()
    };
    let e = SftTrainer::new(
        policy(&gen),
        factory(),
        train(),
        vec![],
        s,
        run_section(run_dir("bad-sft"), 0),
    );
    assert!(e.err().unwrap().to_string().contains("batch_size"));
}

/// Tasks of a finite file whose first prompt is over the limit are left
/// out before training, counted per source, never cut; the checkpoint
/// records which tasks were kept, and a resume that would keep others is
/// refused.
#[test]
fn overlong_prompts_are_left_out_and_counted() {
    let gen = tasks();
    let policy_of = policy;
    let policy = policy_of(&gen);
    let data = gen.dataset(toolgym_env::synthetic::Split::Train, 24);
    let mut lens: Vec<usize> = data
        .tasks()
        .iter()
        .map(|t| policy.tokenizer.encode(&spec().prompt(t)).unwrap().len())
        .collect();
    lens.sort();
    let limit = lens[12];
    let over = lens.iter().filter(|&&l| l > limit).count();
    assert!(over > 0 && over < 24);
    let dir = run_dir("overlong");
    let mut c = grpo_config(1);
    c.max_prompt_tokens = limit;
    let mut t = GrpoTrainer::new(
        policy,
        factory(),
        Arc::new(data),
        vec![],
        c,
        run_section(dir.clone(), 0),
    )
    .unwrap();
    let m = t.step().unwrap();
    assert_eq!(m.dropped_overlong.get("synthetic"), Some(&over), "{m:?}");
    assert_eq!(m.skipped_episodes, Some(0));
    assert_eq!(t.step_count(), 1);
    t.save_checkpoint().unwrap();
    drop(t);
    let state =
        std::fs::read_to_string(dir.join("grpo/checkpoints/step-00000001/trainer_state.json"))
            .unwrap();
    assert!(
        state.contains(&format!("\"train_tasks\": \"{} tasks, ids ", 24 - over)),
        "{state}"
    );
    // A resume whose filter keeps other tasks would index another list:
    // refused, unless forced; the same tasks resume.
    let resume = |limit: usize, force: bool| {
        let mut c = grpo_config(1);
        c.max_prompt_tokens = limit;
        let mut run = run_section(dir.clone(), 0);
        run.force = force;
        let data = gen.dataset(toolgym_env::synthetic::Split::Train, 24);
        GrpoTrainer::new(policy_of(&gen), factory(), Arc::new(data), vec![], c, run)
    };
    let e = resume(lens[20], false).err().expect("refused").to_string();
    assert!(
        e.contains("drew from other training tasks") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(resume(lens[20], true).unwrap().step_count(), 1);
    let mut resumed = resume(limit, false).unwrap();
    assert_eq!(resumed.step_count(), 1);
    // Its first step logged the drops: the resumed run's does not again.
    let m = resumed.step().unwrap();
    assert!(m.dropped_overlong.is_empty(), "{m:?}");
    drop(resumed);
    // Unfiltered (prompts cut instead) draws from every task: refused too.
    let mut c = grpo_config(1);
    c.max_prompt_tokens = limit;
    c.overlong_prompts = toolgym_grpo::config::OverlongPrompts::TruncateLeft;
    let data = gen.dataset(toolgym_env::synthetic::Split::Train, 24);
    let run = run_section(dir.clone(), 0);
    let e = GrpoTrainer::new(policy_of(&gen), factory(), Arc::new(data), vec![], c, run)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("drew from other training tasks") && e.contains("(24 tasks, ids "),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The test spec's envs, from a factory whose state is how many it made.
#[derive(Default)]
struct MakeCounting {
    made: std::sync::atomic::AtomicUsize,
}

impl toolgym_env::env::EnvFactory for MakeCounting {
    type Env = <toolgym_env::SingleTurnSpec as toolgym_env::env::EnvFactory>::Env;
    fn make(&self, task: Arc<Task>) -> Self::Env {
        self.made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        toolgym_env::env::EnvFactory::make(&spec(), task)
    }
    fn checkpoint_state(&self) -> Result<Option<serde_json::Value>, String> {
        Ok(Some(
            self.made.load(std::sync::atomic::Ordering::SeqCst).into(),
        ))
    }
    fn restore_state(&self, state: &serde_json::Value) -> Result<(), String> {
        let made = state.as_u64().ok_or("not a count")?;
        self.made
            .store(made as usize, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// Validation tasks whose first prompt is over the limit are left out as
/// verl's `filter_overlong_prompts` leaves them out of its validation set
/// (validated on the rest, counted in the first step's metrics), not
/// scored as wrong answers; with `truncate-left` every task is validated.
#[test]
fn overlong_validation_prompts_are_left_out_and_counted() {
    let gen = tasks();
    let policy_of = policy;
    let validation = gen.dataset(toolgym_env::synthetic::Split::Validation, 12);
    let probe = policy_of(&gen);
    let mut lens: Vec<usize> = validation
        .tasks()
        .iter()
        .map(|t| probe.tokenizer.encode(&spec().prompt(t)).unwrap().len())
        .collect();
    let lens_in_order = lens.clone();
    lens.sort();
    let limit = lens[6];
    let over = lens.iter().filter(|&&l| l > limit).count();
    assert!(over > 0 && over < 12);
    let open_with = |name: &str, overlong, eval_tasks: usize, factory| {
        let mut c = grpo_config(1);
        c.max_prompt_tokens = limit;
        c.overlong_prompts = overlong;
        let mut run = run_section(run_dir(name), 0);
        run.eval_tasks = eval_tasks;
        GrpoTrainer::new(
            policy_of(&gen),
            factory,
            Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
            validation.tasks().to_vec(),
            c,
            run,
        )
        .unwrap()
    };
    let open = |name: &str, overlong| open_with(name, overlong, 0, factory());
    let drop = toolgym_grpo::config::OverlongPrompts::Drop;
    let mut t = open("overlong-val", drop);
    let report = t.validate().unwrap().expect("validated");
    assert_eq!(report.verdicts.len(), 12 - over);
    assert!(
        report
            .verdicts
            .iter()
            .all(|v| v.reason != toolgym_reward::Reason::TokenLimit),
        "{:?}",
        report.summary
    );
    let m = t.step().unwrap();
    assert_eq!(
        m.dropped_overlong_validation.get("synthetic"),
        Some(&over),
        "{m:?}"
    );
    // Validated without the filter (the library's `evaluate`), the tasks
    // over the limit are not run, count as wrong, and are counted in the
    // report and its metrics line.
    let mut c = grpo_config(1);
    c.max_prompt_tokens = limit;
    let report = toolgym_grpo::evaluate(
        &probe,
        &factory(),
        validation.tasks(),
        &c.rollout_limits(),
        4,
        None,
    )
    .unwrap();
    assert_eq!(report.over_limit, over);
    assert_eq!(
        report
            .verdicts
            .iter()
            .filter(|v| v.reason == toolgym_reward::Reason::TokenLimit)
            .count(),
        over
    );
    let line = toolgym_grpo::metrics::StepMetrics::validation_only("grpo", 0, &report);
    assert_eq!(line.val_over_limit, Some(over));
    let t = open(
        "overlong-val-truncated",
        toolgym_grpo::config::OverlongPrompts::TruncateLeft,
    );
    assert_eq!(t.validate().unwrap().expect("validated").verdicts.len(), 12);
    // With run.eval_tasks, tasks are measured only until that many fit;
    // the check leaves a stateful factory as it found it (this one counts
    // the envs made; the training source is unbounded, so not checked).
    let counting = Arc::new(MakeCounting::default());
    let shared: Arc<dyn toolgym_env::env::DynEnvFactory> = counting.clone();
    let mut t = open_with("overlong-val-few", drop, 3, shared);
    assert_eq!(counting.made.load(std::sync::atomic::Ordering::SeqCst), 0);
    let report = t.validate().unwrap().expect("validated");
    assert_eq!(report.verdicts.len(), 3);
    let m = t.step().unwrap();
    let measured_over = lens_in_order
        .iter()
        .scan(0usize, |fits, &l| {
            let measured = *fits < 3;
            *fits += usize::from(l <= limit);
            Some(measured && l > limit)
        })
        .filter(|&o| o)
        .count();
    assert!(
        measured_over > 0 && measured_over < over,
        "a test of stopping early"
    );
    assert_eq!(
        m.dropped_overlong_validation
            .get("synthetic")
            .copied()
            .unwrap_or(0),
        measured_over,
        "{m:?}"
    );
    for name in ["overlong-val", "overlong-val-truncated", "overlong-val-few"] {
        std::fs::remove_dir_all(run_dir(name)).ok();
    }
}

/// The checkpoint records what the training tasks hold, not only their
/// ids: a task file edited in place (a ground truth changed) is another
/// run's data, refused on resume unless forced, in SFT as in GRPO.
#[test]
fn a_resume_on_edited_training_tasks_is_refused() {
    let gen = tasks();
    let data = || gen.dataset(toolgym_env::synthetic::Split::Train, 8);
    let edited = || {
        let mut tasks: Vec<Task> = data().tasks().iter().map(|t| (**t).clone()).collect();
        let args = &mut tasks[3].ground_truth[0].arguments;
        let key = args.keys().next().cloned().unwrap();
        args.insert(key, serde_json::json!("edited"));
        toolgym_env::Dataset::new("synthetic", tasks)
    };
    let dir = run_dir("edited-tasks");
    let sft = |source: toolgym_env::Dataset, force: bool| {
        let mut run = run_section(dir.clone(), 0);
        run.force = force;
        let c = SftConfig {
            steps: 1,
            batch_size: 2,
            ..SftConfig::default()
        };
        SftTrainer::new(policy(&gen), factory(), Arc::new(source), vec![], c, run)
    };
    let mut t = sft(data(), false).unwrap();
    t.step().unwrap();
    t.save_checkpoint().unwrap();
    drop(t);
    let e = sft(edited(), false).err().expect("refused").to_string();
    assert!(
        e.contains("drew from other training tasks") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(sft(edited(), true).unwrap().step_count(), 1);
    assert_eq!(sft(data(), false).unwrap().step_count(), 1);
    std::fs::remove_dir_all(&dir).ok();

    let dir = run_dir("edited-tasks-grpo");
    let grpo = |source: toolgym_env::Dataset| {
        GrpoTrainer::new(
            policy(&gen),
            factory(),
            Arc::new(source),
            vec![],
            grpo_config(1),
            run_section(dir.clone(), 0),
        )
    };
    let mut t = grpo(data()).unwrap();
    t.step().unwrap();
    t.save_checkpoint().unwrap();
    drop(t);
    let e = grpo(edited()).err().expect("refused").to_string();
    assert!(e.contains("drew from other training tasks"), "{e}");
    assert_eq!(grpo(data()).unwrap().step_count(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// A reward that is flat for some tasks (no learning signal) and varies
/// with the reply's length for the others.
struct HalfFlat;

impl toolgym_reward::RewardRule for HalfFlat {
    fn name(&self) -> &str {
        "half-flat"
    }
    fn score(&self, completion: &str, truth: &[toolgym_reward::Call]) -> toolgym_reward::Verdict {
        let flat = truth.first().is_none_or(|c| c.name.len() % 2 == 0);
        let r = if flat {
            0.0
        } else {
            (completion.len() % 5) as f64 / 4.0
        };
        let reason = if r == 1.0 {
            toolgym_reward::Reason::Ok
        } else {
            toolgym_reward::Reason::WrongArgs
        };
        toolgym_reward::Verdict::new(r, reason, "")
    }
}

/// The same reward for every reply.
struct Flat;

impl toolgym_reward::RewardRule for Flat {
    fn name(&self) -> &str {
        "flat"
    }
    fn score(&self, _completion: &str, _truth: &[toolgym_reward::Call]) -> toolgym_reward::Verdict {
        toolgym_reward::Verdict::new(0.0, toolgym_reward::Reason::WrongArgs, "")
    }
}

/// Dynamic sampling keeps only groups whose rewards differ, drawing more
/// prompts when needed; with no signal at all the step makes no update and
/// the run goes on.
#[test]
fn dynamic_sampling_keeps_groups_with_signal() {
    let gen = tasks();
    let run = |rule: Arc<dyn toolgym_reward::RewardRule>, name: &str| {
        let dir = run_dir(name);
        let policy = policy(&gen);
        let before = params_of(&policy);
        let mut c = grpo_config(2);
        c.dynamic_sampling = true;
        c.max_sampling_rounds = 3;
        let spec = toolgym_env::SingleTurnSpec::new(rule, spec().template);
        let mut t = GrpoTrainer::new(
            policy,
            Arc::new(spec),
            Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
            vec![],
            c,
            run_section(dir.clone(), 0),
        )
        .unwrap();
        let steps = [t.step().unwrap(), t.step().unwrap()];
        let changed = params_of(t.policy()) != before;
        // The schedule counts every optimiser step the two steps planned,
        // those of groups dynamic sampling did not keep included.
        let saved = t.save_checkpoint().unwrap();
        let state: toolgym_grpo::TrainerState = checkpoint::load_state(&saved).unwrap();
        let c = &t.config;
        let planned = 2 * c.epochs * c.prompts_per_step.div_ceil(c.mini_batch_prompts);
        assert_eq!(state.optimizer_steps, planned, "{name}");
        std::fs::remove_dir_all(&dir).ok();
        (steps, changed)
    };
    let (steps, changed) = run(Arc::new(HalfFlat), "dyn-half");
    for m in &steps {
        let (rounds, kept) = (m.sampling_rounds.unwrap(), m.kept_groups.unwrap());
        assert!((1..=3).contains(&rounds) && kept <= 4, "{m:?}");
        // Every group generated is counted: 4 prompts per round.
        assert_eq!(m.reasons.values().sum::<usize>(), rounds * 4 * 3, "{m:?}");
        assert!(
            kept == 4 || rounds == 3,
            "stopped early without 4 groups: {m:?}"
        );
    }
    assert!(steps.iter().any(|m| m.zero_variance_groups.unwrap() > 0.0));
    assert!(changed, "groups with signal must move the weights");

    let (steps, changed) = run(Arc::new(Flat), "dyn-flat");
    for m in &steps {
        assert_eq!(
            (m.sampling_rounds, m.kept_groups),
            (Some(3), Some(0)),
            "{m:?}"
        );
        assert_eq!(m.zero_variance_groups, Some(1.0));
        // No update: no loss statistics (null), not zeros that read as a
        // collapsed entropy.
        assert!(
            m.loss.is_nan() && m.grad_norm.is_nan() && m.lr.is_nan(),
            "{m:?}"
        );
        assert_eq!((m.entropy, m.clip_fraction), (None, None), "{m:?}");
        let line = serde_json::to_value(m).unwrap();
        assert!(
            line["loss"].is_null() && line.get("entropy").is_none(),
            "{line}"
        );
    }
    assert!(!changed, "no group with signal: no update");
}

#[test]
fn steps_with_nothing_to_train_on_stop_the_run() {
    // Every first prompt over the limit: each episode is left out. One
    // such step makes no update and the run goes on (it can be bad luck:
    // a source that generates its tasks, a step of one prompt); three in
    // a row, or a run too short for three, say so instead of exiting 0.
    let gen = tasks();
    let dir = run_dir("nothing-to-train");
    let make = |steps: usize, dir: &std::path::Path| {
        let mut config = grpo_config(steps);
        config.max_prompt_tokens = 4;
        GrpoTrainer::new(
            policy(&gen),
            factory(),
            Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
            vec![],
            config,
            run_section(dir.to_path_buf(), 1),
        )
        .unwrap()
    };
    let mut t = make(10, &dir);
    let before = params_of(t.policy());
    for step in 1..=2 {
        let m = t.step().unwrap();
        assert_eq!(m.step, step);
        assert!(m.loss.is_nan() && m.skipped_episodes.unwrap() > 0, "{m:?}");
    }
    assert!(params_of(t.policy()) == before, "no update");
    let saved = t.save_checkpoint().unwrap();
    // The learning-rate schedule counted the optimiser steps the two
    // steps had planned, though none updated.
    let c = &t.config;
    let per_step = c.epochs * c.prompts_per_step.div_ceil(c.mini_batch_prompts);
    let state: toolgym_grpo::TrainerState = checkpoint::load_state(&saved).unwrap();
    assert_eq!(
        (state.optimizer_steps, state.optimizer_updates),
        (2 * per_step, Some(0))
    );
    drop(t);
    // Resumed, the checkpoint carries the two empty steps: the third
    // stops the run, as it does in one process.
    let e = make(10, &dir).step().unwrap_err().to_string();
    assert!(
        e.contains("step 3: none of its")
            && e.contains("has a model token to train on")
            && e.contains("and so had the 2 step(s) before it")
            && e.contains("grpo.max_prompt_tokens = 4"),
        "{e}"
    );
    // A run of two steps that trains on nothing stops at its last.
    let short = run_dir("nothing-to-train-short");
    let mut t = make(2, &short);
    t.step().unwrap();
    let e = t.step().unwrap_err().to_string();
    assert!(
        e.contains("step 2: none of its") && e.contains("and so had the 1 step(s) before it"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&short).ok();
}

/// A model whose context is shorter than `grpo.max_prompt_tokens`: the
/// first-prompt filter measures against the context (one token short of
/// it, for the reply) and says that is the limit, not the setting.
#[test]
fn prompts_over_the_models_context_are_left_out_naming_it() {
    let gen = tasks();
    let dir = run_dir("short-context");
    let model = dir.join("model");
    policy(&gen).save(&model).unwrap();
    let path = model.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["max_position_embeddings"] = 48.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let short = Policy::load(&model, DType::F32, &Device::Cpu).unwrap();
    let data = gen.dataset(toolgym_env::synthetic::Split::Train, 6);
    let e = GrpoTrainer::new(
        short,
        factory(),
        Arc::new(data),
        vec![],
        grpo_config(1),
        run_section(dir.join("run"), 0),
    )
    .map(|_| ())
    .expect_err("every prompt is over the context")
    .to_string();
    assert!(
        e.contains(
            "the model's context of 48 tokens (max_position_embeddings; grpo.max_prompt_tokens is"
        ),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A user's task source with bugs: its `get` panics at every index in
/// `panics_every`, and (a finite source) gives no task at index 1.
struct FaultySource {
    tasks: Arc<toolgym_env::Dataset>,
    panics_every: u64,
}

impl toolgym_env::TaskSource for FaultySource {
    fn name(&self) -> &str {
        "faulty"
    }
    fn len(&self) -> Option<usize> {
        self.tasks.len()
    }
    fn get(&self, index: u64) -> Option<Arc<Task>> {
        assert!(
            !index.is_multiple_of(self.panics_every),
            "no task {index} today"
        );
        (index != 1).then(|| self.tasks.get(index)).flatten()
    }
}

/// A task source whose `get` panics (or gives no task inside its length)
/// does not end the run: the task is skipped, a later draw takes its
/// place, and the step's metrics count it. A source that fails at every
/// draw stops the run, naming the source and its panic.
#[test]
fn task_source_failures_skip_tasks_not_the_run() {
    use toolgym_env::TaskSource;
    let gen = tasks();
    let dir = run_dir("faulty-source");
    let tasks = Arc::new(gen.dataset(toolgym_env::synthetic::Split::Train, 24));
    let source = FaultySource {
        tasks: tasks.clone(),
        panics_every: 3,
    };
    // What the run trains on is read from the source before training: the
    // tasks it fails to give are left out there (said on stderr), so the
    // sampler never draws them.
    assert_eq!(
        toolgym_env::try_get(&source, 4).unwrap().unwrap().id,
        tasks.get(4).unwrap().id
    );
    let mut config = grpo_config(2);
    config.overlong_prompts = toolgym_grpo::config::OverlongPrompts::TruncateLeft;
    let mut t = GrpoTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(source),
        vec![],
        config.clone(),
        run_section(dir.clone(), 0),
    )
    .unwrap();
    let (mut skipped, mut first) = (0, None);
    for step in 1..=2 {
        let m = t.step().unwrap();
        assert_eq!(m.step, step);
        // Every step still has its 4 prompts × G = 3.
        assert_eq!(m.reasons.values().sum::<usize>(), 12, "{m:?}");
        skipped += m.source_failures.unwrap_or(0);
        first = first.or(m.source_error.clone());
    }
    // 2 steps draw at least 8 of the 24 tasks; 9 of them fail.
    assert!(skipped > 0, "no failure in two steps");
    let first = first.unwrap();
    assert!(
        first.starts_with("task source \"faulty\" at index ")
            && (first.contains(": panicked: no task ") || first.contains("inside its length (24)")),
        "{first}"
    );
    // With the default first-prompt filter, the tasks the source fails
    // to give are left out before training: no step meets them.
    let mut t = GrpoTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(FaultySource {
            tasks: tasks.clone(),
            panics_every: 3,
        }),
        vec![],
        grpo_config(2),
        run_section(run_dir("faulty-source-filtered"), 0),
    )
    .unwrap();
    for _ in 0..2 {
        let m = t.step().unwrap();
        assert_eq!(
            (m.reasons.values().sum::<usize>(), m.source_failures),
            (12, None)
        );
    }
    std::fs::remove_dir_all(run_dir("faulty-source-filtered")).ok();
    // A source that fails everywhere stops the run with what it said.
    let broken = FaultySource {
        tasks,
        panics_every: 1,
    };
    let e = GrpoTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(broken),
        vec![],
        config,
        run_section(run_dir("broken-source"), 0),
    )
    .unwrap()
    .step()
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(
            "the training source failed to give every task drawn for grpo step 1 (68 failures)"
        ) && e.contains("panicked: no task"),
        "{e}"
    );
    // With the first-prompt filter, such a source is found before
    // training, and the error says it was the source, not the prompts.
    let e = GrpoTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(FaultySource {
            tasks: Arc::new(gen.dataset(toolgym_env::synthetic::Split::Train, 24)),
            panics_every: 1,
        }),
        vec![],
        grpo_config(2),
        run_section(run_dir("broken-source"), 0),
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(
        e.contains("no training task is left: the source failed to give 24 of its 24 tasks"),
        "{e}"
    );
    // SFT skips the same way.
    let sft = SftConfig {
        steps: 2,
        batch_size: 6,
        micro_batch_seqs: 6,
        ..SftConfig::default()
    };
    let source = FaultySource {
        tasks: Arc::new(gen.dataset(toolgym_env::synthetic::Split::Train, 24)),
        panics_every: 2,
    };
    let mut t = SftTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(source),
        vec![],
        sft,
        run_section(run_dir("faulty-source-sft"), 0),
    )
    .unwrap();
    let m = t.step().unwrap();
    assert!(m.source_failures.is_some_and(|n| n > 0), "{m:?}");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(run_dir("broken-source")).ok();
    std::fs::remove_dir_all(run_dir("faulty-source-sft")).ok();
}
