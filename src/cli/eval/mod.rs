//! `toolgym eval <benchmark>`: benchmarks with their official semantics,
//! on completions from a file or from a local model. One module per
//! benchmark; this one holds what they share: reading completions, greedy
//! generation through the rollout engine, and writing verdict lines.
//!
//! The logic of each benchmark lives in the env crate
//! (`toolgym_env::data::{bfcl_eval, acebench, apibank}`). A new benchmark is
//! its library module there, one file here, and one `Bench` variant.

mod acebench;
mod api_bank;
mod bfcl;

use super::{io, CliResult};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toolgym_env::data::completions::{read_completions, Completions};
use toolgym_env::env::DynEnvFactory;
use toolgym_env::{ChatTemplate, Task};
use toolgym_grpo::{evaluate, parse_device, parse_dtype, EpisodeReward, Policy, RolloutLimits};

#[derive(Args, Debug)]
pub struct EvalCmd {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Berkeley Function-Calling Leaderboard (single-turn Python AST and
    /// irrelevance categories) with the official checker and aggregates.
    Bfcl(bfcl::BfclArgs),
    /// ACEBench (atom, single-turn, multi-turn, similar API, preference and
    /// special categories) with the official checker and aggregates.
    Acebench(acebench::AceArgs),
    /// API-Bank level-1 Call mode: each call executed on fresh databases
    /// and checked by the API's own rule.
    ApiBank(api_bank::ApiBankArgs),
}

pub fn run(a: EvalCmd) -> CliResult {
    match a.bench {
        Bench::Bfcl(b) => bfcl::run(b),
        Bench::Acebench(b) => acebench::run(b),
        Bench::ApiBank(b) => api_bank::run(b),
    }
}

/// Where replies come from and where verdicts go: the flags every
/// benchmark shares.
#[derive(Args, Debug)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["model", "completions", "write_prompts"])
))]
pub struct CaseArgs {
    /// Generate with this local Qwen2 model directory (greedy).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Judge these completions: JSON Lines of {"id", "completion"}; `-` =
    /// standard input.
    #[arg(long)]
    pub completions: Option<PathBuf>,
    /// Only write the prompts, JSON Lines of {"id", "category", "prompt"}
    /// rendered with --template, for generation elsewhere (vLLM, …); `-` =
    /// stdout.
    #[arg(long)]
    pub write_prompts: Option<PathBuf>,
    /// Judge only the first N cases of each category (ACEBench's
    /// multi-turn ones: on to the end of the Nth case's conversation;
    /// API-Bank: the first N samples, files in name order).
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub limit: Option<usize>,
    /// Per-case verdicts as JSON Lines (`{"id", "category", "valid",
    /// "error_type", …}`); `-` = stdout.
    #[arg(long, conflicts_with = "write_prompts")]
    pub out: Option<PathBuf>,
    /// The scores as JSON (per category and the official columns); `-` =
    /// stdout.
    #[arg(long, conflicts_with = "write_prompts")]
    pub summary: Option<PathBuf>,
    /// With --completions: judge only the cases that have a completion
    /// (by default a missing completion counts as a wrong answer).
    #[arg(long, requires = "completions")]
    pub skip_missing: bool,
    #[command(flatten)]
    pub gen: ModelArgs,
}

impl CaseArgs {
    /// `completions FILE` or `model DIR (greedy)`, for the table's title.
    fn source(&self) -> String {
        match (&self.model, &self.completions) {
            (_, Some(p)) => format!("completions {}", p.display()),
            (Some(m), None) => format!("model {} (greedy)", m.display()),
            _ => String::new(),
        }
    }

    /// ` | --limit N: …` when the categories are partial.
    fn limit_note(&self) -> String {
        match self.limit {
            Some(n) => format!(" | --limit {n}: partial categories, not comparable"),
            None => String::new(),
        }
    }
}

/// A benchmark's cases, ready for the shared flow: ids, their prompts
/// and the environments that generate replies.
pub struct Prompted<'a> {
    /// Case ids, in case order.
    pub ids: Vec<&'a str>,
    /// Category of each case (written with the prompts).
    pub categories: Vec<&'a str>,
    /// Task of each case (an error for a case that cannot be prompted).
    pub tasks: &'a [Result<Arc<Task>, String>],
    /// The template the tasks are rendered with, and its name.
    pub template: (&'a dyn ChatTemplate, &'a str),
    /// Single-turn environments for generation.
    pub envs: Arc<dyn DynEnvFactory>,
    /// The benchmark's data directory (no output may be written there).
    pub data_dir: &'a Path,
    /// Whether the judge reads Tool-N1 text (what a completion given as a
    /// chat message is read back as); if not, such completions are warned
    /// about.
    pub reads_tool_n1: bool,
    /// `None` when the judge's decoder reads replies in the format the
    /// prompts ask for; else what they ask for and the flag that reads it.
    /// Generating with `--model`, or writing the prompts for another
    /// program to answer (`--write-prompts`), is then refused (every reply
    /// would score 0, and a no-call category near 100%).
    pub format_mismatch: Option<&'static str>,
}

/// The cases to judge, their replies, and where the verdicts go.
pub struct Judged {
    /// The indices of the cases to judge (all of them unless
    /// `--skip-missing` dropped some).
    pub kept: Vec<usize>,
    /// Their replies, aligned (`None`: missing, a wrong answer).
    pub replies: Vec<Option<String>>,
    /// `--out` and `--summary`, already open.
    pub outputs: Outputs,
    /// Why the scores are partial (`--skip-missing` left cases out), for
    /// the table and the summary.
    pub partial: Option<String>,
    /// `--limit`: the first N cases of each category only (the summary
    /// says so in a key of its own, `limit`, besides the title line).
    pub limit: Option<usize>,
}

/// `--out` and `--summary`, opened before any case is judged or generated:
/// a path that cannot be written fails at once, not after the work.
pub struct Outputs {
    out: Option<io::Output>,
    summary: Option<io::Output>,
    /// `--save-completions`, opened with the others (a path that cannot be
    /// written fails before the model loads); taken by the generation.
    saved: Option<io::InPlace>,
    /// Whether one of them is stdout (the table then goes to stderr).
    stdout_taken: bool,
}

impl Outputs {
    fn open(a: &CaseArgs) -> CliResult<Self> {
        let inputs: Vec<&Path> = a.completions.iter().map(PathBuf::as_path).collect();
        let open = |path: &Option<PathBuf>| -> CliResult<Option<io::Output>> {
            match path {
                Some(p) => {
                    io::check_not_an_input(p, &inputs)?;
                    Ok(Some(io::open_output(p)?))
                }
                None => Ok(None),
            }
        };
        let saved = match &a.gen.save_completions {
            Some(p) => {
                io::check_not_an_input(p, &inputs)?;
                Some(io::InPlace::create(p)?)
            }
            None => None,
        };
        Ok(Self {
            out: open(&a.out)?,
            summary: open(&a.summary)?,
            saved,
            stdout_taken: [&a.out, &a.summary, &a.gen.save_completions]
                .iter()
                .any(|p| p.as_deref().is_some_and(io::is_stdout)),
        })
    }
}

/// Runs the flow every benchmark shares: write the prompts (then `None`),
/// or read the completions / generate them, the outputs opened first.
fn obtain_replies(a: &CaseArgs, p: &Prompted<'_>) -> CliResult<Option<Judged>> {
    // clap's `requires` takes any member of the source group for the one
    // named, so these are checked here.
    if a.gen.save_completions.is_some() && a.model.is_none() {
        return Err("--save-completions needs --model (it writes what the model generates)".into());
    }
    if a.model.is_none() {
        let g = &a.gen;
        let given = [
            ("--max-new-tokens", g.max_new_tokens.is_some()),
            ("--batch-size", g.batch_size.is_some()),
            ("--dtype", g.dtype.is_some()),
            ("--device", g.device.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
            return Err(format!("{flag} needs --model (it sets how the model generates)").into());
        }
    }
    if a.skip_missing && a.completions.is_none() {
        return Err("--skip-missing needs --completions (it leaves out cases without one)".into());
    }
    let outputs: Vec<(&str, &Path)> = [
        ("--write-prompts", &a.write_prompts),
        ("--out", &a.out),
        ("--summary", &a.summary),
        ("--save-completions", &a.gen.save_completions),
    ]
    .into_iter()
    .filter_map(|(flag, path)| path.as_deref().map(|p| (flag, p)))
    .collect();
    io::check_outputs(&outputs, p.data_dir)?;
    let mismatch = || {
        format!(
            "the prompts of --template {} ask for replies in another format than the judge \
             reads: every reply would score 0, and a category without calls near 100%; {}",
            p.template.1,
            p.format_mismatch.unwrap_or_default()
        )
    };
    if let Some(path) = &a.write_prompts {
        // Prompts for another program's model, judged later with these
        // flags: refused as generating here is.
        if p.format_mismatch.is_some() {
            return Err(format!(
                "{} (--write-prompts writes prompts to be judged with these flags)",
                mismatch()
            )
            .into());
        }
        write_prompts(path, &p.ids, p.tasks, p.template, |i| {
            let mut m = serde_json::Map::new();
            m.insert("category".into(), p.categories[i].into());
            m
        })?;
        return Ok(None);
    }
    let mut outputs = Outputs::open(a)?;
    let all: Vec<usize> = (0..p.ids.len()).collect();
    match (&a.model, &a.completions) {
        (_, Some(path)) => {
            let done = load_completions(path, p.ids.iter().copied())?;
            if done.messages > 0 && !p.reads_tool_n1 {
                eprintln!(
                    "warning: {}: {} completion(s) are chat messages, read back as Tool-N1 text \
                     (<think>…</think><tool_call>[…]</tool_call>), which this decoder does not \
                     read: they score 0 here; judge them with the tool-n1 decoder, or give the \
                     model's own text",
                    path.display(),
                    done.messages
                );
            }
            let answered: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&i| done.get(p.ids[i]).is_some())
                .collect();
            if answered.is_empty() {
                // The wrong file (or the wrong benchmark): not a score of 0.
                return Err(format!(
                    "{}: no completion for any of the selected cases ({} usable line(s), {} bad)",
                    path.display(),
                    done.by_id.len(),
                    done.bad_lines.len()
                )
                .into());
            }
            let mut partial = None;
            let kept = if a.skip_missing {
                if answered.len() < all.len() {
                    let note = format!(
                        "--skip-missing: {} of {} case(s) judged, {} without a completion left \
                         out: partial scores, not comparable",
                        answered.len(),
                        all.len(),
                        all.len() - answered.len()
                    );
                    eprintln!("warning: {note}");
                    partial = Some(note);
                }
                answered
            } else {
                all
            };
            let ids: Vec<&str> = kept.iter().map(|&i| p.ids[i]).collect();
            let replies = completions_for(&done, &ids);
            Ok(Some(Judged {
                kept,
                replies,
                outputs,
                partial,
                limit: a.limit,
            }))
        }
        (Some(_), None) if p.format_mismatch.is_some() => Err(mismatch().into()),
        (Some(model), None) => {
            let saved = outputs.saved.take();
            let replies =
                generate_completions(&a.gen, model, &p.ids, p.tasks, p.template.0, &p.envs, saved)?;
            Ok(Some(Judged {
                kept: all,
                replies,
                outputs,
                partial: None,
                limit: a.limit,
            }))
        }
        (None, None) => Err("give --model DIR, --completions FILE or --write-prompts FILE".into()),
    }
}

/// Writes the verdicts (`--out`) and the summary (`--summary`), then
/// prints the table (to stderr when a JSON output owns stdout).
fn report<T: Serialize>(
    judged: Judged,
    verdicts: &[T],
    mut summary: serde_json::Value,
    mut table: String,
) -> CliResult {
    let outputs = judged.outputs;
    if let serde_json::Value::Object(m) = &mut summary {
        // What was run (data, rule or decoder, source, limits): the
        // table's title line; and why the scores are partial.
        let title = table.lines().next().unwrap_or_default();
        m.insert("run".into(), title.into());
        if let Some(note) = &judged.partial {
            m.insert("partial".into(), note.as_str().into());
        }
        if let Some(n) = judged.limit {
            m.insert("limit".into(), n.into());
        }
    }
    if let Some(note) = &judged.partial {
        table.push_str(&format!("\nnote: {note}\n"));
    }
    // Both written before either gets its name: a failed summary (a full
    // disk) leaves no new verdicts beside an old summary.
    let mut verdict_file = outputs.out;
    if let Some(out) = verdict_file.as_mut() {
        for v in verdicts {
            serde_json::to_writer(&mut *out, v)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    let mut summary_file = outputs.summary;
    if let Some(out) = summary_file.as_mut() {
        serde_json::to_writer_pretty(&mut *out, &summary)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    // Renamed one after the other: a rename that fails after the first
    // (rare, once both are written) says that the two are now of two runs.
    let mut named = None;
    for (flag, out) in [("--out", verdict_file), ("--summary", summary_file)] {
        let Some(out) = out else { continue };
        if let Err(e) = out.finish() {
            return Err(match named {
                Some(done) => format!(
                    "{e}; {done} was written already: it is this run's, {flag} is not (it holds \
                     what it held before, if anything)"
                )
                .into(),
                None => e.into(),
            });
        }
        named = Some(flag);
    }
    if outputs.stdout_taken {
        eprint!("{table}");
    } else {
        io::print_stdout(&table)?;
    }
    Ok(())
}

/// The flags of generation with a local model, shared by every benchmark;
/// each given without --model is refused (it would do nothing).
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// With --model: most tokens generated per case [default: 1024].
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub max_new_tokens: Option<usize>,
    /// With --model: prompts decoded together [default: 8].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// With --model: weights dtype [default: f32].
    #[arg(long, value_parser = super::dtypes(), ignore_case = true)]
    pub dtype: Option<String>,
    /// With --model: cpu, cuda or cuda:N [default: cpu].
    #[arg(long)]
    pub device: Option<String>,
    /// With --model: also write the generated {"id", "completion"} lines
    /// here (judge them again later with --completions). Written as they
    /// are made under a temporary name beside it (`FILE.unfinished-PID`),
    /// renamed FILE when all are in: a run that fails or is killed
    /// half-way keeps its lines there (said on stderr, and by the next run;
    /// never removed) and leaves an earlier FILE as it was.
    #[arg(long, requires = "model")]
    pub save_completions: Option<PathBuf>,
}

/// Reads a completions file (`-` = stdin), warning about bad lines,
/// repeated ids and ids that are not among `known`.
fn load_completions<'a>(
    path: &Path,
    known: impl IntoIterator<Item = &'a str>,
) -> CliResult<Completions> {
    // A file or stdin (a terminal said, a byte-order mark skipped), read
    // once: a JSON list is told by the first bytes the reader holds.
    let mut input = io::open_input(path, "--completions")?;
    let list = std::io::BufRead::fill_buf(&mut input).is_ok_and(opens_a_list);
    let done =
        read_completions(input).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // The first few, then a count (a pretty-printed JSON list gave one
    // warning per line of it).
    const SHOWN: usize = 20;
    for bad in done.bad_lines.iter().take(SHOWN) {
        eprintln!("warning: {}: skipped {bad}", path.display());
    }
    if !done.bad_lines.is_empty() {
        let more = done.bad_lines.len().saturating_sub(SHOWN);
        eprintln!(
            "warning: {}: {} bad line(s) skipped{}",
            path.display(),
            done.bad_lines.len(),
            match more {
                0 => String::new(),
                n => format!(" ({n} not shown)"),
            }
        );
        if list {
            // A list laid out one object per line reads its last element
            // (no comma after it) and judges the rest missing: an error,
            // not a score.
            return Err(format!(
                "{}: the file starts with `[`: completions are JSON Lines, one \
                 {{\"id\", \"completion\"}} object per line, not a JSON list",
                path.display()
            )
            .into());
        }
    }
    if !done.repeated_ids.is_empty() {
        eprintln!(
            "warning: {}: {} id(s) given more than once (the last line wins): {}",
            path.display(),
            done.repeated_ids.len(),
            preview(done.repeated_ids.iter().map(|id| {
                let lines = done.repeated_lines.get(id).map_or(String::new(), |ls| {
                    ls.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                format!("{id} (lines {lines})")
            }))
        );
    }
    let unknown = done.unknown_ids(known);
    if !unknown.is_empty() {
        eprintln!(
            "warning: {}: {} completion(s) for ids not among the judged cases (not in the data, \
             or left out by --limit or the categories; ignored): {}",
            path.display(),
            unknown.len(),
            preview(
                unknown
                    .iter()
                    .map(|(line, id)| format!("{id} (line {line})"))
            )
        );
    }
    Ok(done)
}

/// Whether `head`, the first bytes of a completions input (its
/// byte-order mark skipped by [`io::open_input`]), open a JSON list where
/// JSON Lines are wanted.
fn opens_a_list(head: &[u8]) -> bool {
    head.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'[')
}

/// The completion of each id (`None`: missing, warned about; it counts as
/// a wrong answer).
fn completions_for(done: &Completions, ids: &[&str]) -> Vec<Option<String>> {
    let missing: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| done.get(id).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "warning: {} case(s) have no completion and count as wrong: {}",
            missing.len(),
            preview(missing.iter().copied())
        );
    }
    ids.iter()
        .map(|id| done.get(id).map(String::from))
        .collect()
}

/// The first few items, then `… (N more)`.
fn preview<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let mut shown = Vec::new();
    let mut more = 0;
    for item in items {
        if shown.len() < 5 {
            shown.push(item.as_ref().to_string());
        } else {
            more += 1;
        }
    }
    let mut s = shown.join(", ");
    if more > 0 {
        s.push_str(&format!(", … ({more} more)"));
    }
    s
}

/// Writes `{"id", …extra, "prompt"}` lines: each task rendered by
/// `template` (named `template_name` in the message). A case that cannot be
/// prompted is skipped with a warning, and counted.
fn write_prompts(
    path: &Path,
    ids: &[&str],
    tasks: &[Result<Arc<Task>, String>],
    (template, template_name): (&dyn ChatTemplate, &str),
    extra: impl Fn(usize) -> serde_json::Map<String, serde_json::Value>,
) -> CliResult {
    let mut out = io::open_output(path)?;
    let mut skipped = 0;
    for (i, (id, t)) in ids.iter().zip(tasks).enumerate() {
        let t = match t {
            Ok(t) => t,
            Err(e) => {
                eprintln!("warning: {id}: cannot build the prompt (skipped): {e}");
                skipped += 1;
                continue;
            }
        };
        let mut line = serde_json::Map::new();
        line.insert("id".into(), (*id).into());
        line.extend(extra(i));
        line.insert("prompt".into(), template.prompt(t).into());
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    if skipped > 0 && skipped == ids.len() {
        // Nothing is written (the file gets its name only when finished).
        return Err(format!(
            "none of the {skipped} case(s) could be prompted (each said above): no prompt \
             written"
        )
        .into());
    }
    out.finish()?;
    eprintln!(
        "wrote {} prompt(s) ({template_name} template) to {}",
        ids.len() - skipped,
        path.display()
    );
    if skipped > 0 {
        eprintln!("warning: {skipped} case(s) could not be prompted and were skipped");
    }
    Ok(())
}

/// Most sequences `--batch-size` may ask for in one generation batch.
const MAX_BATCH: usize = 4096;

/// Greedy completions of every task with a local model, in task order
/// (`None` for a task that could not be prompted or whose prompt does not
/// fit), generated through the rollout engine with `envs` (which make one
/// single-turn env per task).
fn generate_completions(
    a: &ModelArgs,
    model_dir: &Path,
    ids: &[&str],
    tasks: &[Result<Arc<Task>, String>],
    template: &dyn ChatTemplate,
    envs: &Arc<dyn DynEnvFactory>,
    mut saved: Option<io::InPlace>,
) -> CliResult<Vec<Option<String>>> {
    // The defaults the flags' help names (Options, so that one given
    // without --model is refused: `obtain_replies`).
    let batch_size = a.batch_size.unwrap_or(8);
    let max_new_tokens = a.max_new_tokens.unwrap_or(1024);
    let dtype = parse_dtype(a.dtype.as_deref().unwrap_or("f32"))?;
    let device = parse_device(a.device.as_deref().unwrap_or("cpu"))?;
    if !(1..=MAX_BATCH).contains(&batch_size) {
        return Err(
            format!("--batch-size must be from 1 to {MAX_BATCH} (got {batch_size})").into(),
        );
    }
    let policy = Policy::load_frozen(model_dir, dtype, &device)?;
    let max_pos = policy.model.config().max_position_embeddings;
    if max_new_tokens >= max_pos {
        return Err(format!(
            "--max-new-tokens {max_new_tokens} leaves no room for a prompt: the model's context \
             (max_position_embeddings) is {max_pos} tokens"
        )
        .into());
    }
    let limits = RolloutLimits {
        max_prompt_tokens: max_pos.saturating_sub(max_new_tokens),
        truncate_prompts: false,
        max_response_tokens: max_new_tokens,
        max_turns: 1,
        max_episode_tokens: 0,
        reward: EpisodeReward::Sum,
        // The built-in single-turn env only records the reply: no limit.
        env_timeout: None,
        env_concurrency: toolgym_grpo::rollout::ENV_CONCURRENCY,
    };
    let mut todo: Vec<(usize, usize, Arc<Task>)> = Vec::with_capacity(tasks.len());
    let mut unusable = 0;
    for (i, task) in tasks.iter().enumerate() {
        match task {
            Ok(t) => {
                let len = policy.tokenizer.encode(&template.prompt(t))?.len();
                todo.push((i, len, t.clone()));
            }
            Err(e) => {
                eprintln!("warning: {}: cannot build the prompt: {e}", ids[i]);
                unusable += 1;
            }
        }
    }
    // Longest first: similar lengths share a batch (less padding), and an
    // out-of-memory batch shows up at once.
    todo.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let bar = indicatif::ProgressBar::new(todo.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("generating [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut out: Vec<Option<String>> = vec![None; tasks.len()];
    // Written in place as they are generated, a chunk at a time: a
    // generation stopped half-way keeps what it made.
    for chunk in todo.chunks(batch_size * 4) {
        let batch: Vec<Arc<Task>> = chunk.iter().map(|(_, _, t)| t.clone()).collect();
        let report = evaluate(&policy, envs, &batch, &limits, batch_size, None)?;
        for ((i, _, _), episode) in chunk.iter().zip(&report.episodes) {
            if let Some(e) = &episode.error {
                eprintln!("warning: {}: {e}", ids[*i]);
                unusable += 1;
                continue;
            }
            let text = episode.last_reply().to_string();
            if let Some(w) = saved.as_mut() {
                serde_json::to_writer(
                    &mut *w,
                    &serde_json::json!({"id": ids[*i], "completion": text}),
                )?;
                w.write_all(b"\n")?;
            }
            out[*i] = Some(text);
        }
        if let Some(w) = saved.as_mut() {
            w.flush()?;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if unusable > 0 && unusable == tasks.len() {
        // No completion at all: the model or the settings, not a score of
        // 0 (as --completions refuses a file that answers no case).
        return Err(format!(
            "none of the {unusable} case(s) could be generated (each said above); nothing to \
             judge"
        )
        .into());
    }
    if unusable > 0 {
        eprintln!("warning: {unusable} case(s) not generated count as wrong");
    }
    if let Some(w) = saved {
        w.finish()?;
    }
    Ok(out)
}
