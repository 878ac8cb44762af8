//! Resuming from damaged checkpoints: a truncated safetensors file, bytes
//! changed in place (checksums), invalid JSON, `latest` naming nothing, and
//! a checkpoint of another model shape.
//! Each is an error naming the file; with `run.resume_fallback` a damaged
//! newest checkpoint gives way to the previous one, an incompatible one
//! never does.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toolgym_grpo::{BuiltinPolicy, SftConfig, SftTrainer};
use toolgym_model::candle_core::{DType, Device};

fn config(steps: usize) -> SftConfig {
    SftConfig {
        steps,
        batch_size: 2,
        micro_batch_seqs: 2,
        ..SftConfig::default()
    }
}

/// Opens (resumes) an SFT run in `dir`: its step, or the error text.
fn open(dir: &Path, fallback: bool, shape: &BuiltinPolicy) -> Result<usize, String> {
    let gen = tasks();
    let mut run = run_section(dir.to_path_buf(), 1);
    run.resume_fallback = fallback;
    SftTrainer::new(
        builtin_policy(&gen, shape, DType::F32),
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        config(3),
        run,
    )
    .map(|t| t.step_count())
    .map_err(|e| e.to_string())
}

/// A run with checkpoints after steps 1, 2 and 3.
fn three_checkpoints(name: &str) -> PathBuf {
    let dir = run_dir(name);
    let gen = tasks();
    let mut t = SftTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        config(3),
        run_section(dir.clone(), 1),
    )
    .unwrap();
    t.run(|_| {}).unwrap();
    assert_eq!(open(&dir, false, &builtin_spec()), Ok(3));
    dir
}

fn step_dir(dir: &Path, step: usize) -> PathBuf {
    dir.join("sft/checkpoints").join(format!("step-{step:08}"))
}

fn truncate(path: &Path) {
    let bytes = fs::read(path).unwrap();
    fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

#[test]
fn a_truncated_model_file_is_named_and_the_previous_checkpoint_resumes() {
    let dir = three_checkpoints("ckpt-model");
    truncate(&step_dir(&dir, 3).join("model.safetensors"));
    let e = open(&dir, false, &builtin_spec()).unwrap_err();
    // Found by its checksum, checked before anything is read.
    assert!(
        e.contains("step-00000003/model.safetensors") && e.contains("bytes changed"),
        "{e}"
    );
    assert!(
        e.contains("run.resume_fallback=true") && e.contains("step-00000002"),
        "{e}"
    );
    assert_eq!(open(&dir, true, &builtin_spec()), Ok(2));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_that_lost_its_checksums_is_damage() {
    // A removal cut short may take `checksums.json` and leave the rest:
    // with no checksums to check, the other files may be gone or cut too.
    let dir = three_checkpoints("ckpt-no-sums");
    fs::remove_file(step_dir(&dir, 3).join("checksums.json")).unwrap();
    let e = open(&dir, false, &builtin_spec()).unwrap_err();
    assert!(
        e.contains("step-00000003") && e.contains("no checksums.json") && e.contains("removed"),
        "{e}"
    );
    assert_eq!(open(&dir, true, &builtin_spec()), Ok(2));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_whose_files_are_as_written_is_not_passed_over() {
    // Every file's bytes match its recorded checksum, yet the model does
    // not load (here: cut, then sealed as written): not damage after the
    // fact, so the fallback does not resume from an older checkpoint and
    // redo the steps since; the error says the files are intact.
    let dir = three_checkpoints("ckpt-intact");
    let step3 = step_dir(&dir, 3);
    truncate(&step3.join("model.safetensors"));
    toolgym_grpo::checkpoint::seal(&step3).unwrap();
    for fallback in [false, true] {
        let e = open(&dir, fallback, &builtin_spec()).unwrap_err();
        assert!(
            e.contains("step-00000003") && e.contains("checksums match"),
            "{e}"
        );
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn bytes_changed_in_place_are_found_by_their_checksum() {
    // The size and the structure are intact, the values are not (a disk
    // error): found on load, not trained on.
    let dir = three_checkpoints("ckpt-bytes");
    for (file, step) in [("model.safetensors", 3), ("optimizer.safetensors", 2)] {
        let path = step_dir(&dir, step).join(file);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 400..].fill(0xFF);
        fs::write(&path, &bytes).unwrap();
    }
    let e = open(&dir, false, &builtin_spec()).unwrap_err();
    assert!(
        e.contains("step-00000003/model.safetensors") && e.contains("bytes changed"),
        "{e}"
    );
    // The fallback skips both damaged checkpoints.
    assert_eq!(open(&dir, true, &builtin_spec()), Ok(1));
    // A changed digit in the trainer state still parses: its checksum
    // finds it too.
    let state = step_dir(&dir, 1).join("trainer_state.json");
    let text = fs::read_to_string(&state).unwrap();
    fs::write(&state, text.replace("\"step\": 1", "\"step\": 7")).unwrap();
    let e = open(&dir, true, &builtin_spec()).unwrap_err();
    assert!(
        e.contains("trainer_state.json") && e.contains("bytes changed"),
        "{e}"
    );
    // A checksum file naming a file outside the checkpoint is damage too.
    let sums = step_dir(&dir, 3).join("checksums.json");
    fs::write(&sums, r#"{"../../config.toml": "00000000"}"#).unwrap();
    let e = open(&dir, false, &builtin_spec()).unwrap_err();
    assert!(e.contains("no file of the checkpoint"), "{e}");
    fs::remove_dir_all(&dir).ok();
}

/// A changed name that still parses (the phase in the trainer state) is
/// damage, found by its checksum before it reads as another phase's
/// checkpoint, which the fallback would not pass over.
#[test]
fn a_changed_name_is_damage_and_the_fallback_passes_over_it() {
    let dir = three_checkpoints("ckpt-name");
    let state = step_dir(&dir, 3).join("trainer_state.json");
    let text = fs::read_to_string(&state).unwrap();
    assert!(text.contains("\"sft\""), "{text}");
    fs::write(&state, text.replace("\"sft\"", "\"sfu\"")).unwrap();
    let e = open(&dir, false, &builtin_spec()).unwrap_err();
    assert!(
        e.contains("trainer_state.json") && e.contains("bytes changed"),
        "{e}"
    );
    assert_eq!(open(&dir, true, &builtin_spec()), Ok(2));
    fs::remove_dir_all(&dir).ok();
}

/// The error of `train sft` (the pipeline, default config, synthetic
/// tasks) in `dir`.
fn sft_run_error(dir: &Path) -> String {
    let mut cfg = toolgym_grpo::TrainConfig::default();
    cfg.run.out_dir = dir.to_path_buf();
    run_error(&cfg, toolgym_grpo::pipeline::Phases::Sft)
}

/// The error of running `phases` of the pipeline with `cfg` on synthetic
/// tasks.
fn run_error(cfg: &toolgym_grpo::TrainConfig, phases: toolgym_grpo::pipeline::Phases) -> String {
    let gen = tasks();
    let setup = toolgym_grpo::pipeline::TaskSetup {
        factory: factory(),
        train: Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        validation: vec![],
        tokenizer_corpus: None,
    };
    toolgym_grpo::pipeline::run_with(cfg, setup, phases, |_| {})
        .unwrap_err()
        .to_string()
}

/// A run of the built-in test model in `dir`, with two SFT steps of two
/// demonstrations.
fn builtin_run(dir: &Path) -> toolgym_grpo::TrainConfig {
    let mut cfg = toolgym_grpo::TrainConfig::default();
    cfg.run.out_dir = dir.to_path_buf();
    cfg.model.builtin = builtin_spec();
    cfg.sft.steps = 2;
    cfg.sft.batch_size = 2;
    cfg
}

/// A resumed run of the built-in model keeps the tokenizer its checkpoints
/// hold: the corpus a rebuilt one would learn from may come out otherwise
/// (an env that timed out the first time, replies that depend on the
/// clock), and a model of another vocabulary refused the run's own
/// checkpoints ("tensor model.embed_tokens.weight has shape …").
#[test]
fn a_resumed_builtin_run_keeps_its_checkpointed_tokenizer() {
    use toolgym_grpo::pipeline::{run_with, Phases, TaskSetup};
    let gen = tasks();
    let dir = run_dir("resume-tokenizer");
    let mut cfg = builtin_run(&dir);
    let setup = |corpus: Vec<String>| TaskSetup {
        factory: factory(),
        train: Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        validation: vec![],
        tokenizer_corpus: Some(corpus),
    };
    let full = gen.tokenizer_corpus(spec().template.as_ref(), 300);
    run_with(&cfg, setup(full.clone()), Phases::Sft, |_| {}).unwrap();
    let vocab = |d: &Path| {
        toolgym_grpo::Policy::load(d, DType::F32, &Device::Cpu)
            .unwrap()
            .model
            .config()
            .vocab_size
    };
    let trained = vocab(&dir.join("final"));
    // The same run again, its envs now giving a much smaller corpus: it
    // resumes (finished, it saves the same final policy) instead of
    // refusing its checkpoint.
    run_with(&cfg, setup(vec!["ab".into()]), Phases::Sft, |_| {}).unwrap();
    assert_eq!(vocab(&dir.join("final")), trained);
    // A model of another shape than the config's is still refused by
    // shape (here resumed with --force past the recorded-config check).
    cfg.model.builtin.intermediate_size *= 2;
    cfg.run.force = true;
    let e = run_with(&cfg, setup(full), Phases::Sft, |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("has shape") && e.contains("mlp"), "{e}");
    // One layer fewer than the checkpoint's: every tensor of the run's
    // model is there with its shape, and the layer too many is what the
    // error names, of the model file (not later, of the optimiser's).
    cfg.model.builtin.intermediate_size /= 2;
    cfg.model.builtin.layers = 1;
    let e = run_with(
        &cfg,
        setup(gen.tokenizer_corpus(spec().template.as_ref(), 300)),
        Phases::Sft,
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("model.safetensors: tensor model.layers.1.") && e.contains("does not have"),
        "{e}"
    );
    fs::remove_dir_all(&dir).ok();
}

/// A phase of no steps is refused before any model is written: it would
/// save the policy it started from (random weights, for SFT on the
/// built-in model) as the run's final one.
#[test]
fn a_phase_of_no_steps_is_refused() {
    use toolgym_grpo::pipeline::Phases;
    let dir = run_dir("no-steps");
    let mut cfg = toolgym_grpo::TrainConfig::default();
    cfg.run.out_dir = dir.clone();
    cfg.sft.steps = 0;
    for phases in [Phases::Sft, Phases::SftThenGrpo] {
        let e = run_error(&cfg, phases);
        assert!(e.contains("sft.steps is 0"), "{e}");
    }
    cfg.sft.steps = 1;
    cfg.grpo.steps = Some(0);
    for phases in [Phases::Grpo, Phases::SftThenGrpo] {
        let e = run_error(&cfg, phases);
        assert!(e.contains("grpo.steps is 0"), "{e}");
    }
    assert!(!dir.join("final").exists() && !dir.join("sft").exists());
    fs::remove_dir_all(&dir).ok();
}

/// `train sft` starting over (`run.resume = false`) redoes every phase:
/// the GRPO phase that started from the earlier SFT result goes, so a
/// later `train grpo` starts from the new SFT instead of resuming it.
#[test]
fn sft_starting_over_removes_the_grpo_phase_built_on_the_old_one() {
    use toolgym_grpo::pipeline::{run_with, Phases, TaskSetup};
    let gen = tasks();
    let dir = run_dir("sft-over");
    fs::create_dir_all(dir.join("grpo/checkpoints/step-00000001")).unwrap();
    fs::write(dir.join("grpo/checkpoints/latest"), "step-00000001").unwrap();
    let mut cfg = toolgym_grpo::TrainConfig::default();
    cfg.run.out_dir = dir.clone();
    cfg.run.resume = false;
    cfg.model.builtin = builtin_spec();
    cfg.sft.steps = 1;
    cfg.sft.batch_size = 2;
    let setup = TaskSetup {
        factory: factory(),
        train: Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        validation: vec![],
        tokenizer_corpus: Some(gen.tokenizer_corpus(spec().template.as_ref(), 300)),
    };
    fs::create_dir_all(dir.join("final")).unwrap();
    fs::write(dir.join("final/earlier-run.txt"), "old").unwrap();
    // A start that fails before its SFT phase opens (no such model)
    // removes nothing of the earlier run.
    let mut missing = cfg.clone();
    missing.model.path = Some(dir.join("no-such-model"));
    let no_setup = TaskSetup {
        factory: factory(),
        train: Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        validation: vec![],
        tokenizer_corpus: None,
    };
    assert!(run_with(&missing, no_setup, Phases::Sft, |_| {}).is_err());
    assert!(dir.join("final/earlier-run.txt").is_file());
    assert!(toolgym_grpo::checkpoint::exists(&dir.join("grpo")));
    // The earlier GRPO phase's metrics lines and KL reference go with it.
    fs::create_dir_all(dir.join("grpo/reference")).unwrap();
    fs::write(
        dir.join("metrics.jsonl"),
        "{\"phase\": \"grpo\", \"step\": 1, \"elapsed_s\": 1.0}\n",
    )
    .unwrap();
    run_with(&cfg, setup, Phases::Sft, |_| {}).unwrap();
    assert!(!dir.join("grpo").exists());
    let metrics = fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert!(!metrics.contains("\"grpo\""), "{metrics}");
    // This run's SFT lines are in the file (they went into the file the
    // rewrite replaced, and were lost).
    assert!(metrics.contains("\"phase\":\"sft\""), "{metrics}");
    assert!(!toolgym_grpo::checkpoint::exists(&dir.join("grpo")));
    assert!(toolgym_grpo::checkpoint::exists(&dir.join("sft")));
    // The earlier run's final model went with it; this run's replaced it.
    assert!(!dir.join("final/earlier-run.txt").exists());
    assert!(dir.join("final/model.safetensors").is_file());
    // It was written beside and renamed into place: nothing is left over.
    assert!(!dir.join(".final.tmp").exists() && !dir.join(".final.old").exists());

    // SFT then GRPO starting over: the earlier GRPO phase goes before SFT
    // runs, so a run stopped before its own GRPO opens (here GRPO refuses
    // its tasks) leaves none to be resumed on top of the new SFT.
    fs::create_dir_all(dir.join("grpo/checkpoints/step-00000001")).unwrap();
    fs::write(dir.join("grpo/checkpoints/latest"), "step-00000001").unwrap();
    cfg.grpo.max_prompt_tokens = 1;
    let setup = TaskSetup {
        factory: factory(),
        train: Arc::new(gen.dataset(toolgym_env::synthetic::Split::Train, 6)),
        validation: vec![],
        tokenizer_corpus: Some(gen.tokenizer_corpus(spec().template.as_ref(), 300)),
    };
    let e = run_with(&cfg, setup, Phases::SftThenGrpo, |_| {})
        .expect_err("GRPO refuses its tasks")
        .to_string();
    assert!(
        e.contains("first prompt over grpo.max_prompt_tokens"),
        "{e}"
    );
    assert!(!toolgym_grpo::checkpoint::exists(&dir.join("grpo")));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn sft_is_refused_where_grpo_has_started_from_it() {
    // Re-running `train sft` there would have saved the untrained model as
    // the run's final policy.
    let dir = run_dir("sft-after-grpo");
    fs::create_dir_all(dir.join("grpo/checkpoints")).unwrap();
    fs::write(dir.join("grpo/checkpoints/latest"), "step-00000001").unwrap();
    // No SFT phase ran there: GRPO started from the model itself (it said
    // "started from its SFT result").
    let e = sft_run_error(&dir);
    assert!(
        e.contains("holds a GRPO phase that started from the model itself"),
        "{e}"
    );
    assert!(!dir.join("final").exists());
    fs::create_dir_all(dir.join("sft/checkpoints")).unwrap();
    fs::write(dir.join("sft/checkpoints/latest"), "step-00000003").unwrap();
    let e = sft_run_error(&dir);
    assert!(e.contains("started from its SFT result"), "{e}");
    fs::remove_dir_all(&dir).ok();
}

/// Checkpoints without the config they were trained with (config.toml
/// gone): going on with them is refused, naming the file, unless forced;
/// the run went on silently at any settings.
#[test]
fn a_phase_with_checkpoints_but_no_recorded_config_is_refused() {
    let dir = three_checkpoints("ckpt-no-record");
    assert!(!dir.join("config.toml").exists());
    let e = sft_run_error(&dir);
    assert!(
        e.contains("no recorded config") && e.contains("config.toml is missing"),
        "{e}"
    );
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_truncated_optimizer_file_is_named() {
    let dir = three_checkpoints("ckpt-optim");
    truncate(&step_dir(&dir, 3).join("optimizer.safetensors"));
    let e = open(&dir, false, &builtin_spec()).unwrap_err();
    assert!(e.contains("step-00000003/optimizer.safetensors"), "{e}");
    assert_eq!(open(&dir, true, &builtin_spec()), Ok(2));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_invalid_trainer_state_is_named() {
    let dir = three_checkpoints("ckpt-state");
    fs::write(
        step_dir(&dir, 3).join("trainer_state.json"),
        "{\"phase\": \"sft\", ",
    )
    .unwrap();
    let e = open(&dir, false, &builtin_spec()).unwrap_err();
    assert!(e.contains("step-00000003/trainer_state.json"), "{e}");
    // Damage the previous one too: the fallback goes back to step 1.
    truncate(&step_dir(&dir, 2).join("model.safetensors"));
    assert_eq!(open(&dir, true, &builtin_spec()), Ok(1));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn latest_naming_nothing_is_named() {
    let dir = three_checkpoints("ckpt-latest");
    fs::write(dir.join("sft/checkpoints/latest"), "step-00000009").unwrap();
    let e = open(&dir, false, &builtin_spec()).unwrap_err();
    assert!(e.contains("step-00000009 does not exist"), "{e}");
    assert_eq!(open(&dir, true, &builtin_spec()), Ok(3));
    // Naming a checkpoint removed since: the fallback takes an older one
    // first, and a later complete one (the state an old rotation left)
    // when none is older (it looked only at older ones, and said none
    // existed).
    fs::write(dir.join("sft/checkpoints/latest"), "step-00000002").unwrap();
    fs::remove_dir_all(step_dir(&dir, 2)).unwrap();
    let e = open(&dir, false, &builtin_spec()).unwrap_err();
    assert!(
        e.contains("step-00000002 does not exist") && e.contains("step-00000001 instead"),
        "{e}"
    );
    assert_eq!(open(&dir, true, &builtin_spec()), Ok(1));
    fs::remove_dir_all(step_dir(&dir, 1)).unwrap();
    fs::write(dir.join("sft/checkpoints/latest"), "step-00000002").unwrap();
    assert_eq!(open(&dir, true, &builtin_spec()), Ok(3));
    // A `latest` that is no step directory's name (garbage, a path out of
    // the run) is no `latest`: the newest step directory is resumed from,
    // never a directory elsewhere.
    let elsewhere = three_checkpoints("ckpt-latest-elsewhere");
    for name in [
        "",
        "garbage",
        "../../ckpt-latest-elsewhere/sft/checkpoints/step-00000002",
        elsewhere
            .join("sft/checkpoints/step-00000002")
            .to_str()
            .unwrap(),
        "step-2",
    ] {
        fs::write(dir.join("sft/checkpoints/latest"), name).unwrap();
        assert_eq!(open(&dir, false, &builtin_spec()), Ok(3), "{name:?}");
    }
    fs::remove_dir_all(&elsewhere).ok();
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn without_latest_the_newest_step_directory_is_resumed_from() {
    // A run killed between renaming a checkpoint into place and naming it
    // in `latest` (or a `latest` lost since): resuming neither starts from
    // scratch nor removes the checkpoints.
    let dir = three_checkpoints("ckpt-no-latest");
    fs::remove_file(dir.join("sft/checkpoints/latest")).unwrap();
    assert_eq!(open(&dir, false, &builtin_spec()), Ok(3));
    assert!(step_dir(&dir, 3).is_dir() && step_dir(&dir, 1).is_dir());
    // The newest is checked as `latest`'s would be; the fallback applies.
    truncate(&step_dir(&dir, 3).join("model.safetensors"));
    let e = open(&dir, false, &builtin_spec()).unwrap_err();
    assert!(
        e.contains("step-00000003") && e.contains("run.resume_fallback"),
        "{e}"
    );
    assert_eq!(open(&dir, true, &builtin_spec()), Ok(2));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn when_every_checkpoint_is_damaged_the_fallback_says_so() {
    let dir = three_checkpoints("ckpt-all");
    for step in 1..=3 {
        truncate(&step_dir(&dir, step).join("optimizer.safetensors"));
    }
    let e = open(&dir, true, &builtin_spec()).unwrap_err();
    assert!(e.contains("no other checkpoint loads either"), "{e}");
    assert!(e.contains("step-00000001/optimizer.safetensors"), "{e}");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_of_another_shape_is_refused_even_with_fallback() {
    let dir = three_checkpoints("ckpt-shape");
    let wider = BuiltinPolicy {
        hidden_size: 48,
        ..builtin_spec()
    };
    for fallback in [false, true] {
        let e = open(&dir, fallback, &wider).unwrap_err();
        assert!(
            e.contains("step-00000003/model.safetensors") && e.contains("shape"),
            "{e}"
        );
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn starting_over_in_a_run_directory_replaces_its_checkpoints() {
    // An earlier run left checkpoints 1-3; a new one (resume off) that
    // keeps one checkpoint must keep its own, not the earlier run's.
    let dir = three_checkpoints("start-over");
    // A directory of the user's own beside them stays (as rotation
    // leaves it).
    let mine = dir.join("sft/checkpoints/step-best");
    fs::create_dir(&mine).unwrap();
    let gen = tasks();
    let mut run = run_section(dir.clone(), 1);
    run.resume = false;
    run.keep_checkpoints = 1;
    let mut t = SftTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        config(1),
        run,
    )
    .unwrap();
    t.run(|_| {}).unwrap();
    assert!(step_dir(&dir, 1).is_dir());
    assert!(
        !step_dir(&dir, 3).exists(),
        "the earlier run's checkpoint was kept"
    );
    assert!(mine.is_dir());
    let mut resumed = run_section(dir.clone(), 1);
    resumed.resume = true;
    let t = SftTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        config(1),
        resumed,
    )
    .unwrap();
    assert_eq!(t.step_count(), 1);
    fs::remove_dir_all(&dir).ok();
}

/// A model directory in `dir` with a source's sampling defaults and chat
/// template, as a Hugging Face download has them.
fn source_model(
    gen: &toolgym_env::synthetic::SyntheticTasks,
    dir: &Path,
    defaults: &serde_json::Value,
    template: &str,
) {
    policy(gen).save(dir).unwrap();
    fs::write(dir.join("generation_config.json"), defaults.to_string()).unwrap();
    fs::write(dir.join("chat_template.jinja"), template).unwrap();
}

/// A checkpoint written before checkpoints kept their source's files (a
/// generation config of eos and pad alone, no chat template) resumes with
/// the configured model's sampling defaults and template, so what the run
/// saves from it is sampled and prompted downstream as the source was.
#[test]
fn a_resumed_older_checkpoint_gets_its_sources_generation_config_and_template() {
    let (source, dir, saved) = (
        run_dir("gc-old-source"),
        three_checkpoints("gc-old-run"),
        run_dir("gc-old-saved"),
    );
    let gen = tasks();
    let defaults = serde_json::json!({"temperature": 0.7, "top_p": 0.8, "eos_token_id": 1});
    source_model(&gen, &source, &defaults, "{{ messages }}");
    let old = step_dir(&dir, 3);
    fs::write(
        old.join("generation_config.json"),
        r#"{"eos_token_id": [1], "pad_token_id": 0}"#,
    )
    .unwrap();
    // A checkpoint of a build before checksums (and before the optimiser's
    // update count) was recorded.
    fs::remove_file(old.join("checksums.json")).unwrap();
    let state = old.join("trainer_state.json");
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(&state).unwrap()).unwrap();
    assert!(fields.remove("optimizer_updates").is_some());
    fs::write(&state, serde_json::to_string(&fields).unwrap()).unwrap();
    assert!(!old.join("chat_template.jinja").exists());

    let t = SftTrainer::new(
        toolgym_grpo::Policy::load(&source, DType::F32, &Device::Cpu).unwrap(),
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        config(3),
        run_section(dir.clone(), 1),
    )
    .unwrap();
    assert_eq!(t.step_count(), 3);
    t.policy().save(&saved).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(saved.join("generation_config.json")).unwrap())
            .unwrap();
    assert_eq!(written["temperature"], 0.7, "{written}");
    assert_eq!(written["top_p"], 0.8, "{written}");
    // The checkpoint's own ids stay.
    assert_eq!(
        written["eos_token_id"],
        serde_json::json!(t.policy().eos_token_ids)
    );
    assert_eq!(
        fs::read_to_string(saved.join("chat_template.jinja")).unwrap(),
        "{{ messages }}"
    );
    for d in [source, dir, saved] {
        let _ = fs::remove_dir_all(d);
    }
}

#[test]
fn a_run_directory_in_use_is_refused() {
    // Two runs in one directory would overwrite each other and both exit 0.
    let dir = run_dir("in-use");
    let held = toolgym_grpo::run_lock::RunLock::acquire(&dir).unwrap();
    let e = sft_run_error(&dir);
    assert!(e.contains("in use by another toolgym run"), "{e}");
    assert!(!dir.join("config.toml").exists());
    drop(held);
    fs::remove_dir_all(&dir).ok();
}

/// A model directory's sampling defaults (generation_config.json) and
/// chat template (chat_template.jinja, where transformers 5 keeps it)
/// survive a save of the policy loaded from it: the trained model is
/// sampled and prompted downstream as its source was. The eos and pad ids
/// are the policy's.
#[test]
fn a_saved_policy_keeps_its_sources_generation_config_and_chat_template() {
    let (source, saved, plain) = (
        run_dir("gc-source"),
        run_dir("gc-saved"),
        run_dir("gc-plain"),
    );
    let gen = tasks();
    let defaults = serde_json::json!({"do_sample": true, "temperature": 0.7, "top_p": 0.8,
        "top_k": 20, "repetition_penalty": 1.05, "eos_token_id": 1});
    let template =
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
    source_model(&gen, &source, &defaults, template);

    let loaded = toolgym_grpo::Policy::load(&source, DType::F32, &Device::Cpu).unwrap();
    loaded.save(&saved).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(saved.join("generation_config.json")).unwrap())
            .unwrap();
    for key in [
        "do_sample",
        "temperature",
        "top_p",
        "top_k",
        "repetition_penalty",
    ] {
        assert_eq!(written[key], defaults[key], "{key}");
    }
    assert_eq!(
        written["eos_token_id"],
        serde_json::json!(loaded.eos_token_ids)
    );
    assert_eq!(
        written["pad_token_id"],
        serde_json::json!(loaded.pad_token_id)
    );
    assert_eq!(
        fs::read_to_string(saved.join("chat_template.jinja")).unwrap(),
        template
    );
    // The built-in model has neither: a stub generation config, no template.
    policy(&gen).save(&plain).unwrap();
    let stub: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(plain.join("generation_config.json")).unwrap())
            .unwrap();
    assert!(stub.get("temperature").is_none(), "{stub}");
    assert!(!plain.join("chat_template.jinja").exists());
    // A checkpoint's optimiser state is readable as its other files are
    // (safetensors writes through a 0600 temporary file).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut sft = SftTrainer::new(
            policy(&gen),
            factory(),
            Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
            vec![],
            config(1),
            run_section(saved.clone(), 0),
        )
        .unwrap();
        sft.step().unwrap();
        let step = sft.save_checkpoint().unwrap();
        let mode = |f: &str| fs::metadata(step.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("optimizer.safetensors"), mode("trainer_state.json"));
        assert_eq!(mode("model.safetensors"), mode("trainer_state.json"));
    }
    for d in [source, saved, plain] {
        let _ = fs::remove_dir_all(d);
    }
}

/// A policy in f16 is refused by the trainers themselves, as the config's
/// `model.dtype = "f16"` is: without loss scaling its gradients underflow.
#[test]
fn an_f16_policy_is_refused_for_training() {
    let gen = tasks();
    let dir = run_dir("f16");
    let e = SftTrainer::new(
        builtin_policy(&gen, &builtin_spec(), DType::F16),
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        config(1),
        run_section(dir.clone(), 0),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("f16 training needs loss scaling"), "{e}");
    fs::remove_dir_all(&dir).ok();
}

/// A GRPO phase begun from the configured model beside a finished SFT
/// phase (`run.resume=false`) that stopped before its first checkpoint
/// goes on from that model when run again, not from the SFT result (it
/// switched to the SFT result, rebuilding its KL reference, with one
/// line on stderr).
#[test]
fn a_grpo_phase_begun_from_the_model_goes_on_from_it() {
    use toolgym_grpo::pipeline::{run_with, Phases, TaskSetup};
    let gen = tasks();
    let dir = run_dir("grpo-began-from-model");
    let mut cfg = builtin_run(&dir);
    cfg.grpo = grpo_config(1);
    let setup = || TaskSetup {
        factory: factory(),
        train: Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        validation: vec![],
        tokenizer_corpus: Some(gen.tokenizer_corpus(spec().template.as_ref(), 300)),
    };
    let reference = || fs::read(dir.join("grpo/reference/model.safetensors")).unwrap();
    let started = || fs::read_to_string(dir.join("grpo/started_from")).unwrap();
    // GRPO straight from the model, no SFT phase there: nothing to say;
    // stopped before its first checkpoint, then SFT, then GRPO: from the
    // SFT result (a marker saying "model" skipped it).
    run_with(&cfg, setup(), Phases::Grpo, |_| {}).unwrap();
    assert!(!dir.join("grpo/started_from").exists());
    fs::remove_dir_all(dir.join("grpo/checkpoints")).unwrap();
    run_with(&cfg, setup(), Phases::Sft, |_| {}).unwrap();
    // From SFT's result (the default), then from the model (resume off).
    run_with(&cfg, setup(), Phases::Grpo, |_| {}).unwrap();
    assert_eq!(started(), "sft");
    let from_sft = reference();
    cfg.run.resume = false;
    run_with(&cfg, setup(), Phases::Grpo, |_| {}).unwrap();
    assert_eq!(started(), "model");
    let from_model = reference();
    assert_ne!(from_model, from_sft);
    // Stopped before its first checkpoint (here: its checkpoints gone),
    // then run again with resume on: from the model again.
    fs::remove_dir_all(dir.join("grpo/checkpoints")).unwrap();
    cfg.run.resume = true;
    run_with(&cfg, setup(), Phases::Grpo, |_| {}).unwrap();
    assert_eq!(started(), "model");
    assert_eq!(reference(), from_model);
    fs::remove_dir_all(&dir).ok();
}
