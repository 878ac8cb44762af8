//! `toolgym train {grpo,sft}`: run a training phase from a TOML config.

use super::{io, CliResult};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use toolgym_grpo::pipeline::{self, Phases};
use toolgym_grpo::TrainConfig;

#[derive(Args, Debug)]
pub struct TrainCmd {
    #[command(subcommand)]
    phase: PhaseCmd,
}

#[derive(Subcommand, Debug)]
enum PhaseCmd {
    /// GRPO (the paper's method) from the config's model.
    Grpo(PhaseArgs),
    /// Supervised fine-tuning on the tasks' canonical replies.
    Sft(PhaseArgs),
}

#[derive(Args, Debug)]
struct PhaseArgs {
    /// TOML config; unset keys take the paper's defaults. Relative paths
    /// in it are read from the current directory, not the file's.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides such as `grpo.kl_coef=0` or `run.out_dir="runs/x"`: the
    /// value is a TOML literal (quote a string that reads as a number,
    /// a boolean or a date; other bare words are strings). Each key at
    /// most once.
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Resume even though the run directory's recorded config differs or
    /// is missing, or the checkpoint's run drew from other training tasks
    /// (`run.force=true`).
    #[arg(long)]
    force: bool,
}

pub fn run(a: TrainCmd) -> CliResult {
    let (phase, args) = match a.phase {
        PhaseCmd::Grpo(p) => (Phases::Grpo, p),
        PhaseCmd::Sft(p) => (Phases::Sft, p),
    };
    TrainConfig::check_distinct_overrides(&args.overrides)?;
    if args.force {
        TrainConfig::check_flags_not_overridden(&[("--force", "run.force")], &args.overrides)?;
    }
    let mut overrides = args.overrides;
    if args.force {
        overrides.push("run.force=true".into());
    }
    let cfg = TrainConfig::load(args.config.as_deref(), &overrides)?;
    // GRPO without `grpo.steps` runs `grpo.data_epochs` over the task file:
    // the total is known once the data is loaded, so the bar shows no length.
    let bar = indicatif::ProgressBar::new(match phase {
        Phases::Sft => cfg.sft.steps as u64,
        _ => cfg.grpo.steps.unwrap_or(0) as u64,
    });
    if !cfg.run.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(if phase == Phases::Sft { "sft" } else { "grpo" });
    let report = pipeline::run(&cfg, phase, |m| {
        bar.set_position(m.step as u64);
        let mut msg = match m.reward_mean {
            // No KL on a step without an update (or without a reference).
            Some(r) => format!(
                "reward {r:.3} kl {}",
                m.kl.map_or_else(|| "-".into(), |k| format!("{k:.4}"))
            ),
            // A GRPO step whose episodes all failed in their env.
            None if m.phase == "grpo" => {
                format!("envs failed ({})", m.env_failures.unwrap_or(0))
            }
            None => format!("loss {:.4}", m.loss),
        };
        if let Some(v) = m.val_accuracy {
            msg.push_str(&format!(" val {v:.3}"));
        }
        bar.set_message(msg);
    })?;
    bar.finish();
    let mut text = String::new();
    let mut line = |name: &str, r: &Option<toolgym_grpo::EvalReport>| {
        if let Some(r) = r {
            text.push_str(&format!(
                "{name}: validation accuracy {:.4} (mean reward {:.4}, {} tasks)\n",
                r.accuracy, r.mean_reward, r.summary.count
            ));
        }
    };
    if phase == Phases::Grpo {
        let before = match report.grpo_resumed_at {
            0 => "before".to_string(),
            n => format!("at resume (step {n})"),
        };
        line(&before, &report.before_grpo);
        line("after", &report.after_grpo);
    } else {
        line("after", &report.after_sft);
    }
    text.push_str(&format!(
        "metrics: {}\nfinal policy: {}\n",
        cfg.run.out_dir.join("metrics.jsonl").display(),
        cfg.run.out_dir.join("final").display()
    ));
    Ok(io::print_stdout(&text)?)
}
