//! The rollout engine: runs the episodes of any [`ToolEnv`] (made by an
//! [`EnvFactory`](toolgym_env::env::EnvFactory)) in lockstep and records
//! them as token-level [`Trajectory`]s. GRPO, SFT, validation and the
//! evaluation CLI all generate through it; single-turn tasks are the
//! one-step case.
//!
//! Each turn:
//! 1. the [`Actor`] writes one reply for every live episode — for the
//!    policy, one batched `generate` call over all of them ([`Sampler`]);
//! 2. each env `step`s on a worker thread (`ToolEnv: Send`), panics caught
//!    at this boundary: a failing env ends its episode with
//!    [`EndReason::EnvError`] and reward 0, and the rollout goes on. With
//!    [`RolloutLimits::env_timeout`], a `make` (the factory's, with the
//!    env's `name`), `reset`,
//!    `demonstration` (for an actor that asks for them, SFT's),
//!    `step` or `truncate` that has not returned by then fails its episode
//!    the same way (the call is abandoned on its thread and counted by
//!    [`stuck_env_calls`] until it returns), and an env whose episode is
//!    over is dropped on a worker thread, not waited for (a `Drop`
//!    still running after the limit is counted too);
//!    a non-finite reward, or one
//!    beyond [`MAX_EPISODE_REWARD`] in magnitude, fails it too;
//! 3. an episode that goes on gets the environment's tokens appended with
//!    train mask 0: the new prompt must start with the old prompt, the
//!    reply exactly as the model wrote it and its end-of-turn token, and
//!    only the rest is tokenised. Model tokens are never re-tokenised. An
//!    observation that breaks this fails its episode as an env error whose
//!    message names the env, the task, the turn and the byte where the two
//!    texts part (a template bug fails every episode: `env_failures` and
//!    `env_error` in the step's metrics show it).
//!
//! Episodes end when the env ends them, at `max_turns`, or when the token
//! budget runs out (`max_episode_tokens`, prompt plus every turn); the last
//! two are handed to [`ToolEnv::truncate`], whose reward is the truncated
//! episode's. A first prompt over `max_prompt_tokens` is not run: its
//! trajectory is empty, counted, and judged `token_limit` (or, only when
//! asked for with `truncate_prompts`, its first tokens are cut off).
//!
//! If the model ends a reply with an end-of-turn id other than the one the
//! template writes (`<|endoftext|>` where ChatML has `<|im_end|>`), the
//! sampled id stays in the trajectory in place of the template's.

mod actor;
mod trajectory;
mod workers;

pub use actor::{Actor, Demonstrator, LiveEpisode, Reply, ReplyEnd, Sampler};
pub use trajectory::{EpisodeReward, StepOutcome, Trajectory};

use crate::TrainError;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use toolgym_env::catch_quietly;
use toolgym_env::env::DynEnvFactory;
use toolgym_env::{EndReason, Step, Task, ToolEnv};
use toolgym_model::Tokenizer;

/// Limits of a rollout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RolloutLimits {
    /// Longest first prompt, in tokens (a longer one is not run, unless
    /// `truncate_prompts`).
    pub max_prompt_tokens: usize,
    /// Keep the last `max_prompt_tokens` of a longer first prompt instead
    /// of leaving the episode out (counted in the trajectory's
    /// `prompt_cut`).
    pub truncate_prompts: bool,
    /// Longest reply per turn, in tokens.
    pub max_response_tokens: usize,
    /// Most model turns per episode.
    pub max_turns: usize,
    /// Most tokens per episode: the prompt plus every turn (0 = no limit
    /// but the model's context).
    pub max_episode_tokens: usize,
    /// How an episode's reward is made from its steps'.
    pub reward: EpisodeReward,
    /// Longest a call into an env (the factory's `make`, `reset`,
    /// `demonstration`, `step`, `truncate`) may take: a call
    /// still running then fails its episode ([`EndReason::EnvError`]) and
    /// the rollout goes on without it. The call runs on a worker thread
    /// (reused, see `rollout/workers.rs`), which is left running it (a call
    /// cannot be stopped from outside), and the env is dropped with it. An
    /// env's `Drop` runs on a worker thread once its episode is over, and
    /// the rollout does not wait for it (one still running after this limit is counted by
    /// [`stuck_env_calls`], and fails nothing). `None`: calls, drops
    /// included, run in place and are waited for however long they take.
    pub env_timeout: Option<Duration>,
    /// With `env_timeout`, how many episodes' env calls run at once (each
    /// call on a worker thread, a rollout pool worker waiting for it); 0 (the
    /// default, [`ENV_CONCURRENCY`]): one per compute thread. Raise it for
    /// envs that wait on I/O (an HTTP API, a sandbox); lower it to spare
    /// a rate-limited service. Calls of envs that compute should stay near
    /// the core count: each call's time limit runs from its start, and
    /// calls sharing the cores take longer. Without a limit, env calls run
    /// on the compute threads.
    pub env_concurrency: usize,
}

/// The default [`RolloutLimits::env_concurrency`]: 0, one per compute
/// thread.
pub const ENV_CONCURRENCY: usize = 0;

/// The most [`RolloutLimits::env_concurrency`] may ask for.
pub const MAX_ENV_CONCURRENCY: usize = 4096;

/// The episodes of one task: `n` of them, reset with one seed.
#[derive(Clone, Debug)]
pub struct EpisodeGroup {
    /// The task.
    pub task: Arc<Task>,
    /// Episodes to run.
    pub n: usize,
    /// The seed every episode of the group is reset with.
    pub reset_seed: u64,
    /// The seed the actor samples the group's replies from.
    pub sample_seed: u64,
}

/// What the engine needs of the model side: its tokenizer, end-of-turn ids
/// and context length.
#[derive(Clone, Copy)]
pub struct TokenSpace<'a> {
    /// Encodes prompts and environment text; decodes end-of-turn ids.
    pub tokenizer: &'a Tokenizer,
    /// Ids that end a reply.
    pub eos_token_ids: &'a [u32],
    /// The model's context length (`max_position_embeddings`).
    pub max_context: usize,
    /// The model's vocabulary (`vocab_size`, its embedding rows): env text
    /// that tokenises to an id at or past it (a special token the
    /// tokenizer has and the model does not) fails its episode.
    pub vocab_size: usize,
}

impl TokenSpace<'_> {
    /// The first id of `ids` past the model's vocabulary, said as the
    /// failure of the text `what` names.
    fn out_of_vocabulary(&self, ids: &[u32], what: &str) -> Option<String> {
        let bad = ids.iter().find(|&&id| id as usize >= self.vocab_size)?;
        let token = self.tokenizer.id_to_token(*bad).unwrap_or_default();
        Some(format!(
            "{what} holds token id {bad} ({token:?}), past the model's vocab_size {} (a token \
             of the tokenizer the model has no embedding for)",
            self.vocab_size
        ))
    }
}

/// One episode in flight.
struct Slot {
    env: Option<Box<dyn ToolEnv>>,
    group: usize,
    member: usize,
    seed: u64,
    traj: Trajectory,
    /// The text the context's tokens stand for.
    text: String,
    /// Whether the episode still takes turns.
    live: bool,
    /// The per-turn limit of the reply being written (to tell a budget cut
    /// from a per-turn cut).
    budget: usize,
    /// The rollout's [`RolloutLimits::env_timeout`] (for dropping the env).
    timeout: Option<Duration>,
}

impl Slot {
    fn context(&self) -> Vec<u32> {
        let mut c = self.traj.prompt.clone();
        c.extend_from_slice(&self.traj.tokens);
        c
    }
}

/// Runs every episode of `groups` to its end; returns, per group, its
/// trajectories in member order. Errors only when the model (or the
/// actor) fails; env failures (panics, time-outs, non-finite rewards,
/// observations that break the prompt-extension contract) end their
/// episode and are recorded in it.
pub fn run_episodes(
    factory: &Arc<dyn DynEnvFactory>,
    groups: &[EpisodeGroup],
    actor: &mut dyn Actor,
    tokens: TokenSpace<'_>,
    limits: &RolloutLimits,
) -> Result<Vec<Vec<Trajectory>>, TrainError> {
    let mut slots: Vec<Slot> = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for member in 0..group.n {
            slots.push(Slot {
                env: None,
                group: g,
                member,
                seed: group.sample_seed,
                traj: Trajectory::new(group.task.clone(), group.reset_seed),
                text: String::new(),
                live: true,
                budget: 0,
                timeout: limits.env_timeout,
            });
        }
    }
    let played = play(&mut slots, factory, actor, tokens, limits);
    if played.is_err() {
        // The rollout stops here: the envs still held go as every env
        // goes (not waited for), so a `Drop` that hangs cannot hide the
        // error.
        slots.iter_mut().for_each(drop_env);
    }
    played?;
    let mut out: Vec<Vec<Trajectory>> = groups.iter().map(|g| Vec::with_capacity(g.n)).collect();
    for mut s in slots {
        finish(&mut s.traj, limits);
        out[s.group].push(s.traj);
    }
    Ok(out)
}

/// Starts every slot's episode and plays turns until none is live.
fn play(
    slots: &mut [Slot],
    factory: &Arc<dyn DynEnvFactory>,
    actor: &mut dyn Actor,
    tokens: TokenSpace<'_>,
    limits: &RolloutLimits,
) -> Result<(), TrainError> {
    in_env_pool(limits, || {
        slots
            .par_iter_mut()
            .try_for_each(|s| start(s, factory, tokens, limits))
    })?;
    let mut turn = 0;
    loop {
        turn += 1;
        let mut live: Vec<(usize, Vec<u32>, usize, Option<String>)> = Vec::new();
        for (i, s) in slots.iter_mut().enumerate().filter(|(_, s)| s.live) {
            let context = s.context();
            let budget = reply_budget(context.len(), tokens.max_context, limits);
            if budget == 0 || turn > limits.max_turns {
                let why = if budget == 0 {
                    EndReason::TokenLimit
                } else {
                    EndReason::TurnLimit
                };
                truncate(s, why, limits.env_timeout);
                continue;
            }
            s.budget = budget;
            live.push((i, context, budget, None));
        }
        if actor.wants_demonstrations() {
            demonstrate(slots, &mut live, turn, limits);
        }
        if live.is_empty() {
            break;
        }
        let replies = {
            let episodes: Vec<LiveEpisode<'_>> = live
                .iter_mut()
                .map(|(i, context, budget, demonstration)| {
                    let s = &slots[*i];
                    LiveEpisode {
                        context,
                        group: s.group,
                        member: s.member,
                        seed: s.seed,
                        turn,
                        max_tokens: *budget,
                        env: s.env.as_deref().expect("a live episode has an env"),
                        demonstration: demonstration.take(),
                    }
                })
                .collect();
            actor.act(&episodes)?
        };
        if replies.len() != live.len() {
            return Err(TrainError::Env(format!(
                "the actor gave {} replies for {} live episodes",
                replies.len(),
                live.len()
            )));
        }
        let todo: Vec<(&mut Slot, Option<Reply>)> = slots_at(slots, live.iter().map(|(i, ..)| *i))
            .into_iter()
            .zip(replies)
            .collect();
        in_env_pool(limits, || {
            todo.into_par_iter()
                .try_for_each(|(s, reply)| take_turn(s, reply, turn, tokens, limits))
        })?;
    }
    Ok(())
}

/// Asks the env of every `live` episode for its demonstration of this
/// turn ([`ToolEnv::demonstration`], timed and caught like every env
/// call), into each entry's last field. An episode whose env fails or does
/// not return in time ends as an env failure and leaves `live`.
fn demonstrate(
    slots: &mut [Slot],
    live: &mut Vec<(usize, Vec<u32>, usize, Option<String>)>,
    turn: usize,
    limits: &RolloutLimits,
) {
    let timeout = limits.env_timeout;
    let asked: Vec<(&mut Slot, &mut Option<String>)> =
        slots_at(slots, live.iter().map(|(i, ..)| *i))
            .into_iter()
            .zip(live.iter_mut().map(|(.., demo)| demo))
            .collect();
    let what = format!("demonstration (turn {turn})");
    in_env_pool(limits, || {
        asked.into_par_iter().for_each(|(s, demo)| {
            *demo = guarded(s, &what, timeout, |env| env.demonstration()).flatten();
        })
    });
    live.retain(|(i, ..)| slots[*i].live);
}

/// The slots at `at` (indices in increasing order), each borrowed on its
/// own.
fn slots_at(slots: &mut [Slot], at: impl IntoIterator<Item = usize>) -> Vec<&mut Slot> {
    let mut at = at.into_iter().peekable();
    slots
        .iter_mut()
        .enumerate()
        .filter_map(|(i, s)| at.next_if_eq(&i).map(|_| s))
        .collect()
}

/// The longest first prompt an episode may start from: `max_prompt_tokens`,
/// and one token short of the model's context (a reply needs room).
pub fn prompt_limit(max_prompt_tokens: usize, max_context: usize) -> usize {
    max_prompt_tokens.min(max_context.saturating_sub(1))
}

/// The limit that applied, for a message: `setting = value`, or the
/// model's context where that is the smaller (a model of 512 positions
/// under the paper's 4096-token prompt limit).
pub fn limit_named(setting: &str, value: usize, max_context: usize) -> String {
    if max_context <= value {
        format!(
            "the model's context of {max_context} tokens (max_position_embeddings; {setting} is \
             {value})"
        )
    } else {
        format!("{setting} = {value}")
    }
}

/// Tokens the next reply may have: the per-turn limit, capped by what is
/// left of the episode budget and of the model's context.
fn reply_budget(context: usize, max_context: usize, limits: &RolloutLimits) -> usize {
    let mut budget = limits.max_response_tokens;
    if limits.max_episode_tokens > 0 {
        budget = budget.min(limits.max_episode_tokens.saturating_sub(context));
    }
    budget.min(max_context.saturating_sub(context))
}

/// How a call into an env failed.
pub(crate) enum CallFailure {
    /// It panicked (the message).
    Panicked(String),
    /// It had not returned after this long (the env was abandoned on the
    /// call's thread).
    TimedOut(Duration),
    /// No thread could be started for it.
    NoThread(std::io::Error),
}

impl CallFailure {
    /// What failed, for a trajectory's error: `{what} panicked: …`.
    pub(crate) fn describe(&self, what: &str) -> String {
        match self {
            CallFailure::Panicked(m) => format!("{what} panicked: {m}"),
            CallFailure::TimedOut(limit) => format!(
                "{what} did not return within {} s (env_timeout); it was left running on its \
                 thread",
                limit.as_secs_f64()
            ),
            CallFailure::NoThread(e) => format!("{what} could not start a thread: {e}"),
        }
    }
}

/// Env calls that were given up on (they ran past the time limit) and
/// have not returned since, in this process.
static STUCK_CALLS: AtomicUsize = AtomicUsize::new(0);

/// How many env calls (`make` with `name`, `reset`, `demonstration`, `step`,
/// `truncate`, an env's `Drop`) were given up on after the time limit and
/// are still running on their threads, in this process. Each holds a
/// thread and its env; the number stays up while an env is hung, and
/// comes down as late calls return.
pub fn stuck_env_calls() -> usize {
    STUCK_CALLS.load(Ordering::Relaxed)
}

/// Runs `f`, catching a panic and, with `timeout`, giving up after it:
/// then `f` runs on a worker thread of its own (an idle one reused, see
/// [`workers`]), which is left running if the time runs out (counted by
/// [`stuck_env_calls`] until it returns; what it returns is then dropped
/// there). When no thread can
/// be started, `f` is leaked, not dropped: what it holds (an env whose
/// `Drop` may hang) must not run here untimed.
pub(crate) fn timed<T: Send + 'static>(
    timeout: Option<Duration>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CallFailure> {
    let Some(limit) = timeout else {
        return catch_quietly(f).map_err(panicked);
    };
    const RUNNING: u8 = 0;
    const DONE: u8 = 1;
    const ABANDONED: u8 = 2;
    let state = Arc::new(AtomicU8::new(RUNNING));
    let theirs = state.clone();
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = workers::run_detached(f, move |f| {
        let result = catch_quietly(f);
        if theirs.swap(DONE, Ordering::AcqRel) == ABANDONED {
            // Nobody waits: drop what it returned here (a panic in an
            // env's `Drop` is caught; the worker goes on).
            let _ = catch_quietly(move || drop(result));
            STUCK_CALLS.fetch_sub(1, Ordering::Relaxed);
        } else {
            let _ = tx.send(result);
        }
    });
    if let Err(e) = spawned {
        return Err(CallFailure::NoThread(e));
    }
    let result = match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(_) => {
            STUCK_CALLS.fetch_add(1, Ordering::Relaxed);
            if state
                .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Err(CallFailure::TimedOut(limit));
            }
            // It returned just as the time ran out: its result is on the way.
            STUCK_CALLS.fetch_sub(1, Ordering::Relaxed);
            match rx.recv() {
                Ok(result) => result,
                Err(_) => return Err(CallFailure::TimedOut(limit)),
            }
        }
    };
    result.map_err(panicked)
}

/// Runs `f` on `env` ([`timed`]; without a limit, in place). Returns the
/// env (`None` when it was abandoned, or could not be handed to a thread)
/// and what `f` returned.
pub(crate) fn call_env<T: Send + 'static>(
    mut env: Box<dyn ToolEnv>,
    timeout: Option<Duration>,
    f: impl FnOnce(&mut dyn ToolEnv) -> T + Send + 'static,
) -> (Option<Box<dyn ToolEnv>>, Result<T, CallFailure>) {
    let ran = timed(timeout, move || {
        let result = catch_quietly(|| f(env.as_mut()));
        (env, result)
    });
    match ran {
        Ok((env, result)) => (Some(env), result.map_err(panicked)),
        Err(failure) => (None, Err(failure)),
    }
}

/// A caught panic as a call's failure.
fn panicked(payload: Box<dyn std::any::Any + Send>) -> CallFailure {
    CallFailure::Panicked(toolgym_env::take_panic_message(payload))
}

/// Makes the env for `task` ([`timed`]); `make` runs user code too (a
/// closure factory may start a process or open a connection).
pub(crate) fn make_env(
    factory: &Arc<dyn DynEnvFactory>,
    task: Arc<Task>,
    timeout: Option<Duration>,
) -> Result<Box<dyn ToolEnv>, CallFailure> {
    let factory = factory.clone();
    timed(timeout, move || factory.make_env(task))
}

/// Runs `work` where a timed env call can wait without starving the env:
/// with a time limit, env calls run on worker threads of their own
/// ([`workers`]) and the pool threads that wait for them block, so the
/// waiting is done by a pool of its own (of [`RolloutLimits::env_concurrency`] workers; one pool per
/// size, kept), and rayon's global pool stays free for env code that uses
/// rayon itself. Without a limit, `work` runs in place, and so it does,
/// said once on stderr, when the pool cannot be built.
pub(crate) fn in_env_pool<R: Send>(limits: &RolloutLimits, work: impl FnOnce() -> R + Send) -> R {
    static POOLS: std::sync::Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>> =
        std::sync::Mutex::new(Vec::new());
    if limits.env_timeout.is_none() {
        return work();
    }
    let size = match limits.env_concurrency {
        0 => rayon::current_num_threads(),
        n => n.min(MAX_ENV_CONCURRENCY),
    };
    let pool = {
        let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        match pools.iter().find(|(n, _)| *n == size) {
            Some((_, p)) => Some(p.clone()),
            None => {
                let built = match rayon::ThreadPoolBuilder::new()
                    .num_threads(size)
                    .thread_name(|i| format!("toolgym-rollout-{i}"))
                    .build()
                {
                    Ok(p) => Some(Arc::new(p)),
                    Err(e) => {
                        static SAID: std::sync::Once = std::sync::Once::new();
                        SAID.call_once(|| {
                            eprintln!(
                                "grpo: warning: no pool of {size} threads for env calls ({e}); \
                                 they run on the compute threads"
                            )
                        });
                        None
                    }
                };
                if let Some(p) = &built {
                    pools.push((size, p.clone()));
                }
                built
            }
        }
    };
    match pool {
        Some(p) => p.install(work),
        None => work(),
    }
}

/// Runs `f` on the slot's env ([`call_env`]); `None` means it failed (the
/// message is in the trajectory and the episode is over).
fn guarded<T: Send + 'static>(
    s: &mut Slot,
    what: &str,
    timeout: Option<Duration>,
    f: impl FnOnce(&mut dyn ToolEnv) -> T + Send + 'static,
) -> Option<T> {
    let started = Instant::now();
    let env = s.env.take()?;
    let (env, result) = call_env(env, timeout, f);
    s.env = env;
    s.traj.env_seconds += started.elapsed().as_secs_f64();
    match result {
        Ok(v) => Some(v),
        Err(failure) => {
            fail(s, failure.describe(what));
            None
        }
    }
}

/// Ends the episode as an env failure (reward 0).
fn fail(s: &mut Slot, message: String) {
    s.traj.fail_env(message);
    s.live = false;
    drop_env(s);
}

/// [`fail`] for a failure the rollout finds in what the env wrote, which
/// no reply provokes ([`Trajectory::failure_not_provoked`]).
fn fail_unprovoked(s: &mut Slot, message: String) {
    fail(s, message);
    s.traj.failure_not_provoked = true;
}

/// Drops the episode's env without waiting for it ([`drop_detached`]).
fn drop_env(s: &mut Slot) {
    if let Some(env) = s.env.take() {
        drop_detached(env, s.timeout);
    }
}

/// Drops an env whose episode is over, without waiting: with `timeout`,
/// on a worker thread that times the `Drop` ([`drop_quietly`]: one still
/// running after the limit is counted by [`stuck_env_calls`]), so a `Drop`
/// that hangs holds neither the rollout's turn nor one of the rollout
/// pool's workers (it holds two env workers, [`workers`], the timer's and
/// the `Drop`'s);
/// without, in place. When no thread can be started the env is leaked, as
/// [`timed`] leaks what it cannot start.
fn drop_detached(env: Box<dyn ToolEnv>, timeout: Option<Duration>) {
    if timeout.is_none() {
        drop_quietly(env, None);
        return;
    }
    DROPS_RUNNING.fetch_add(1, Ordering::AcqRel);
    let spawned = workers::run_detached(env, move |env| {
        drop_quietly(env, timeout);
        DROPS_RUNNING.fetch_sub(1, Ordering::AcqRel);
    });
    if spawned.is_err() {
        DROPS_RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Envs being dropped on worker threads ([`drop_detached`]) that have
/// neither finished nor run past their time limit.
static DROPS_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// How many envs are being dropped on worker threads and have neither
/// finished nor run past their time limit ([`wait_for_env_drops`] waits
/// for them).
pub(crate) fn env_drops_running() -> usize {
    DROPS_RUNNING.load(Ordering::Acquire)
}

/// Waits until the envs the rollouts left to drop on worker threads
/// have been dropped, or have run past their time limit (then counted by
/// [`stuck_env_calls`]), or `limit` has passed; returns how many are still
/// being dropped. A rollout does not wait for its envs' `Drop`s, so a
/// program that ends after its last rollout calls this first, or an env's
/// clean-up (a sandbox killed, a file flushed) may never run: the trainers'
/// `run` do.
pub fn wait_for_env_drops(limit: Duration) -> usize {
    let started = Instant::now();
    loop {
        let running = DROPS_RUNNING.load(Ordering::Acquire);
        if running == 0 || started.elapsed() >= limit {
            return running;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Drops an env; a panic in its `Drop` is caught (whatever it was doing is
/// over anyway). With `timeout`, the drop runs on a worker thread
/// ([`timed`]) and a `Drop` still running then is left to finish there
/// (counted by [`stuck_env_calls`] until it does), so an env whose
/// clean-up hangs cannot hang the rollout.
/// Returns `false` when the `Drop` was given up on.
/// A panic is counted ([`take_env_drop_panics`]).
pub(crate) fn drop_quietly(env: Box<dyn ToolEnv>, timeout: Option<Duration>) -> bool {
    match timed(timeout, move || drop(env)) {
        Err(CallFailure::TimedOut(_)) => false,
        Err(CallFailure::Panicked(message)) => {
            let mut first = DROP_PANIC.lock().unwrap_or_else(|e| e.into_inner());
            first.0 += 1;
            first.1.get_or_insert(message);
            true
        }
        _ => true,
    }
}

/// Env `Drop`s that panicked since last taken, and the first one's message.
static DROP_PANIC: std::sync::Mutex<(usize, Option<String>)> = std::sync::Mutex::new((0, None));

/// How many env `Drop`s panicked (caught: the episode was over) since the
/// last call, in this process, and the first one's message. An env whose
/// clean-up panics every time (a sandbox never stopped, a file never
/// flushed) shows up here, in the trainers' `env_drop_panics` metric.
pub fn take_env_drop_panics() -> (usize, Option<String>) {
    std::mem::take(&mut *DROP_PANIC.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Makes and resets the env, and tokenises the first prompt.
fn start(
    s: &mut Slot,
    factory: &Arc<dyn DynEnvFactory>,
    tokens: TokenSpace<'_>,
    limits: &RolloutLimits,
) -> Result<(), TrainError> {
    let task = s.traj.task.clone();
    let started = Instant::now();
    // The env's name is asked within the same time limit as its making:
    // every env call is timed (`made` tells which of the two hung).
    let factory = factory.clone();
    let made_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = made_flag.clone();
    let made = timed(limits.env_timeout, move || {
        let env = factory.make_env(task);
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        let name =
            catch_quietly(|| env.name().to_string()).map_err(toolgym_env::take_panic_message);
        (env, name)
    });
    s.traj.env_seconds += started.elapsed().as_secs_f64();
    match made {
        Ok((env, name)) => {
            s.env = Some(env);
            match name {
                Ok(name) => s.traj.env = name,
                Err(panic) => {
                    s.traj.env = "(unnamed)".into();
                    fail(s, format!("name panicked: {panic}"));
                    return Ok(());
                }
            }
        }
        Err(failure) => {
            let what = if made_flag.load(std::sync::atomic::Ordering::SeqCst) {
                s.traj.env = "(unnamed)".into();
                "asking the env its name"
            } else {
                s.traj.env = "(unmade)".into();
                "making the env"
            };
            fail(s, failure.describe(what));
            return Ok(());
        }
    }
    let seed = s.traj.reset_seed;
    let Some(obs) = guarded(s, "reset", limits.env_timeout, move |env| {
        env.reset(Some(seed))
    }) else {
        return Ok(());
    };
    let limit = prompt_limit(limits.max_prompt_tokens, tokens.max_context);
    // A prompt over the limit by its length alone (a reset that renders
    // megabytes) is not tokenised, unless it is to be cut: as between turns.
    let at_least = tokens.tokenizer.min_tokens(&obs.prompt);
    if at_least > limit && !limits.truncate_prompts {
        over_prompt_limit(s, &format!("at least {at_least}"), limit);
        return Ok(());
    }
    let ids = match tokens.tokenizer.encode(&obs.prompt) {
        Ok(ids) => ids,
        Err(e) => {
            fail(s, format!("the first prompt could not be tokenised: {e}"));
            return Ok(());
        }
    };
    if ids.is_empty() {
        fail(s, "reset gave an empty prompt".into());
        return Ok(());
    }
    // Only the ids the model reads are checked: a prompt left out for its
    // length, or the part of one cut off, is not the model's to embed.
    let kept = if ids.len() > limit && limits.truncate_prompts {
        &ids[ids.len() - limit..]
    } else if ids.len() > limit {
        &[]
    } else {
        &ids[..]
    };
    if let Some(why) = tokens.out_of_vocabulary(kept, "the first prompt") {
        fail(s, why);
        return Ok(());
    }
    if ids.len() > limit && limits.truncate_prompts {
        s.traj.prompt_cut = ids.len() - limit;
        s.traj.prompt = ids[ids.len() - limit..].to_vec();
        s.text = obs.prompt;
        return Ok(());
    }
    if ids.len() > limit {
        over_prompt_limit(s, &ids.len().to_string(), limit);
        return Ok(());
    }
    s.traj.prompt = ids;
    s.text = obs.prompt;
    Ok(())
}

/// Ends an episode whose first prompt (of `tokens` tokens) is over `limit`.
fn over_prompt_limit(s: &mut Slot, tokens: &str, limit: usize) {
    s.traj.error = Some(format!(
        "task {}: prompt of {tokens} tokens is over the limit of {limit}",
        s.traj.task.id
    ));
    s.traj.end = Some(EndReason::TokenLimit);
    s.live = false;
    drop_env(s);
}

/// Records a step's outcome; returns whether the episode ended (a
/// non-finite reward ends it as an env failure).
fn record(s: &mut Slot, step: Step) -> bool {
    if !step.reward.is_finite() {
        fail(
            s,
            format!(
                "turn {} gave a non-finite reward ({})",
                step.info.turn, step.reward
            ),
        );
        return true;
    }
    let done = step.done();
    if done {
        // An env that gives no reason: Gymnasium's `truncated` is a time
        // (turn) limit, `terminated` its own end (which wins when both are set).
        let unsaid = if step.truncated && !step.terminated {
            EndReason::TurnLimit
        } else {
            EndReason::Done
        };
        s.traj.end = Some(step.info.end.unwrap_or(unsaid));
        s.live = false;
    }
    // An env that says it failed (its backend died, say) fails the episode
    // as one that panicked does: reward 0, judged `env_error`, left out of
    // the update (or scored at `grpo.env_failure_reward`).
    let failed = match step.info.end {
        Some(EndReason::EnvError) => {
            let detail = step
                .info
                .main_verdict()
                .filter(|v| !v.detail.is_empty())
                .map(|v| format!(": {}", v.detail))
                .unwrap_or_default();
            Some(format!(
                "turn {} ended the episode as env_error{detail}",
                step.info.turn
            ))
        }
        // The rollout steps only episodes it has not seen end: an env that
        // answers as for a step after the end lost its episode (a reused
        // or reset env). Its reward of 0 says nothing of the reply.
        Some(EndReason::AlreadyOver) => Some(format!(
            "turn {}: the env answered already_over, for an episode the rollout had not seen \
             end",
            step.info.turn
        )),
        _ => None,
    };
    s.traj.steps.push(StepOutcome {
        reward: step.reward,
        info: step.info,
    });
    if let Some(message) = failed {
        fail(s, message);
        return true;
    }
    done
}

/// Ends a live episode from outside (turn limit or token budget).
fn truncate(s: &mut Slot, why: EndReason, timeout: Option<Duration>) {
    if let Some(step) = guarded(s, "truncate", timeout, move |env| env.truncate(why)) {
        record(s, step);
        if s.traj.error.is_none() {
            s.traj.end = Some(why);
        }
    }
    s.live = false;
    drop_env(s);
}

/// Appends one reply, steps the env, and appends the environment's tokens.
fn take_turn(
    s: &mut Slot,
    reply: Option<Reply>,
    turn: usize,
    tokens: TokenSpace<'_>,
    limits: &RolloutLimits,
) -> Result<(), TrainError> {
    let per_turn = limits.max_response_tokens;
    let Some(reply) = reply else {
        // The actor has nothing to say: the episode stops here.
        s.live = false;
        drop_env(s);
        return Ok(());
    };
    let n = reply.tokens.len();
    // An actor's bug, as a wrong number of replies is: not papered over
    // with zeros a caller would take for log-probs.
    if let Some(lp) = reply.logprobs.as_ref().filter(|lp| lp.len() != n) {
        return Err(TrainError::Env(format!(
            "the actor gave {} log-probs for the {n} tokens of its reply in turn {turn} of task {}",
            lp.len(),
            s.traj.task.id
        )));
    }
    // A sampled reply is within the vocabulary; a written one (an env's
    // demonstration) may not be, and would fail the whole SFT batch.
    let what = format!("turn {turn}: the reply");
    if let Some(why) = tokens.out_of_vocabulary(&reply.tokens, &what) {
        fail_unprovoked(s, why);
        return Ok(());
    }
    s.traj.tokens.extend_from_slice(&reply.tokens);
    s.traj.train_mask.extend(std::iter::repeat_n(1u8, n));
    match &reply.logprobs {
        Some(lp) => s.traj.logprobs.extend_from_slice(lp),
        None => s.traj.logprobs.extend(std::iter::repeat_n(0.0, n)),
    }
    s.traj.replies.push(reply.text.clone());
    // Cut off by a limit: the per-turn one, or the episode's budget when
    // that was less. A reply that only lacks an end token (a demonstration
    // written without one) is not cut.
    let cut = reply.end == ReplyEnd::Length && n >= s.budget;
    if cut && n >= per_turn {
        s.traj.cut_replies += 1;
    }
    let action = reply.text.clone();
    // A reply a length limit cut off goes to `step_cut`: the env decides
    // whether a cut-off answer may end the episode (MultiTurnEnv: not as
    // an answer).
    let Some(mut step) = guarded(s, "step", limits.env_timeout, move |env| {
        if cut {
            env.step_cut(&action)
        } else {
            env.step(&action)
        }
    }) else {
        return Ok(());
    };
    let next_prompt = std::mem::take(&mut step.observation.prompt);
    if record(s, step) {
        drop_env(s);
        return Ok(());
    }
    if cut && n < per_turn {
        // The episode's budget, not the per-turn limit, cut the reply.
        truncate(s, EndReason::TokenLimit, limits.env_timeout);
        return Ok(());
    }
    if turn >= limits.max_turns {
        truncate(s, EndReason::TurnLimit, limits.env_timeout);
        return Ok(());
    }
    let delta = match env_delta(&s.text, &reply, &next_prompt, tokens) {
        Ok(delta) => delta,
        Err(why) => {
            fail_unprovoked(
                s,
                format!(
                    "turn {turn}: the prompt after the reply does not extend the prompt \
                     before it plus the reply as written ({why}); token-level training needs \
                     every prompt to extend the last one (see docs/multi_turn.md)"
                ),
            );
            return Ok(());
        }
    };
    let room = if limits.max_episode_tokens > 0 {
        limits.max_episode_tokens.min(tokens.max_context)
    } else {
        tokens.max_context
    };
    // Text that cannot fit by its length alone (a tool result of
    // megabytes) is not tokenised: that took seconds and memory, outside
    // the env's time limit, only to end the episode the same way.
    if s.traj.len() + tokens.tokenizer.min_tokens(delta) >= room {
        truncate(s, EndReason::TokenLimit, limits.env_timeout);
        return Ok(());
    }
    let added = match tokens.tokenizer.encode(delta) {
        Ok(added) => added,
        Err(e) => {
            fail_unprovoked(
                s,
                format!("turn {turn}: the environment's text could not be tokenised: {e}"),
            );
            return Ok(());
        }
    };
    if let Some(why) =
        tokens.out_of_vocabulary(&added, &format!("turn {turn}: the environment's text"))
    {
        fail_unprovoked(s, why);
        return Ok(());
    }
    if s.traj.len() + added.len() >= room {
        truncate(s, EndReason::TokenLimit, limits.env_timeout);
        return Ok(());
    }
    s.traj.tokens.extend_from_slice(&added);
    s.traj
        .train_mask
        .extend(std::iter::repeat_n(0u8, added.len()));
    s.traj
        .logprobs
        .extend(std::iter::repeat_n(0.0, added.len()));
    s.text = next_prompt;
    Ok(())
}

/// What the environment added after the reply: `next` must be `before`,
/// the reply's text, its end-of-turn token (for a reply that has one: the
/// sampled one, or another of the model's end-of-turn tokens standing for
/// it), then the environment's part, which is returned.
fn env_delta<'n>(
    before: &str,
    reply: &Reply,
    next: &'n str,
    tokens: TokenSpace<'_>,
) -> Result<&'n str, String> {
    let mismatch = |at: usize, expected: &str| {
        let found: String = next[at.min(next.len())..].chars().take(40).collect();
        let expected: String = expected.chars().take(40).collect();
        format!("at byte {at}: expected {expected:?}, found {found:?}")
    };
    if !next.starts_with(before) {
        let at = common_prefix(before, next);
        return Err(mismatch(at, &before[at..]));
    }
    let rest = &next[before.len()..];
    if !rest.starts_with(&reply.text) {
        let at = common_prefix(&reply.text, rest);
        return Err(mismatch(before.len() + at, &reply.text[at..]));
    }
    let rest = &rest[reply.text.len()..];
    let ReplyEnd::Eos(sampled) = reply.end else {
        return Ok(rest);
    };
    let mut candidates = vec![sampled];
    candidates.extend(tokens.eos_token_ids.iter().filter(|&&e| e != sampled));
    for id in candidates {
        let Ok(eos) = tokens.tokenizer.decode(&[id], false) else {
            continue;
        };
        if !eos.is_empty() && rest.starts_with(&eos) {
            return Ok(&rest[eos.len()..]);
        }
    }
    let at = next.len() - rest.len();
    let eos = tokens
        .tokenizer
        .decode(&[sampled], false)
        .unwrap_or_default();
    Err(format!(
        "{}: the reply ended at the model's end token, so the template's end of turn \
         (ChatTemplate::end_of_turn) must be that token's text",
        mismatch(at, &eos)
    ))
}

/// Byte length of the longest common prefix (on a char boundary).
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i)
}

/// Trailing environment tokens carry no training signal: drop them; set
/// the episode's reward from its steps.
fn finish(t: &mut Trajectory, limits: &RolloutLimits) {
    while t.train_mask.last() == Some(&0) {
        t.train_mask.pop();
        t.tokens.pop();
        t.logprobs.pop();
    }
    t.reward = if t.error.is_some() {
        0.0
    } else {
        match limits.reward {
            EpisodeReward::Sum => t.steps.iter().map(|s| s.reward).sum(),
            EpisodeReward::Last => t.steps.last().map_or(0.0, |s| s.reward),
        }
    };
    if !t.reward.is_finite() {
        // Finite step rewards whose sum overflows.
        let reward = t.reward;
        t.fail_env(format_args!(
            "the episode's reward is not finite ({reward})"
        ));
        t.reward = 0.0;
    } else if t.reward.abs() > MAX_EPISODE_REWARD {
        // Finite, but a group's mean, variance or f32 advantages would not
        // be: one such episode would turn a whole update into NaN.
        let reward = t.reward;
        t.fail_env(format_args!(
            "the episode's reward {reward:e} is out of range (|reward| ≤ {MAX_EPISODE_REWARD:e})"
        ));
        t.reward = 0.0;
    }
}

/// Largest episode reward a rollout takes, in magnitude: beyond it a
/// group's variance overflows f64 or its advantages f32, so a larger one
/// fails its episode like a non-finite one.
pub const MAX_EPISODE_REWARD: f64 = 1e12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_given_up_on_is_counted_until_it_returns() {
        // No other unit test of this crate times env calls out, so the
        // count is this test's.
        let (release, wait) = mpsc::channel::<()>();
        let (dropped, was_dropped) = mpsc::channel::<()>();
        struct Tell(mpsc::Sender<()>);
        impl Drop for Tell {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let late = timed(Some(Duration::from_millis(50)), move || {
            let _ = wait.recv();
            Tell(dropped)
        });
        assert!(matches!(late, Err(CallFailure::TimedOut(_))));
        assert_eq!(stuck_env_calls(), 1);
        release.send(()).unwrap();
        // What the late call returned is dropped on its worker thread.
        was_dropped.recv_timeout(Duration::from_secs(10)).unwrap();
        let started = Instant::now();
        while stuck_env_calls() > 0 && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(stuck_env_calls(), 0);
        // Calls in time, and panics, are not counted.
        assert_eq!(timed(Some(Duration::from_secs(10)), || 7).ok(), Some(7));
        let p = timed(Some(Duration::from_secs(10)), || -> u8 { panic!("boom") });
        assert!(matches!(p, Err(CallFailure::Panicked(m)) if m.contains("boom")));
        assert_eq!(stuck_env_calls(), 0);
    }

    /// A `Drop` that panics is caught and counted (the metrics'
    /// `env_drop_panics`), timed or not; a clean one is not.
    #[test]
    fn env_drops_that_panic_are_counted() {
        use std::sync::Arc;
        use toolgym_env::{Observation, Step, Task, ToolEnv};
        struct Env(Arc<Task>, bool);
        impl ToolEnv for Env {
            fn reset(&mut self, _: Option<u64>) -> Observation {
                unreachable!()
            }
            fn step(&mut self, _: &str) -> Step {
                unreachable!()
            }
            fn task(&self) -> &Arc<Task> {
                &self.0
            }
        }
        impl Drop for Env {
            fn drop(&mut self) {
                if self.1 {
                    panic!("the sandbox would not stop");
                }
            }
        }
        let task = Arc::new(Task::new("t", "test", vec![], vec![], vec![]));
        let env = |panics| Box::new(Env(task.clone(), panics)) as Box<dyn ToolEnv>;
        // The only test of this binary that drops envs: the count is ours.
        take_env_drop_panics();
        assert!(drop_quietly(env(false), None));
        assert_eq!(take_env_drop_panics(), (0, None));
        assert!(drop_quietly(env(true), None));
        assert!(drop_quietly(env(true), Some(Duration::from_secs(10))));
        let (n, first) = take_env_drop_panics();
        assert_eq!(n, 2);
        assert!(first.unwrap().contains("the sandbox would not stop"));
        assert_eq!(take_env_drop_panics(), (0, None));
    }
}
