//! Training against multi-turn environments through the rollout engine:
//! exact token trajectories and masks, sampler/trainer log-prob agreement,
//! limits, failures that do not stop a run, the prompt-extension contract,
//! SFT on demonstrations, and exact resumption.

mod common;

use common::*;
use std::sync::Arc;
use toolgym_env::env::{run_episode_seeded, DynEnvFactory, EnvFactory, ToolEnv};
use toolgym_env::{
    ChatMlTemplate, ChatTemplate, EndReason, Message, MultiTurnConfig, MultiTurnSpec, Task,
    TaskSource, ToolRegistry, ToolSpec,
};
use toolgym_grpo::config::EnvFailures;
use toolgym_grpo::metrics::read_metrics;
use toolgym_grpo::rollout::{
    run_episodes, Actor, Demonstrator, EpisodeGroup, EpisodeReward, LiveEpisode, Reply,
    RolloutLimits, Sampler, Trajectory,
};
use toolgym_grpo::{GrpoTrainer, Policy, SftConfig, SftTrainer, TrainError};
use toolgym_model::candle_core::DType;
use toolgym_model::{score, SamplingParams, SamplingPlace, ScoreOptions};
use toolgym_reward::{Call, Reason};

fn limits() -> RolloutLimits {
    RolloutLimits {
        max_prompt_tokens: 1024,
        truncate_prompts: false,
        max_response_tokens: 48,
        max_turns: 8,
        max_episode_tokens: 2048,
        reward: EpisodeReward::Sum,
        env_timeout: None,
        env_concurrency: toolgym_grpo::rollout::ENV_CONCURRENCY,
    }
}

/// [`limits`] with env calls timed out after `ms` milliseconds.
fn limits_timed(ms: u64) -> RolloutLimits {
    RolloutLimits {
        env_timeout: Some(std::time::Duration::from_millis(ms)),
        ..limits()
    }
}

fn groups(source: &dyn TaskSource, n_tasks: usize, g: usize) -> Vec<EpisodeGroup> {
    (0..n_tasks as u64)
        .map(|i| EpisodeGroup {
            task: source.get(i).unwrap(),
            n: g,
            reset_seed: 1000 + i,
            sample_seed: 7 + i,
        })
        .collect()
}

/// One episode of the first vault task, played by `actor`.
fn one_vault_episode(
    factory: impl DynEnvFactory + 'static,
    actor: &mut dyn Actor,
    policy: &Policy,
    limits: &RolloutLimits,
) -> Trajectory {
    let source = vault_tasks(1);
    run_episodes(
        &shared(factory),
        &groups(source.as_ref(), 1, 1),
        actor,
        policy.token_space(),
        limits,
    )
    .unwrap()
    .remove(0)
    .remove(0)
}

/// Plays fixed replies (end-of-turn token appended), whatever the context.
struct Scripted<'a> {
    demo: Demonstrator<'a>,
    script: Vec<String>,
}

impl Actor for Scripted<'_> {
    fn act(&mut self, live: &[LiveEpisode<'_>]) -> Result<Vec<Option<Reply>>, TrainError> {
        live.iter()
            .map(|ep| match self.script.get(ep.turn - 1) {
                Some(r) => self.demo.reply(&format!("{r}<|im_end|>")).map(Some),
                None => Ok(None),
            })
            .collect()
    }
}

fn find(name: &str) -> String {
    let c = Call::new("find_vault", serde_json::json!({ "name": name })).unwrap();
    ChatMlTemplate::compact().render_reply(Some("find"), &[c])
}

#[test]
fn a_scripted_episode_yields_the_expected_tokens_and_masks() {
    let gen = tasks();
    let policy = policy(&gen);
    let tok = &policy.tokenizer;
    let spec = vault_spec();
    let source = vault_tasks(1);
    // Trailing whitespace in a reply must survive: the env stores it as
    // written and the engine never re-tokenises it.
    let script = vec![
        format!("{} ", find("red")),
        "<think>ok</think>\nNo.\n".to_string(),
    ];

    // The expected trajectory, built by hand from the env's prompts.
    let mut env = spec.make(source.get(0).unwrap());
    let mut prompts = vec![];
    let mut turn = 0;
    let ep = run_episode_seeded(&mut env, Some(1000), 8, |obs| {
        prompts.push(obs.prompt.clone());
        turn += 1;
        format!("{}<|im_end|>", script[turn - 1])
    });
    assert_eq!(ep.steps.len(), 2);
    let mut want_tokens = vec![];
    let mut want_mask = vec![];
    let mut push = |ids: Vec<u32>, m: u8| {
        want_mask.extend(std::iter::repeat_n(m, ids.len()));
        want_tokens.extend(ids);
    };
    push(tok.encode(&format!("{}<|im_end|>", script[0])).unwrap(), 1);
    let after_reply = format!("{}{}<|im_end|>", prompts[0], script[0]);
    assert!(prompts[1].starts_with(&after_reply));
    push(tok.encode(&prompts[1][after_reply.len()..]).unwrap(), 0);
    push(tok.encode(&format!("{}<|im_end|>", script[1])).unwrap(), 1);

    let mut actor = Scripted {
        demo: Demonstrator::new(tok, &policy.eos_token_ids),
        script: script.clone(),
    };
    let out = run_episodes(
        &shared(spec.clone()),
        &groups(source.as_ref(), 1, 1),
        &mut actor,
        policy.token_space(),
        &limits(),
    )
    .unwrap();
    let t = &out[0][0];
    assert_eq!(t.prompt, tok.encode(&prompts[0]).unwrap());
    assert_eq!(t.tokens, want_tokens);
    assert_eq!(t.train_mask, want_mask);
    assert_eq!(t.replies, script);
    assert_eq!((t.turns(), t.end), (2, Some(EndReason::Answered)));
    // The vault was not opened: reward 0, and the env says why.
    assert_eq!((t.reward, t.verdict().reason), (0.0, Reason::StateMismatch));
    // The tokens decode to the env's own transcript.
    let mut all = t.prompt.clone();
    all.extend(&t.tokens);
    let text = tok.decode(&all, false).unwrap();
    assert!(ep.steps[1].observation.prompt.starts_with(&text), "{text}");
}

/// Runs `groups` of `factory`'s envs with `policy` sampling at `params`,
/// `max_new` tokens per turn, generation seed 0.
fn sample(
    policy: &Policy,
    factory: &Arc<dyn DynEnvFactory>,
    groups: &[EpisodeGroup],
    params: SamplingParams,
    max_new: usize,
) -> Vec<Vec<Trajectory>> {
    let (model, tok, eos) = (&policy.model, &policy.tokenizer, &policy.eos_token_ids);
    let mut sampler = Sampler::new(model, tok, eos, params, max_new, 0).unwrap();
    run_episodes(
        factory,
        groups,
        &mut sampler,
        policy.token_space(),
        &limits(),
    )
    .unwrap()
}

#[test]
fn sampled_logprobs_match_the_training_forward_pass() {
    let gen = tasks();
    let policy = policy(&gen);
    let factory = |task: Arc<Task>| EchoEnv::new(task, 3);
    let source = echo_tasks(3);
    let params = SamplingParams {
        greedy: false,
        temperature: 1.0,
        ..SamplingParams::default()
    };
    let out = sample(
        &policy,
        &shared(factory),
        &groups(source.as_ref(), 3, 2),
        params,
        24,
    );
    let trajs: Vec<&Trajectory> = out.iter().flatten().collect();
    assert!(trajs.iter().all(|t| t.turns() == 3 && t.env_tokens() > 0));
    let prompts: Vec<&[u32]> = trajs.iter().map(|t| t.prompt.as_slice()).collect();
    let completions: Vec<&[u32]> = trajs.iter().map(|t| t.tokens.as_slice()).collect();
    let scored = score(
        &policy.model,
        &prompts,
        &completions,
        &ScoreOptions {
            temperature: 1.0,
            entropy: false,
            entropy_grad: false,
        },
    )
    .unwrap();
    let rows = scored.logprobs.to_vec2::<f32>().unwrap();
    let mut checked = 0;
    for (t, row) in trajs.iter().zip(rows) {
        for (j, &m) in t.train_mask.iter().enumerate() {
            if m == 1 {
                let d = (row[j] - t.logprobs[j]).abs();
                assert!(
                    d < 1e-4,
                    "token {j}: trainer {} vs sampler {}",
                    row[j],
                    t.logprobs[j]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "{checked} model tokens checked");
}

#[test]
fn the_g_episodes_of_a_task_share_their_start_and_differ_after() {
    let gen = tasks();
    let policy = policy(&gen);
    let spec = vault_spec();
    let source = vault_tasks(2);
    let params = SamplingParams::default();
    let out = sample(
        &policy,
        &shared(spec.clone()),
        &groups(source.as_ref(), 2, 4),
        params,
        16,
    );
    for group in &out {
        assert_eq!(group.len(), 4);
        assert!(group.iter().all(|t| t.prompt == group[0].prompt));
        assert!(group.iter().all(|t| t.reset_seed == group[0].reset_seed));
        let distinct: std::collections::BTreeSet<&Vec<u32>> =
            group.iter().map(|t| &t.tokens).collect();
        assert!(distinct.len() > 1, "samples of a group differ");
    }
}

/// Multi-turn rollouts with tokens chosen by `device_sampling` (forced
/// on the CPU here; the default on accelerators) are the host sampler's:
/// the same draws from the same streams, turn after turn.
#[test]
fn device_sampling_rolls_out_what_host_sampling_does() {
    let gen = tasks();
    let policy = policy(&gen);
    let factory = |task: Arc<Task>| EchoEnv::new(task, 3);
    let source = echo_tasks(3);
    let groups = groups(source.as_ref(), 3, 3);
    let params = SamplingParams {
        temperature: 0.7,
        ..SamplingParams::default()
    };
    let (model, tok, eos) = (&policy.model, &policy.tokenizer, &policy.eos_token_ids);
    let run = |place: SamplingPlace| {
        let mut sampler = Sampler::new(model, tok, eos, params.clone(), 16, 0)
            .unwrap()
            .with_sampling_place(place);
        run_episodes(
            &shared(factory),
            &groups,
            &mut sampler,
            policy.token_space(),
            &limits(),
        )
        .unwrap()
    };
    let (host, device) = (run(SamplingPlace::Host), run(SamplingPlace::Device));
    let trajs =
        |out: &Vec<Vec<Trajectory>>| -> Vec<Trajectory> { out.iter().flatten().cloned().collect() };
    let (host, device) = (trajs(&host), trajs(&device));
    assert!(host.iter().any(|t| t.turns() > 1), "multi-turn episodes");
    for (h, d) in host.iter().zip(&device) {
        assert_eq!(
            (&h.tokens, &h.train_mask, h.turns()),
            (&d.tokens, &d.train_mask, d.turns())
        );
        assert_eq!(h.reward, d.reward);
        let diff = h
            .logprobs
            .iter()
            .zip(&d.logprobs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "logprob diff {diff}");
    }
}

#[test]
fn turn_and_token_limits_truncate_and_the_env_judges_the_rest() {
    let gen = tasks();
    let policy = policy(&gen);
    let spec = vault_spec();
    let finds = vec![find("red"); 8];
    let run = |limits: RolloutLimits| {
        let mut actor = Scripted {
            demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
            script: finds.clone(),
        };
        one_vault_episode(spec.clone(), &mut actor, &policy, &limits)
    };
    let t = run(RolloutLimits {
        max_turns: 3,
        ..limits()
    });
    assert_eq!((t.turns(), t.end), (3, Some(EndReason::TurnLimit)));
    // The env's final rules judged the truncated episode.
    assert_eq!(t.verdict().reason, Reason::TurnLimit);
    assert_eq!(t.steps.len(), 4, "three steps and the truncation");
    // The token budget: the prompt plus one turn fits, two do not.
    let one = run(RolloutLimits {
        max_turns: 1,
        ..limits()
    });
    let t = run(RolloutLimits {
        max_episode_tokens: one.len() + 20,
        ..limits()
    });
    assert_eq!((t.turns(), t.end), (1, Some(EndReason::TokenLimit)));
    assert_eq!(t.verdict().reason, Reason::TokenLimit);
    assert!(t.len() <= one.len() + 20);
    // A first prompt over the limit is not run.
    let t = run(RolloutLimits {
        max_prompt_tokens: 10,
        truncate_prompts: false,
        ..limits()
    });
    assert!(t.tokens.is_empty() && t.error.is_some());
    assert_eq!((t.verdict().reason, t.reward), (Reason::TokenLimit, 0.0));
    // Over it by its length alone: the same end, without tokenising it.
    let t = run(RolloutLimits {
        max_prompt_tokens: 1,
        truncate_prompts: false,
        ..limits()
    });
    let error = t.error.clone().unwrap();
    assert!(
        error.contains("prompt of at least ") && error.ends_with("tokens is over the limit of 1"),
        "{error}"
    );
    assert!(t.tokens.is_empty() && t.prompt.is_empty());
    assert_eq!((t.verdict().reason, t.reward), (Reason::TokenLimit, 0.0));
    // Unless truncation was asked for: the prompt loses its first tokens.
    let t = run(RolloutLimits {
        max_prompt_tokens: 10,
        truncate_prompts: true,
        ..limits()
    });
    assert_eq!(t.prompt.len(), 10);
    assert!(t.prompt_cut > 0 && t.error.is_none() && t.turns() > 0);
}

/// A tool result too long to fit by its length alone (megabytes) ends the
/// episode at the token limit, as a result tokenised and found too long
/// does, but is not tokenised (that took seconds and memory, outside the
/// env's time limit); a short one goes on.
#[test]
fn a_result_too_long_to_fit_ends_the_episode_at_the_token_limit() {
    let gen = tasks();
    let policy = policy(&gen);
    let most = policy
        .tokenizer
        .max_bytes_per_token()
        .expect("the test tokenizer is a byte-level BPE");
    let run = |bytes: usize| {
        let mut tools = ToolRegistry::<()>::new();
        let find_vault = ToolSpec::builder("find_vault", "Finds a vault.")
            .required("name", "string", "")
            .build();
        tools
            .register_fn(find_vault, move |_| {
                Ok(serde_json::json!("x ".repeat(bytes / 2)))
            })
            .unwrap();
        let spec = MultiTurnSpec::new(
            tools,
            Arc::new(ChatMlTemplate::compact_multi_turn()),
            MultiTurnConfig::empty(),
            |_| (),
        );
        let mut actor = Scripted {
            demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
            script: vec![find("red"), "<think>x</think>ok".into()],
        };
        one_vault_episode(spec, &mut actor, &policy, &limits())
    };
    let room = limits().max_episode_tokens;
    let flood = run(room * most + 2);
    assert_eq!((flood.turns(), flood.end), (1, Some(EndReason::TokenLimit)));
    assert_eq!(flood.verdict().reason, Reason::TokenLimit);
    // The reply's tokens only: no environment text was added.
    assert!(
        flood.train_mask.iter().all(|&m| m == 1),
        "{:?}",
        flood.train_mask
    );
    let short = run(10);
    assert_eq!((short.turns(), short.end), (2, Some(EndReason::Answered)));
}

/// Plays the env's reference replies, cutting the one of turn `cut_turn`
/// off at the tokens it may have (`LiveEpisode::max_tokens`), as the
/// sampler's length limit does.
struct CutAt<'a> {
    demo: Demonstrator<'a>,
    tokenizer: &'a toolgym_model::Tokenizer,
    cut_turn: usize,
}

impl Actor for CutAt<'_> {
    fn act(&mut self, live: &[LiveEpisode<'_>]) -> Result<Vec<Option<Reply>>, TrainError> {
        live.iter()
            .map(|ep| {
                let Some(text) = ep.env.demonstration() else {
                    return Ok(None);
                };
                let mut reply = self.demo.reply(&text)?;
                if ep.turn == self.cut_turn {
                    assert!(reply.tokens.len() > ep.max_tokens, "not long enough to cut");
                    reply.tokens.truncate(ep.max_tokens);
                    reply.text = self.tokenizer.decode(&reply.tokens, false)?;
                    reply.end = toolgym_grpo::rollout::ReplyEnd::Length;
                }
                Ok(Some(reply))
            })
            .collect()
    }
}

/// A demonstration written without its end-of-turn token gets one: the
/// model learns to end its turns, and the episode is the one a
/// demonstration with the token gives, token for token.
#[test]
fn a_demonstration_without_its_end_token_gets_one() {
    let gen = tasks();
    let policy = policy(&gen);
    let demo = Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids);
    let with = demo.reply("<think>ok</think>\nNo.<|im_end|>").unwrap();
    let without = demo.reply("<think>ok</think>\nNo.").unwrap();
    assert_eq!(without, with);
    assert_eq!(
        without.end,
        toolgym_grpo::rollout::ReplyEnd::Eos(policy.eos_token_ids[0])
    );
    assert_eq!(without.text, "<think>ok</think>\nNo.");
    // One that ends with another special token, or with the end token and
    // a line end, is left as written (no second end token).
    let tok = &policy.tokenizer;
    let other_end = tok.encode("x").unwrap()[0];
    let base = Demonstrator::new(tok, &[other_end]);
    for text in [
        "<think>ok</think>\nNo.<|im_end|>",
        "<think>ok</think>\nNo.<|im_end|>\n",
    ] {
        for (d, what) in [(&base, "base"), (&demo, "instruct")] {
            let r = d.reply(text).unwrap();
            if what == "instruct" && !text.ends_with('\n') {
                continue; // the end id itself: stripped as usual
            }
            assert_eq!(
                (r.tokens, r.end, r.text.as_str()),
                (
                    tok.encode(text).unwrap(),
                    toolgym_grpo::rollout::ReplyEnd::Length,
                    text
                ),
                "{what} {text:?}"
            );
        }
    }
    /// The env's reference replies, with their end tokens taken off when
    /// `.1` is set.
    struct Bare<'a>(Demonstrator<'a>, bool);
    impl Actor for Bare<'_> {
        fn act(&mut self, live: &[LiveEpisode<'_>]) -> Result<Vec<Option<Reply>>, TrainError> {
            live.iter()
                .map(|ep| match ep.env.demonstration() {
                    Some(d) if self.1 => self.0.reply(d.trim_end_matches("<|im_end|>")).map(Some),
                    Some(d) => self.0.reply(&d).map(Some),
                    None => Ok(None),
                })
                .collect()
        }
    }
    let episode = |bare: bool| {
        let demo = Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids);
        one_vault_episode(vault_spec(), &mut Bare(demo, bare), &policy, &limits())
    };
    let (bare, whole) = (episode(true), episode(false));
    assert_eq!((bare.end, bare.reward), (Some(EndReason::Answered), 1.0));
    assert_eq!(
        (&bare.tokens, &bare.train_mask),
        (&whole.tokens, &whole.train_mask)
    );
}

/// A reply cut off by a length limit does not end an episode as an answer
/// (the env's `Finished` rule would pay it): it ends at the token limit;
/// the calls a cut reply completed still run. A reply that only lacks an
/// end token, shorter than its limit, was not cut.
#[test]
fn a_cut_off_reply_ends_the_episode_at_the_token_limit() {
    let gen = tasks();
    let policy = policy(&gen);
    let run = |cut_turn: usize, limits: RolloutLimits| {
        let mut actor = CutAt {
            demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
            tokenizer: &policy.tokenizer,
            cut_turn,
        };
        one_vault_episode(vault_spec(), &mut actor, &policy, &limits)
    };
    // Find, open, answer: solved.
    let t = run(0, limits());
    assert_eq!(
        (t.turns(), t.end, t.reward),
        (3, Some(EndReason::Answered), 1.0)
    );
    // The answer cut off by the episode's budget, three tokens short: the
    // vault is open, but the episode did not finish.
    let t = run(
        3,
        RolloutLimits {
            max_episode_tokens: t.len() - 3,
            ..limits()
        },
    );
    assert_eq!(
        (t.turns(), t.end, t.reward),
        (3, Some(EndReason::TokenLimit), 0.0)
    );
    assert_eq!(t.verdict().reason, Reason::TokenLimit);
    // A call cut off mid-way by the per-turn limit is not the model's
    // format error.
    let t = run(
        1,
        RolloutLimits {
            max_response_tokens: 12,
            ..limits()
        },
    );
    assert_eq!(
        (t.turns(), t.end, t.reward),
        (1, Some(EndReason::TokenLimit), 0.0)
    );
    assert_eq!(t.cut_replies, 1);
}

#[test]
fn a_template_that_does_not_extend_fails_its_episode_with_a_clear_error() {
    /// Re-renders earlier replies without their trailing whitespace (as
    /// some chat templates strip or rewrite past assistant turns).
    struct Trimming(ChatMlTemplate);
    impl ChatTemplate for Trimming {
        fn name(&self) -> &str {
            "trimming"
        }
        fn render_prompt(&self, tools: &[ToolSpec], messages: &[Message]) -> String {
            let trimmed: Vec<Message> = messages
                .iter()
                .map(|m| Message {
                    content: m.content.trim_end().to_string(),
                    ..m.clone()
                })
                .collect();
            self.0.render_prompt(tools, &trimmed)
        }
        fn render_reply(&self, reasoning: Option<&str>, calls: &[Call]) -> String {
            self.0.render_reply(reasoning, calls)
        }
        fn end_of_turn(&self) -> &str {
            self.0.end_of_turn()
        }
        fn uses_reasoning(&self) -> bool {
            true
        }
    }
    let gen = tasks();
    let policy = policy(&gen);
    let spec = MultiTurnSpec::new(
        ToolRegistry::<()>::new(),
        Arc::new(Trimming(ChatMlTemplate::compact_multi_turn())),
        MultiTurnConfig::empty().on_format_error(toolgym_env::env::FormatErrorPolicy::Feedback),
        |_| (),
    )
    .named("trimming-env");
    let mut actor = Scripted {
        demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
        script: vec![format!("{}  ", find("red")), "<think>x</think>ok".into()],
    };
    // The rollout goes on: the episode is an env failure that says where.
    let ep = &one_vault_episode(spec.clone(), &mut actor, &policy, &limits());
    assert_eq!((ep.end, ep.reward), (Some(EndReason::EnvError), 0.0));
    assert!(ep.env_failed() && ep.turns() == 1);
    let err = ep.error.as_deref().unwrap();
    for part in ["trimming-env", "vault-0", "turn 1", "does not extend"] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }
    // The template's fault, not the reply's: left out of the update even
    // where failures the replies provoke are scored.
    assert!(ep.failure_not_provoked);
    assert!(ep.left_out_of_update(EnvFailures::Scored));
    assert!(ep.left_out_of_update(EnvFailures::LeaveOut));

    /// Ends turns with a marker of its own instead of the model's end token.
    struct OwnEnd(ChatMlTemplate);
    impl ChatTemplate for OwnEnd {
        fn name(&self) -> &str {
            "own-end"
        }
        fn render_prompt(&self, tools: &[ToolSpec], messages: &[Message]) -> String {
            self.0
                .render_prompt(tools, messages)
                .replace("<|im_end|>", "<END>")
        }
        fn render_reply(&self, reasoning: Option<&str>, calls: &[Call]) -> String {
            self.0.render_reply(reasoning, calls)
        }
        fn end_of_turn(&self) -> &str {
            "<END>"
        }
        fn uses_reasoning(&self) -> bool {
            true
        }
    }
    let spec = MultiTurnSpec::new(
        ToolRegistry::<()>::new(),
        Arc::new(OwnEnd(ChatMlTemplate::compact_multi_turn())),
        MultiTurnConfig::empty().on_format_error(toolgym_env::env::FormatErrorPolicy::Feedback),
        |_| (),
    );
    let mut actor = Scripted {
        demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
        script: vec![find("red"), "<think>x</think>ok".into()],
    };
    let ep = one_vault_episode(spec, &mut actor, &policy, &limits());
    let err = ep.error.as_deref().unwrap();
    assert!(
        err.contains("expected \"<|im_end|>\", found \"<END>")
            && err.contains("ChatTemplate::end_of_turn"),
        "{err}"
    );
}

/// Runs one episode of each of two echo tasks with `limits`, the env of
/// the first made by `first`; returns both trajectories.
fn two_echo_episodes(first: fn(&mut EchoEnv), limits: &RolloutLimits) -> Vec<Trajectory> {
    let gen = tasks();
    let policy = policy(&gen);
    let factory = move |task: Arc<Task>| {
        let mut env = EchoEnv::new(task.clone(), 2);
        if task.id == "echo-0" {
            first(&mut env);
        }
        env
    };
    let mut actor = Scripted {
        demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
        script: vec!["one".into(), "two".into()],
    };
    let source = echo_tasks(2);
    run_episodes(
        &shared(factory),
        &groups(source.as_ref(), 2, 1),
        &mut actor,
        policy.token_space(),
        limits,
    )
    .unwrap()
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn an_env_call_that_does_not_return_fails_its_episode_at_the_timeout() {
    let timed = limits_timed(3000);
    let started = std::time::Instant::now();
    let eps = two_echo_episodes(|env| env.hangs = true, &timed);
    assert!(
        started.elapsed().as_secs() < 60,
        "the rollout waited for the env"
    );
    let (hung, fine) = (&eps[0], &eps[1]);
    assert_eq!((hung.end, hung.reward), (Some(EndReason::EnvError), 0.0));
    let err = hung.error.as_deref().unwrap();
    assert!(
        err.contains("echo-0") && err.contains("step did not return within 3 s"),
        "{err}"
    );
    // The other episode ran on, through the same timed calls.
    assert_eq!((fine.end, fine.turns()), (Some(EndReason::Done), 2));
    assert!(fine.error.is_none());
    // The env's name is asked within the time limit too.
    let eps = two_echo_episodes(|env| env.name_hangs = true, &limits_timed(300));
    let err = eps[0].error.as_deref().unwrap();
    assert!(
        err.contains("echo-0") && err.contains("asking the env its name did not return"),
        "{err}"
    );
    assert_eq!(eps[1].end, Some(EndReason::Done));
    // Without a timeout the calls run in place, to the same result.
    let in_place = two_echo_episodes(|_| {}, &limits());
    let timed = two_echo_episodes(|_| {}, &timed);
    assert_eq!(in_place[1].tokens, timed[1].tokens);
    assert_eq!(in_place[1].reward, timed[1].reward);
    assert_eq!(in_place[1].tokens, fine.tokens);
}

#[test]
fn resets_that_do_not_return_neither_stall_the_start_nor_the_step() {
    // The trainer measures the first prompts before it starts (giving up
    // after one time-out), then resets each episode: both give up after
    // the timeout. Every episode failing stops a run of one step (three
    // in a row stop a longer one), unless asked not to.
    let trainer = |share: f64| {
        let mut config = grpo_config(1);
        config.env_timeout_s = 0.2;
        config.stop_at_env_failure_share = share;
        echo_trainer(&format!("hung-resets-{share}"), config, |task| {
            let mut env = EchoEnv::new(task, 1);
            env.reset_hangs = true;
            env
        })
    };
    let started = std::time::Instant::now();
    let (mut t, dir) = trainer(1.0);
    let err = t.step().unwrap_err().to_string();
    for part in [
        "12 of 12 episodes failed",
        "stop_at_env_failure_share",
        "reset did not return within 0.2 s",
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
    let (mut t, dir) = trainer(2.0);
    let m = t.step().unwrap();
    assert_eq!(m.env_failures, Some(12), "{m:?}");
    assert!(started.elapsed().as_secs() < 120, "waited for the envs");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_step_whose_envs_all_fail_is_a_warning_three_in_a_row_stop_the_run() {
    // A service down for a step fails every episode of it: the run goes
    // on (a failing env must not kill a training run). Three such steps
    // in a row say the env is broken; the count is in the checkpoint, so
    // a resumed run stops where one process would.
    static DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let down = |on: bool| DOWN.store(on, std::sync::atomic::Ordering::SeqCst);
    let gen = tasks();
    let dir = run_dir("env-down-in-a-row");
    let make = || {
        let factory: Arc<dyn DynEnvFactory> = Arc::new(|task: Arc<Task>| {
            if DOWN.load(std::sync::atomic::Ordering::SeqCst) {
                panic!("the service is down");
            }
            EchoEnv::new(task, 1)
        });
        GrpoTrainer::new(
            policy(&gen),
            factory,
            echo_tasks(8),
            vec![],
            grpo_config(10),
            run_section(dir.clone(), 0),
        )
        .unwrap()
    };
    let mut t = make();
    let all_failed = |m: &toolgym_grpo::metrics::StepMetrics| m.env_failures == Some(12);
    let before = params_of(t.policy());
    down(true);
    for _ in 0..2 {
        let m = t.step().unwrap();
        assert!(all_failed(&m), "{m:?}");
        // Nothing ran: no update, and no reward or accuracy (not 0).
        assert!(m.loss.is_nan() && m.grad_norm.is_nan(), "{m:?}");
        assert_eq!((m.reward_mean, m.accuracy), (None, None), "{m:?}");
    }
    assert!(params_of(t.policy()) == before, "no update");
    // Back up: the count starts over.
    down(false);
    let m = t.step().unwrap();
    assert_eq!(m.env_failures, Some(0), "{m:?}");
    down(true);
    for _ in 0..2 {
        assert!(all_failed(&t.step().unwrap()));
    }
    t.save_checkpoint().unwrap();
    drop(t);
    down(false);
    let mut t = make();
    down(true);
    let e = t.step().unwrap_err().to_string();
    down(false);
    for part in [
        "step 6: 12 of 12 episodes failed",
        "and so had the 2 step(s) before it",
        "stop_at_env_failure_share",
        "the service is down",
    ] {
        assert!(e.contains(part), "{part:?} not in {e}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_factory_that_does_not_return_fails_only_its_episodes() {
    // `make` runs user code too (a closure factory may start a process):
    // one that hangs fails its episodes at the time limit, is counted as a
    // stuck call while it hangs, and the others run.
    static HANG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    let gen = tasks();
    let policy = policy(&gen);
    let factory = |task: Arc<Task>| {
        while task.id == "echo-0" && HANG.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        EchoEnv::new(task, 1)
    };
    let mut actor = Scripted {
        demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
        script: vec!["one".into()],
    };
    let source = echo_tasks(2);
    let limits = limits_timed(200);
    let eps = run_episodes(
        &shared(factory),
        &groups(source.as_ref(), 2, 2),
        &mut actor,
        policy.token_space(),
        &limits,
    )
    .unwrap();
    for ep in &eps[0] {
        assert_eq!((ep.end, ep.reward), (Some(EndReason::EnvError), 0.0));
        let err = ep.error.as_deref().unwrap();
        assert!(
            err.contains("making the env did not return within 0.2 s"),
            "{err}"
        );
    }
    for ep in &eps[1] {
        assert_eq!((ep.end, ep.error.as_deref()), (Some(EndReason::Done), None));
    }
    assert!(toolgym_grpo::rollout::stuck_env_calls() >= 2);
    HANG.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Echo envs whose solver says "one": echo-`hang` never returns from
/// `demonstration`, echo-`drop` never returns from `Drop`, echo-`panic`'s
/// solver panics.
fn echo_solvers(hang: usize, drop: usize, panic: usize) -> impl DynEnvFactory + Clone {
    move |task: Arc<Task>| {
        let mut env = EchoEnv::new(task, 1);
        let id = |i: usize| env.task.id == format!("echo-{i}");
        (env.demo_hangs, env.drop_hangs, env.demo_panics) = (id(hang), id(drop), id(panic));
        env.demo = Some("one<|im_end|>".into());
        env
    }
}

#[test]
fn a_solver_or_a_drop_that_does_not_return_fails_only_its_episode() {
    // SFT's demonstrations are env calls like `step`: timed and caught in
    // the rollout. An env whose `Drop` hangs is left on its thread.
    let gen = tasks();
    let policy = policy(&gen);
    let mut actor = Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids);
    // Room for a panic's unwinding (a backtrace with debug info) on a
    // loaded machine: at 0.2 s the panicking solver was once timed out.
    let limits = limits_timed(1500);
    let stuck_before = toolgym_grpo::rollout::stuck_env_calls();
    let started = std::time::Instant::now();
    let eps = run_episodes(
        &shared(echo_solvers(0, 1, 2)),
        &groups(echo_tasks(4).as_ref(), 4, 1),
        &mut actor,
        policy.token_space(),
        &limits,
    )
    .unwrap();
    assert!(started.elapsed().as_secs() < 60, "waited for the env");
    let eps: Vec<&Trajectory> = eps.iter().flatten().collect();
    for (ep, want) in [
        (eps[0], "demonstration (turn 1) did not return within 1.5 s"),
        (
            eps[2],
            "demonstration (turn 1) panicked: the echo env's solver is broken",
        ),
    ] {
        assert_eq!((ep.end, ep.reward), (Some(EndReason::EnvError), 0.0));
        let err = ep.error.as_deref().unwrap();
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    // Demonstrated, whether or not the env could then be dropped.
    let one = policy.tokenizer.encode("one<|im_end|>").unwrap();
    for ep in [eps[1], eps[3]] {
        assert_eq!((ep.end, ep.error.as_deref()), (Some(EndReason::Done), None));
        assert_eq!(ep.tokens, one);
    }
    // The hung solver and the hung drop are still running (the drop, not
    // waited for, is counted once its limit has passed).
    assert!(stuck_calls_reach(stuck_before + 2));
}

/// Whether [`stuck_env_calls`](toolgym_grpo::rollout::stuck_env_calls)
/// reaches `n` within 30 s: drops are not waited for, and one is counted
/// once its time limit has passed.
fn stuck_calls_reach(n: usize) -> bool {
    let started = std::time::Instant::now();
    while toolgym_grpo::rollout::stuck_env_calls() < n {
        if started.elapsed().as_secs() >= 30 {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

#[test]
fn sft_says_which_demonstrations_failed_and_goes_on() {
    let gen = tasks();
    let dir = run_dir("sft-failing-solver");
    let cfg = SftConfig {
        steps: 1,
        batch_size: 4,
        micro_batch_seqs: 4,
        max_seq_tokens: 256,
        env_timeout_s: 0.2,
        ..SftConfig::default()
    };
    let trainer = |factory: Arc<dyn DynEnvFactory>, n: usize| {
        SftTrainer::new(
            policy(&gen),
            factory,
            echo_tasks(n),
            vec![],
            cfg.clone(),
            run_section(dir.clone(), 0),
        )
        .unwrap()
    };
    let mut t = trainer(shared(echo_solvers(0, 9, 1)), 4);
    let m = t.step().unwrap();
    assert_eq!(
        (m.env_failures, m.skipped_episodes, m.accuracy),
        (Some(2), Some(2), Some(1.0)),
        "{m:?}"
    );
    assert!(m
        .env_error
        .as_deref()
        .unwrap()
        .contains("demonstration (turn 1)"));
    assert_eq!(m.end_reasons.get("env_error"), Some(&2), "{m:?}");
    std::fs::remove_dir_all(&dir).ok();
    // Every solver failing (one task, drawn four times): the step makes no
    // update, with a warning; the third such step in a row stops the run
    // (here the run's only step: a run shorter than three stops at once).
    let mut t = trainer(shared(echo_solvers(9, 9, 0)), 1);
    let err = t.step().unwrap_err().to_string();
    assert!(
        err.contains("no demonstration to train on, 4 of 4 episodes failed in their env")
            && err.contains("the echo env's solver is broken"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
    let mut t = SftTrainer::new(
        policy(&gen),
        shared(echo_solvers(9, 9, 0)),
        echo_tasks(1),
        vec![],
        SftConfig {
            steps: 5,
            ..cfg.clone()
        },
        run_section(dir.clone(), 0),
    )
    .unwrap();
    for step in 1..=2 {
        let m = t.step().unwrap();
        assert_eq!(
            (m.step, m.skipped_updates, m.env_failures, m.trained_tokens),
            (step, Some(0), Some(4), Some(0)),
            "{m:?}"
        );
        assert!(m.loss.is_nan() && m.lr.is_nan(), "{m:?}");
    }
    let err = t.step().unwrap_err().to_string();
    assert!(err.contains("and so had the 2 step(s) before it"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_tokenizer_corpus_leaves_out_failing_envs_and_stops_at_a_hung_one() {
    use toolgym_grpo::pipeline::demonstration_corpus;
    let source = echo_tasks(5);
    let started = std::time::Instant::now();
    let corpus = demonstration_corpus(
        &shared(echo_solvers(3, 9, 1)),
        source.as_ref(),
        5,
        Some(std::time::Duration::from_millis(200)),
    );
    assert!(started.elapsed().as_secs() < 60, "waited for the env");
    // echo-0 and echo-2: their transcripts; echo-1 panicked, echo-3 hung
    // (and echo-4 was not tried).
    assert_eq!(corpus.len(), 2, "{corpus:?}");
    assert!(corpus[0].contains("go 0") && corpus[0].contains("one"));
    assert!(corpus[1].contains("go 2"));
    // Without a limit, the same episodes run in place.
    let in_place = demonstration_corpus(&shared(echo_solvers(9, 9, 1)), source.as_ref(), 3, None);
    assert_eq!(in_place, corpus);
    // A `Drop` that hangs is a time-out too: the corpus ends before it.
    let corpus = demonstration_corpus(
        &shared(echo_solvers(9, 1, 9)),
        source.as_ref(),
        5,
        Some(std::time::Duration::from_millis(200)),
    );
    assert_eq!(corpus.len(), 1, "{corpus:?}");
}

#[test]
fn envs_whose_drop_hangs_neither_stall_training_nor_hide_an_error() {
    // GRPO: the first-prompt check and every episode drop their envs
    // under the time limit; the episodes keep their results.
    let mut config = grpo_config(1);
    // Long enough that waiting for each drop in turn (12 episodes, one at
    // a time) would take 60 s.
    config.env_timeout_s = 5.0;
    config.env_concurrency = 1;
    let stuck_before = toolgym_grpo::rollout::stuck_env_calls();
    let started = std::time::Instant::now();
    let (mut t, dir) = echo_trainer("hung-drops", config, |task| {
        let mut env = EchoEnv::new(task, 1);
        env.drop_hangs = true;
        env
    });
    let m = t.step().unwrap();
    assert_eq!(m.env_failures, Some(0), "{m:?}");
    assert_eq!(m.end_reasons.get("done"), Some(&12), "{m:?}");
    // The rollout did not wait for the drops (which run on threads of
    // their own); the first-prompt check waited for its first one only.
    assert!(started.elapsed().as_secs() < 25, "waited for the drops");
    // Each is counted once its limit has passed (other tests' hung calls
    // are counted in the same process-wide number: the difference is
    // this test's).
    assert!(stuck_calls_reach(stuck_before + 12));
    std::fs::remove_dir_all(&dir).ok();

    // An actor that fails: the envs still held are dropped (timed) and
    // the error comes back.
    struct Failing;
    impl Actor for Failing {
        fn act(&mut self, _: &[LiveEpisode<'_>]) -> Result<Vec<Option<Reply>>, TrainError> {
            Err(TrainError::Env("the actor broke".into()))
        }
    }
    let gen = tasks();
    let policy = policy(&gen);
    let limits = limits_timed(200);
    let started = std::time::Instant::now();
    let err = run_episodes(
        &shared(echo_solvers(9, 0, 9)),
        &groups(echo_tasks(1).as_ref(), 1, 2),
        &mut Failing,
        policy.token_space(),
        &limits,
    )
    .unwrap_err();
    assert!(err.to_string().contains("the actor broke"), "{err}");
    assert!(started.elapsed().as_secs() < 60, "waited for the drops");

    // An actor whose log-probs do not match its tokens: an error naming
    // both counts, not log-probs filled in with zeros.
    struct ShortLogprobs;
    impl Actor for ShortLogprobs {
        fn act(&mut self, live: &[LiveEpisode<'_>]) -> Result<Vec<Option<Reply>>, TrainError> {
            Ok(live
                .iter()
                .map(|_| {
                    Some(Reply {
                        tokens: vec![5, 6, 7],
                        logprobs: Some(vec![-0.5]),
                        text: "one".into(),
                        end: toolgym_grpo::rollout::ReplyEnd::Length,
                    })
                })
                .collect())
        }
    }
    let err = run_episodes(
        &shared(echo_solvers(9, 0, 9)),
        &groups(echo_tasks(1).as_ref(), 1, 2),
        &mut ShortLogprobs,
        policy.token_space(),
        &limits,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("the actor gave 1 log-probs for the 3 tokens of its reply in turn 1"),
        "{err}"
    );
}

#[test]
fn timed_env_calls_that_use_rayon_are_not_starved() {
    // More episodes than rayon threads, each env step running a parallel
    // job: the workers waiting for the calls must not be the ones the jobs
    // need.
    let gen = tasks();
    let policy = policy(&gen);
    let factory = |task: Arc<Task>| {
        let mut env = EchoEnv::new(task, 2);
        env.parallel_step = true;
        env
    };
    let mut actor = Scripted {
        demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
        script: vec!["one".into(), "two".into()],
    };
    let source = echo_tasks(8);
    let limits = limits_timed(20000);
    let started = std::time::Instant::now();
    let eps = run_episodes(
        &shared(factory),
        &groups(source.as_ref(), 8, 2),
        &mut actor,
        policy.token_space(),
        &limits,
    )
    .unwrap();
    for ep in eps.iter().flatten() {
        assert_eq!((ep.end, ep.error.as_deref()), (Some(EndReason::Done), None));
    }
    assert!(
        started.elapsed().as_secs() < 15,
        "the env calls waited for the workers"
    );
}

#[test]
fn env_calls_run_as_many_at_once_as_env_concurrency_says() {
    // Env calls that wait (I/O): with a time limit, up to env_concurrency
    // run at once, however few (or many) compute threads there are.
    let gen = tasks();
    let policy = policy(&gen);
    let most_at_once = |concurrency: usize| {
        type InFlight = (
            std::sync::atomic::AtomicUsize,
            std::sync::atomic::AtomicUsize,
        );
        let counts: Arc<InFlight> = Arc::new(Default::default());
        let theirs = Arc::clone(&counts);
        let factory = move |task: Arc<Task>| {
            let mut env = EchoEnv::new(task, 1);
            env.in_flight = Some(theirs.clone());
            env
        };
        let mut actor = Scripted {
            demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
            script: vec!["one".into()],
        };
        let limits = RolloutLimits {
            env_concurrency: concurrency,
            ..limits_timed(20000)
        };
        let eps = run_episodes(
            &shared(factory),
            &groups(echo_tasks(8).as_ref(), 8, 2),
            &mut actor,
            policy.token_space(),
            &limits,
        )
        .unwrap();
        assert!(eps
            .iter()
            .flatten()
            .all(|ep| ep.end == Some(EndReason::Done)));
        counts.1.load(std::sync::atomic::Ordering::SeqCst)
    };
    let threads = rayon::current_num_threads();
    // The default: one per compute thread; fewer to spare a service.
    assert!(most_at_once(0) <= threads);
    assert_eq!(most_at_once(1), 1);
    assert!(most_at_once(16) > threads.min(8), "{threads} threads");
}

/// An env that ends its episode the Gymnasium way, `truncated` without an
/// end reason, is recorded at the turn limit (its own time limit), not as
/// done; `terminated` without a reason is done, and wins when both are set.
#[test]
fn gymnasium_truncation_without_a_reason_is_a_turn_limit() {
    type Setup = fn(&mut EchoEnv);
    let cases: [(Setup, EndReason); 3] = [
        (
            |env| env.gym_end = Some((false, true)),
            EndReason::TurnLimit,
        ),
        (|env| env.gym_end = Some((true, false)), EndReason::Done),
        (|env| env.gym_end = Some((true, true)), EndReason::Done),
    ];
    for (first, want) in cases {
        let eps = two_echo_episodes(first, &limits());
        assert_eq!((eps[0].end, eps[0].turns()), (Some(want), 1));
        assert_eq!(eps[1].end, Some(EndReason::Done));
    }
}

/// Env text that tokenises to an id the model has no embedding for (a
/// special token of the tokenizer past `vocab_size`) fails its episode: it
/// failed the whole batch's generation, and the run, before.
#[test]
fn env_text_past_the_models_vocabulary_fails_its_episode() {
    let gen = tasks();
    let policy = policy(&gen);
    let mut actor = Scripted {
        demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
        script: vec!["one".into(), "two".into()],
    };
    let source = echo_tasks(2);
    let space = policy.token_space();
    let first = policy.tokenizer.encode("<|im_start|>").unwrap()[0];
    let small = toolgym_grpo::rollout::TokenSpace {
        vocab_size: first as usize,
        ..space
    };
    let eps: Vec<Trajectory> = run_episodes(
        &shared(|task| EchoEnv::new(task, 2)),
        &groups(source.as_ref(), 2, 1),
        &mut actor,
        small,
        &limits(),
    )
    .unwrap()
    .into_iter()
    .flatten()
    .collect();
    for e in &eps {
        assert!(e.env_failed(), "{:?}", e.end);
        let err = e.error.as_deref().unwrap();
        assert!(
            err.contains("the first prompt holds token id")
                && err.contains(&format!("past the model's vocab_size {first}")),
            "{err}"
        );
    }
    // A vocabulary that holds the first prompt but not a written reply
    // (a demonstration): the reply of turn 1 fails the episode (it failed
    // the whole SFT batch).
    let mut env = EchoEnv::new(source.tasks()[0].clone(), 2);
    let prompt = toolgym_env::ToolEnv::reset(&mut env, Some(0)).prompt;
    let tok = &policy.tokenizer;
    let most = *tok.encode(&prompt).unwrap().iter().max().unwrap();
    // Text whose tokens go past the prompt's: a plain token of a higher id.
    let rare = (most + 1..tok.vocab_size() as u32)
        .rev()
        .filter_map(|id| tok.decode(&[id], true).ok())
        .find(|text| {
            !text.trim().is_empty() && tok.encode(text).unwrap().iter().any(|&id| id > most)
        })
        .expect("a token past the prompt's");
    let mut rare_actor = Scripted {
        demo: Demonstrator::new(&policy.tokenizer, &policy.eos_token_ids),
        script: vec![rare.clone()],
    };
    let just_the_prompt = toolgym_grpo::rollout::TokenSpace {
        vocab_size: most as usize + 1,
        ..space
    };
    let eps: Vec<Trajectory> = run_episodes(
        &shared(|task| EchoEnv::new(task, 2)),
        &groups(source.as_ref(), 1, 1),
        &mut rare_actor,
        just_the_prompt,
        &limits(),
    )
    .unwrap()
    .into_iter()
    .flatten()
    .collect();
    let err = eps[0].error.as_deref().unwrap_or_default();
    assert!(
        eps[0].env_failed() && err.contains("turn 1: the reply holds token id"),
        "{rare:?} {:?}: {err}",
        eps[0].end
    );
}

/// An env that reports `EnvError` itself (at its end, or when the trainer
/// cuts it short) fails the episode as a panic does: reward 0, judged
/// `env_error`, not solved, whatever reward it gave.
#[test]
fn an_env_that_says_it_failed_fails_its_episode() {
    let cut_after_one = RolloutLimits {
        max_turns: 1,
        ..limits()
    };
    for limits in [limits(), cut_after_one] {
        let eps = two_echo_episodes(|env| env.end_as = Some(EndReason::EnvError), &limits);
        let failed = &eps[0];
        assert!(failed.env_failed(), "{:?}", failed.end);
        assert_eq!(failed.reward, 0.0);
        let err = failed.error.as_deref().unwrap();
        assert!(err.contains("ended the episode as env_error"), "{err}");
        let v = failed.verdict();
        assert_eq!((v.reward, v.reason), (0.0, Reason::EnvError));
        assert!(!failed.success());
        assert!(eps[1].error.is_none() && !eps[1].env_failed());
    }
    // One that answers already_over for a live episode lost it (a reused
    // or reset env): an env failure, not a reward of 0 for the reply.
    let eps = two_echo_episodes(|env| env.end_as = Some(EndReason::AlreadyOver), &limits());
    assert!(eps[0].env_failed(), "{:?}", eps[0].end);
    let err = eps[0].error.as_deref().unwrap();
    assert!(
        err.contains("answered already_over, for an episode the rollout had not seen end"),
        "{err}"
    );
    assert!(!eps[1].env_failed());
}

#[test]
fn a_non_finite_reward_fails_its_episode() {
    for bad in [f64::NAN, f64::INFINITY] {
        let eps = two_echo_episodes(
            if bad.is_nan() {
                |env: &mut EchoEnv| env.final_reward = Some(f64::NAN)
            } else {
                |env: &mut EchoEnv| env.final_reward = Some(f64::INFINITY)
            },
            &limits(),
        );
        assert_eq!(
            (eps[0].end, eps[0].reward),
            (Some(EndReason::EnvError), 0.0)
        );
        let err = eps[0].error.as_deref().unwrap();
        assert!(err.contains("turn 2 gave a non-finite reward"), "{err}");
        assert!(eps[1].error.is_none() && eps[1].reward.is_finite());
    }
    // Finite but huge: a group's variance (f64) or advantages (f32) would
    // not be, and one such episode would make the whole update NaN.
    let eps = two_echo_episodes(|env| env.final_reward = Some(-f64::MAX), &limits());
    // A reward the env computed from the replies: scored, where failures
    // the replies provoke are.
    assert!(!eps[0].failure_not_provoked && eps[0].model_tokens() > 0);
    assert!(!eps[0].left_out_of_update(EnvFailures::Scored));
    assert!(eps[0].left_out_of_update(EnvFailures::LeaveOut));
    assert!(!eps[1].left_out_of_update(EnvFailures::LeaveOut));
    assert_eq!(
        (eps[0].end, eps[0].reward),
        (Some(EndReason::EnvError), 0.0)
    );
    let err = eps[0].error.as_deref().unwrap();
    assert!(err.contains("is out of range (|reward| ≤ 1e12)"), "{err}");
    assert!(eps[1].error.is_none());
    let eps = two_echo_episodes(|env| env.final_reward = Some(1e12), &limits());
    assert!(eps[0].error.is_none() && eps[0].reward == 1e12);
}

/// A trainer on eight echo tasks of `turns` turns (replies of up to 16
/// tokens) whose envs panic on a reply with a "<" and pay `final_reward`;
/// and its run directory.
fn panicking_echo_trainer(
    name: &str,
    turns: usize,
    final_reward: Option<f64>,
    mut config: toolgym_grpo::GrpoConfig,
) -> (GrpoTrainer, std::path::PathBuf) {
    config.max_response_tokens = 16;
    echo_trainer(name, config, move |task| {
        let mut env = EchoEnv::new(task, turns);
        env.panic_on = Some("<");
        env.final_reward = final_reward;
        env
    })
}

/// A trainer on eight echo tasks whose envs `make` builds; and its run
/// directory.
fn echo_trainer(
    name: &str,
    config: toolgym_grpo::GrpoConfig,
    make: impl Fn(Arc<Task>) -> EchoEnv + Send + Sync + 'static,
) -> (GrpoTrainer, std::path::PathBuf) {
    let gen = tasks();
    let factory: Arc<dyn DynEnvFactory> = Arc::new(make);
    let dir = run_dir(name);
    let t = GrpoTrainer::new(
        policy(&gen),
        factory,
        echo_tasks(8),
        vec![],
        config,
        run_section(dir.clone(), 0),
    )
    .unwrap();
    (t, dir)
}

#[test]
fn env_failures_are_left_out_of_the_update() {
    // Every episode that runs pays 1; those whose reply has a "<" make
    // the env panic. Counted in with reward 0 they would push the policy
    // away from its "<"s; left out, every group is all 1s: no signal, and
    // the weights stay as they were (no KL term, no weight decay).
    let mut config = grpo_config(1);
    config.kl_coef = 0.0;
    config.optim.weight_decay = 0.0;
    let (mut t, dir) = panicking_echo_trainer("left-out-failures", 1, Some(1.0), config);
    let before = params_of(t.policy());
    let m = t.step().unwrap();
    let failures = m.env_failures.unwrap();
    assert!(failures > 0 && failures < 12, "{m:?}");
    assert!(
        m.env_error.as_deref().unwrap().contains("panicked"),
        "{m:?}"
    );
    assert_eq!(m.skipped_updates, Some(0));
    assert_eq!(m.zero_variance_groups, Some(1.0), "{m:?}");
    // Nor are they in the logged reward: every episode that ran paid 1.
    assert_eq!(
        (m.reward_mean, m.reward_std),
        (Some(1.0), Some(0.0)),
        "{m:?}"
    );
    assert!(
        params_of(t.policy()) == before,
        "env failures moved the policy"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `grpo.env_failures = "scored"`: the same failures, provoked by the
/// replies, scored `env_failure_reward` (here -0.5, below any reward the
/// env gives) and trained on: the groups carry a signal against the
/// "<"s, the logged reward counts them at that reward, and the policy
/// moves.
#[test]
fn env_failures_scored_push_the_policy_away_from_them() {
    let mut config = grpo_config(1);
    config.kl_coef = 0.0;
    config.optim.weight_decay = 0.0;
    config.env_failures = toolgym_grpo::config::EnvFailures::Scored;
    config.env_failure_reward = -0.5;
    let (mut t, dir) = panicking_echo_trainer("scored-failures", 1, Some(1.0), config);
    let before = params_of(t.policy());
    let m = t.step().unwrap();
    let failures = m.env_failures.unwrap();
    assert!(failures > 0 && failures < 12, "{m:?}");
    assert!(m.zero_variance_groups.unwrap() < 1.0, "{m:?}");
    let mean = m.reward_mean.unwrap();
    let expected = ((12 - failures) as f64 - 0.5 * failures as f64) / 12.0;
    assert!((mean - expected).abs() < 1e-9, "{m:?}");
    // Accuracy counts the scored failures as unsolved.
    let accuracy = m.accuracy.unwrap();
    assert!(
        (accuracy - (12 - failures) as f64 / 12.0).abs() < 1e-9,
        "{m:?}"
    );
    assert!(
        params_of(t.policy()) != before,
        "scored failures left the policy as it was"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn failing_envs_and_tools_do_not_stop_training() {
    // Every reply with a "<" panics in the env; random replies often have one.
    let (mut t, dir) = panicking_echo_trainer("failing-envs", 2, None, grpo_config(2));
    let mut failures = 0;
    for _ in 0..2 {
        let m = t.step().unwrap();
        failures += m.env_failures.unwrap();
        assert!(m.loss.is_finite());
        if m.env_failures.unwrap() > 0 {
            assert!(m.reasons.contains_key("env_error"), "{m:?}");
            assert!(m.end_reasons.contains_key("env_error"));
        }
    }
    assert!(failures > 0, "some replies made the env panic");

    // A tool handler that panics is a tool error the env reports.
    let mut reg: ToolRegistry<Vaults> = ToolRegistry::new();
    reg.register_fn(ToolSpec::builder("find_vault", "").build(), |_| {
        panic!("handler bug")
    })
    .unwrap();
    let spec = MultiTurnSpec::new(
        reg,
        Arc::new(ChatMlTemplate::compact_multi_turn()),
        MultiTurnConfig::empty()
            .max_turns(2)
            .final_rule(1.0, toolgym_env::env::NoToolErrors::strict()),
        |_| Vaults::default(),
    );
    let mut actor = Scripted {
        demo: Demonstrator::new(&t.policy().tokenizer, &t.policy().eos_token_ids),
        script: vec![find("red"), "<think>x</think>done".into()],
    };
    let ep = &one_vault_episode(spec.clone(), &mut actor, t.policy(), &limits());
    assert_eq!(ep.tool_errors().collect::<Vec<_>>(), ["tool_crashed"]);
    assert_eq!(ep.verdict().reason, Reason::ToolError);
    std::fs::remove_dir_all(&dir).ok();
}

/// A demonstration is written, not sampled within a budget: one whose last
/// reply runs past the model's context (here shorter than
/// `sft.max_seq_tokens`) is left out, naming the context, where SFT
/// trained on positions the model does not have.
#[test]
fn sft_leaves_out_demonstrations_past_the_models_context() {
    let gen = tasks();
    let dir = run_dir("sft-short-context");
    let full = policy(&gen);
    let demo = |p: &Policy| {
        let mut actor = Demonstrator::new(&p.tokenizer, &p.eos_token_ids);
        let limits = RolloutLimits {
            max_response_tokens: 1024,
            ..limits()
        };
        one_vault_episode(vault_spec(), &mut actor, p, &limits)
    };
    let e = demo(&full);
    assert_eq!(e.end, Some(EndReason::Answered), "{:?}", e.error);
    // A context that every prompt and tool result fits in and the last
    // reply runs past.
    let context = e.len() - 1;
    let model = dir.join("model");
    full.save(&model).unwrap();
    let path = model.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["max_position_embeddings"] = context.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let short =
        || Policy::load(&model, DType::F32, &toolgym_model::candle_core::Device::Cpu).unwrap();
    let e = first_sft_step_error(short(), Arc::new(vault_spec()), &dir);
    assert!(
        e.contains("none of 2 tasks has a complete demonstration")
            && e.contains(&format!("the model's context of {context} tokens")),
        "{e}"
    );
    // In a longer run such a step makes no update and the run goes on
    // (resumed, it would fail at the same step again); the third in a row
    // stops it, with the same message.
    std::fs::remove_dir_all(dir.join("run")).ok();
    let mut t = sft_trainer(short(), Arc::new(vault_spec()), &dir, 5);
    for step in 1..=2 {
        let m = t.step().unwrap();
        assert_eq!((m.step, m.trained_tokens), (step, Some(0)), "{m:?}");
        assert!(m.loss.is_nan() && m.update_seconds.is_nan(), "{m:?}");
    }
    // The learning-rate schedule counted both steps (a warm-up or a cosine
    // ends where the plan puts it); no update was applied.
    let saved = t.save_checkpoint().unwrap();
    let state: toolgym_grpo::TrainerState = toolgym_grpo::checkpoint::load_state(&saved).unwrap();
    assert_eq!(
        (state.optimizer_steps, state.optimizer_updates),
        (2, Some(0))
    );
    let e = t.step().unwrap_err().to_string();
    assert!(
        e.contains("sft step 3: none of 2 tasks has a complete demonstration")
            && e.contains("and so had the 2 step(s) before it"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The error of a first SFT step (batch of 2) on two vault tasks.
fn first_sft_step_error(
    policy: Policy,
    factory: Arc<dyn DynEnvFactory>,
    dir: &std::path::Path,
) -> String {
    let mut t = sft_trainer(policy, factory, dir, 1);
    t.step().unwrap_err().to_string()
}

/// An SFT trainer of `steps` steps (batch of 2) on two vault tasks,
/// writing under `dir/run`.
fn sft_trainer(
    policy: Policy,
    factory: Arc<dyn DynEnvFactory>,
    dir: &std::path::Path,
    steps: usize,
) -> SftTrainer {
    let cfg = SftConfig {
        steps,
        batch_size: 2,
        max_seq_tokens: 4096,
        ..SftConfig::default()
    };
    SftTrainer::new(
        policy,
        factory,
        vault_tasks(2),
        vec![],
        cfg,
        run_section(dir.join("run"), 0),
    )
    .unwrap()
}

/// SFT against an env without a reference solver says so (and how to go
/// on), not that the demonstrations were too long.
#[test]
fn sft_against_an_env_without_demonstrations_says_so() {
    /// The vault env with its solver hidden.
    struct NoSolver(toolgym_env::MultiTurnEnv<Vaults>);
    impl ToolEnv for NoSolver {
        fn reset(&mut self, seed: Option<u64>) -> toolgym_env::Observation {
            self.0.reset(seed)
        }
        fn step(&mut self, action: &str) -> toolgym_env::Step {
            self.0.step(action)
        }
        fn task(&self) -> &Arc<Task> {
            self.0.task()
        }
    }
    let gen = tasks();
    let dir = run_dir("sft-no-solver");
    let spec = Arc::new(vault_spec());
    let factory = move |task: Arc<Task>| NoSolver(spec.make(task));
    let e = first_sft_step_error(policy(&gen), shared(factory), &dir);
    assert!(
        e.contains("the environment gave no demonstration for any of 2 tasks")
            && e.contains("train GRPO alone"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sft_trains_on_demonstrated_model_turns_only() {
    let gen = tasks();
    let dir = run_dir("sft-multi");
    let mut cfg = SftConfig {
        steps: 12,
        batch_size: 4,
        micro_batch_seqs: 4,
        max_seq_tokens: 1024,
        ..SftConfig::default()
    };
    cfg.optim.lr = 1e-2;
    let mut t = SftTrainer::new(
        policy(&gen),
        Arc::new(vault_spec()),
        vault_tasks(8),
        vec![],
        cfg,
        run_section(dir.clone(), 0),
    )
    .unwrap();
    let mut losses = vec![];
    for _ in 0..12 {
        let m = t.step().unwrap();
        // Three model turns per demonstration, tool results in between.
        assert!(m.masked_tokens.unwrap() > 0 && m.trained_tokens.unwrap() > 0);
        assert_eq!((m.skipped_episodes, m.accuracy), (Some(0), Some(1.0)));
        losses.push(m.loss);
    }
    assert!(losses[11] < losses[0] - 1.0, "{losses:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Two runs against a multi-turn env: uninterrupted, and killed after a
/// checkpoint then resumed, end with identical weights.
#[test]
fn a_multi_turn_run_resumes_bit_identically() {
    let gen = tasks();
    let factory =
        || -> Arc<dyn DynEnvFactory> { Arc::new(|task: Arc<Task>| EchoEnv::new(task, 2)) };
    let config = || {
        let mut c = grpo_config(3);
        c.max_response_tokens = 12;
        c
    };
    let trainer = |dir: &std::path::Path| {
        GrpoTrainer::new(
            policy(&gen),
            factory(),
            echo_tasks(16),
            vec![],
            config(),
            run_section(dir.to_path_buf(), 1),
        )
        .unwrap()
    };
    let full_dir = run_dir("mt-full");
    let mut full = trainer(&full_dir);
    full.run(|_| {}).unwrap();
    let want = params_of(full.policy());
    assert_ne!(want, params_of(&policy(&gen)));

    let dir = run_dir("mt-killed");
    {
        let mut t = trainer(&dir);
        t.step().unwrap();
        t.save_checkpoint().unwrap();
        t.step().unwrap(); // lost with the kill
    }
    let mut resumed = trainer(&dir);
    assert_eq!(resumed.step_count(), 1);
    resumed.run(|_| {}).unwrap();
    assert_eq!(params_of(resumed.policy()), want);
    let (metrics, _) = read_metrics(&dir).unwrap();
    let m = metrics.iter().find(|m| m.phase == "grpo").unwrap();
    assert_eq!(m.turns_mean, Some(2.0));
    assert!(m.masked_tokens.unwrap() > 0);
    for d in [dir, full_dir] {
        std::fs::remove_dir_all(&d).ok();
    }
}

#[test]
fn bf16_policies_take_multi_turn_steps() {
    let gen = tasks();
    let dir = run_dir("mt-bf16");
    let mut c = grpo_config(1);
    c.max_response_tokens = 8;
    let mut t = GrpoTrainer::new(
        policy_in(&gen, DType::BF16),
        Arc::new(vault_spec()),
        vault_tasks(4),
        vault_tasks(2).tasks().to_vec(),
        c,
        run_section(dir.clone(), 0),
    )
    .unwrap();
    let summary = t.run(|_| {}).unwrap();
    assert_eq!(summary.steps, 1);
    assert!(summary.after.is_some());
    std::fs::remove_dir_all(&dir).ok();
}

/// A curriculum: episodes get a second turn once `after` episodes of the
/// run have ended, counted in state the factory shares with its envs
/// (what the factory checkpoints and restores).
struct Curriculum {
    steps_taken: Arc<std::sync::atomic::AtomicUsize>,
    after: usize,
    fail_save: bool,
}

struct CountingEnv {
    inner: EchoEnv,
    steps_taken: Arc<std::sync::atomic::AtomicUsize>,
}

impl ToolEnv for CountingEnv {
    fn reset(&mut self, seed: Option<u64>) -> toolgym_env::Observation {
        self.inner.reset(seed)
    }
    fn step(&mut self, action: &str) -> toolgym_env::Step {
        let step = self.inner.step(action);
        if step.terminated || step.truncated {
            self.ended();
        }
        step
    }
    fn truncate(&mut self, reason: EndReason) -> toolgym_env::Step {
        self.ended();
        self.inner.truncate(reason)
    }
    fn task(&self) -> &Arc<Task> {
        self.inner.task()
    }
    fn demonstration(&self) -> Option<String> {
        self.inner.demonstration()
    }
}

impl CountingEnv {
    fn ended(&self) {
        self.steps_taken
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl EnvFactory for Curriculum {
    type Env = CountingEnv;
    fn make(&self, task: Arc<Task>) -> CountingEnv {
        let taken = self.steps_taken.load(std::sync::atomic::Ordering::SeqCst);
        let mut inner = EchoEnv::new(task, if taken >= self.after { 2 } else { 1 });
        inner.demo = Some("one".into());
        CountingEnv {
            inner,
            steps_taken: self.steps_taken.clone(),
        }
    }
    fn checkpoint_state(&self) -> Result<Option<serde_json::Value>, String> {
        if self.fail_save {
            return Err("cannot serialise the curriculum".into());
        }
        let taken = self.steps_taken.load(std::sync::atomic::Ordering::SeqCst);
        Ok(Some(serde_json::json!({ "steps_taken": taken })))
    }
    fn restore_state(&self, state: &serde_json::Value) -> Result<(), String> {
        let taken = state["steps_taken"].as_u64().ok_or("no steps_taken")?;
        self.steps_taken
            .store(taken as usize, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// A factory whose state counts its envs' `Drop`s. A `Drop` waits until
/// the test opens `gate` (at most 10 s), then takes a while more (as a
/// sandbox's clean-up or a pool taking a connection back does): a step's
/// drops are still running when the step returns, whatever the machine's
/// speed.
struct DropCounting {
    dropped: Arc<std::sync::atomic::AtomicUsize>,
    gate: Arc<std::sync::atomic::AtomicBool>,
}

struct SlowDropEnv {
    inner: EchoEnv,
    dropped: Arc<std::sync::atomic::AtomicUsize>,
    gate: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for SlowDropEnv {
    fn drop(&mut self) {
        let start = std::time::Instant::now();
        while !self.gate.load(std::sync::atomic::Ordering::SeqCst)
            && start.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        self.dropped
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl ToolEnv for SlowDropEnv {
    fn reset(&mut self, seed: Option<u64>) -> toolgym_env::Observation {
        self.inner.reset(seed)
    }
    fn step(&mut self, action: &str) -> toolgym_env::Step {
        self.inner.step(action)
    }
    fn task(&self) -> &Arc<Task> {
        self.inner.task()
    }
}

impl EnvFactory for DropCounting {
    type Env = SlowDropEnv;
    fn make(&self, task: Arc<Task>) -> SlowDropEnv {
        SlowDropEnv {
            inner: EchoEnv::new(task, 1),
            dropped: self.dropped.clone(),
            gate: self.gate.clone(),
        }
    }
    fn checkpoint_state(&self) -> Result<Option<serde_json::Value>, String> {
        let n = self.dropped.load(std::sync::atomic::Ordering::SeqCst);
        Ok(Some(serde_json::json!({ "dropped": n })))
    }
    fn restore_state(&self, state: &serde_json::Value) -> Result<(), String> {
        let n = state["dropped"].as_u64().ok_or("no dropped")?;
        self.dropped
            .store(n as usize, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// Envs are dropped on worker threads after their episodes, without
/// waiting. Validation waits for the drops still running before its
/// snapshot, and for its own episodes' drops before it gives the state
/// back, so none of them lands afterwards; a checkpoint waits for them
/// too, so its factory state holds what they did.
#[test]
fn factory_state_is_read_after_the_envs_being_dropped() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let gen = tasks();
    let dropped = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(AtomicBool::new(true));
    let factory: Arc<dyn DynEnvFactory> = Arc::new(DropCounting {
        dropped: dropped.clone(),
        gate: gate.clone(),
    });
    let dir = run_dir("slow-drops");
    let mut t = GrpoTrainer::new(
        policy(&gen),
        factory,
        echo_tasks(16),
        echo_tasks(2).tasks().to_vec(),
        grpo_config(2),
        run_section(dir.clone(), 0),
    )
    .unwrap();
    // The first-prompt filter's envs, dropped before it returns.
    let base = dropped.load(SeqCst);
    // A step ends 4 prompts x 3 samples = 12 episodes, whose drops are
    // still running when it returns.
    let step = |t: &mut GrpoTrainer, done: usize| {
        gate.store(false, SeqCst);
        t.step().unwrap();
        assert_eq!(dropped.load(SeqCst), done, "no drop of the step done yet");
        gate.store(true, SeqCst);
    };
    step(&mut t, base);
    t.validate().unwrap().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        dropped.load(SeqCst),
        base + 12,
        "the step's drops kept, validation's given back"
    );
    step(&mut t, base + 12);
    let saved = t.save_checkpoint().unwrap();
    let state = std::fs::read_to_string(saved.join("trainer_state.json")).unwrap();
    let want = format!("\"dropped\": {}", base + 24);
    assert!(state.contains(&want), "{want} in {state}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The built-in tokenizer's corpus steps envs through demonstration
/// episodes outside training order: a curriculum's state is given back as
/// it was, as around validation.
#[test]
fn the_tokenizer_corpus_leaves_a_curriculum_as_it_was() {
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(5));
    let factory: Arc<dyn DynEnvFactory> = Arc::new(Curriculum {
        steps_taken: taken.clone(),
        after: 12,
        fail_save: false,
    });
    let corpus =
        toolgym_grpo::pipeline::demonstration_corpus(&factory, echo_tasks(4).as_ref(), 4, None);
    let load = std::sync::atomic::Ordering::SeqCst;
    // The corpus alone runs the episodes (each ends once).
    assert_eq!((corpus.len(), taken.load(load)), (4, 9));
    let mut cfg = toolgym_grpo::TrainConfig::default();
    cfg.model.builtin = builtin_spec();
    let setup = toolgym_grpo::pipeline::TaskSetup {
        factory,
        train: echo_tasks(4),
        validation: vec![],
        tokenizer_corpus: None,
    };
    toolgym_grpo::pipeline::build_policy(&cfg, &setup).unwrap();
    assert_eq!(taken.load(load), 9);
}

/// A factory with state of its own (a curriculum) is checkpointed with the
/// run: a killed and resumed run ends as the uninterrupted one, weights and
/// factory state alike, though the resumed run validates once more at its
/// start (validation leaves the state as it found it). A hook that fails
/// stops the checkpoint, naming it; a stateless factory cannot resume a
/// checkpoint that holds state.
#[test]
fn a_curriculum_factory_resumes_with_its_state() {
    let gen = tasks();
    // A step ends 4 prompts x 3 samples = 12 episodes.
    let curriculum = |fail_save: bool| {
        let c = Curriculum {
            steps_taken: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            after: 12,
            fail_save,
        };
        let taken = c.steps_taken.clone();
        (Arc::new(c) as Arc<dyn DynEnvFactory>, taken)
    };
    let trainer = |dir: &std::path::Path, factory: Arc<dyn DynEnvFactory>| {
        let mut c = grpo_config(3);
        c.max_response_tokens = 12;
        GrpoTrainer::new(
            policy(&gen),
            factory,
            echo_tasks(16),
            echo_tasks(2).tasks().to_vec(),
            c,
            run_section(dir.to_path_buf(), 1),
        )
        .unwrap()
    };
    let load = std::sync::atomic::Ordering::SeqCst;
    let full_dir = run_dir("curriculum-full");
    let (factory, full_taken) = curriculum(false);
    let mut full = trainer(&full_dir, factory);
    let summary = full.run(|_| {}).unwrap();
    // Validation ran (before the first step and after the last), and only
    // training episodes moved the curriculum.
    assert!(summary.before.is_some() && summary.after.is_some());
    assert_eq!(full_taken.load(load), 36);
    let want = params_of(full.policy());

    let dir = run_dir("curriculum-killed");
    {
        let (factory, _) = curriculum(false);
        let mut t = trainer(&dir, factory);
        t.step().unwrap();
        t.save_checkpoint().unwrap();
        t.step().unwrap(); // lost with the kill
    }
    let state =
        std::fs::read_to_string(dir.join("grpo/checkpoints/step-00000001/trainer_state.json"))
            .unwrap();
    assert!(state.contains("\"steps_taken\": 12"), "{state}");
    let (factory, taken) = curriculum(false);
    let mut resumed = trainer(&dir, factory);
    assert_eq!((resumed.step_count(), taken.load(load)), (1, 12));
    let summary = resumed.run(|_| {}).unwrap();
    assert!(summary.before.is_some());
    assert_eq!(taken.load(load), 36);
    assert_eq!(params_of(resumed.policy()), want);

    // A stateless factory (a closure) cannot take the checkpoint's state.
    let closure: Arc<dyn DynEnvFactory> = Arc::new(|task: Arc<Task>| EchoEnv::new(task, 1));
    let e = GrpoTrainer::new(
        policy(&gen),
        closure,
        echo_tasks(16),
        vec![],
        grpo_config(3),
        run_section(dir.clone(), 1),
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(
        e.contains("restore_state") && e.contains("keeps no state"),
        "{e}"
    );

    // A factory that saves state but never restores it (the default
    // `restore_state`) validates as before while validation leaves its
    // state alone.
    struct SavesOnly;
    impl EnvFactory for SavesOnly {
        type Env = EchoEnv;
        fn make(&self, task: Arc<Task>) -> EchoEnv {
            EchoEnv::new(task, 1)
        }
        fn checkpoint_state(&self) -> Result<Option<serde_json::Value>, String> {
            Ok(Some(serde_json::json!({"kind": "echo"})))
        }
    }
    let saves_dir = run_dir("curriculum-saves-only");
    let summary = trainer(&saves_dir, Arc::new(SavesOnly))
        .run(|_| {})
        .unwrap();
    assert!(summary.before.is_some() && summary.after.is_some());

    // A checkpoint hook that fails stops the checkpoint, naming the hook;
    // with validation tasks it stops the start (their length check keeps
    // the factory's state as validation does).
    let fail_dir = run_dir("curriculum-fail");
    let (factory, _) = curriculum(true);
    let open = |validation: Vec<Arc<Task>>| {
        let mut c = grpo_config(3);
        c.max_response_tokens = 12;
        GrpoTrainer::new(
            policy(&gen),
            factory.clone(),
            echo_tasks(16),
            validation,
            c,
            run_section(fail_dir.clone(), 1),
        )
    };
    let e = open(echo_tasks(2).tasks().to_vec())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains(
            "checkpoint_state (around the validation prompts' length check) failed: \
                    cannot serialise the curriculum"
        ),
        "{e}"
    );
    let mut t = open(vec![]).unwrap();
    t.step().unwrap();
    let e = t.save_checkpoint().unwrap_err().to_string();
    assert!(
        e.contains("checkpoint_state failed: cannot serialise the curriculum"),
        "{e}"
    );
    // A hook that hangs is an env call like any: past env_timeout_s it is
    // an error naming the hook (it hung the run at every checkpoint).
    struct HangsOnSave;
    impl EnvFactory for HangsOnSave {
        type Env = EchoEnv;
        fn make(&self, task: Arc<Task>) -> EchoEnv {
            EchoEnv::new(task, 1)
        }
        fn checkpoint_state(&self) -> Result<Option<serde_json::Value>, String> {
            std::thread::sleep(std::time::Duration::from_secs(30));
            Ok(None)
        }
    }
    let hang_dir = run_dir("curriculum-hangs");
    let mut c = grpo_config(3);
    c.env_timeout_s = 0.3;
    let t = GrpoTrainer::new(
        policy(&gen),
        Arc::new(HangsOnSave),
        echo_tasks(16),
        vec![],
        c,
        run_section(hang_dir.clone(), 1),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let e = t.save_checkpoint().unwrap_err().to_string();
    assert!(started.elapsed().as_secs() < 20, "waited for the hook");
    assert!(
        e.contains("checkpoint_state failed: it did not return within 0.3 s"),
        "{e}"
    );
    // A state of null would read back as none: refused when saved.
    struct SavesNull;
    impl EnvFactory for SavesNull {
        type Env = EchoEnv;
        fn make(&self, task: Arc<Task>) -> EchoEnv {
            EchoEnv::new(task, 1)
        }
        fn checkpoint_state(&self) -> Result<Option<serde_json::Value>, String> {
            Ok(Some(serde_json::Value::Null))
        }
    }
    let t = GrpoTrainer::new(
        policy(&gen),
        Arc::new(SavesNull),
        echo_tasks(16),
        vec![],
        grpo_config(3),
        run_section(hang_dir.clone(), 1),
    )
    .unwrap();
    let e = t.save_checkpoint().unwrap_err().to_string();
    assert!(
        e.contains("checkpoint_state failed: it returned Some(null)"),
        "{e}"
    );
    for d in [dir, full_dir, fail_dir, saves_dir, hang_dir] {
        std::fs::remove_dir_all(&d).ok();
    }
}

/// Validation episodes an env failure ended count as wrong, and are
/// counted and said (`val_env_failures` in metrics.jsonl): a flaky env
/// skewed the before/after accuracies silently.
#[test]
fn validation_counts_and_reports_env_failures() {
    let gen = tasks();
    let policy = policy(&gen);
    let factory: Arc<dyn DynEnvFactory> = Arc::new(|task| {
        let mut env = EchoEnv::new(task, 2);
        env.panic_on = Some(""); // every reply
        env
    });
    let tasks = echo_tasks(3);
    let sampled = toolgym_grpo::Sampled {
        samples: 2,
        temperature: 1.0,
        seed: 7,
    };
    let report = toolgym_grpo::evaluate(
        &policy,
        &factory,
        tasks.tasks(),
        &limits(),
        4,
        Some(sampled),
    )
    .unwrap();
    assert_eq!(report.env_failures, 3 + 6);
    assert_eq!(report.accuracy, 0.0);
    let mut m = toolgym_grpo::StepMetrics::default();
    m.set_validation(&report);
    assert_eq!(m.val_env_failures, Some(9));
    let line = serde_json::to_value(&m).unwrap();
    assert_eq!(line["val_env_failures"], 9);
}
