//! Who writes the replies of a rollout: the policy sampling (GRPO,
//! validation, evaluation), an env's reference solver (SFT), or anything
//! else that implements [`Actor`] (a scripted policy in tests).

use crate::TrainError;
use toolgym_env::ToolEnv;
use toolgym_model::rng::mix_seed;
use toolgym_model::{
    generate, FinishReason, GenerateRequest, GenerationConfig, Qwen2ForCausalLM, SamplingParams,
    SamplingPlace, StopCause, Tokenizer,
};

/// A live episode waiting for its next reply.
pub struct LiveEpisode<'a> {
    /// The prompt and every token since (what the model conditions on).
    pub context: &'a [u32],
    /// Which group (task) it belongs to.
    pub group: usize,
    /// Its index within the group.
    pub member: usize,
    /// The group's sampling seed.
    pub seed: u64,
    /// 1-based turn number of the reply asked for.
    pub turn: usize,
    /// Most tokens the reply may have (the per-turn limit, or less when the
    /// episode's budget is nearly spent).
    pub max_tokens: usize,
    /// The environment (read-only: every call that may block or fail runs
    /// in the rollout, timed and caught).
    pub env: &'a dyn ToolEnv,
    /// The env's demonstration of this turn ([`ToolEnv::demonstration`]),
    /// asked for by the rollout when the actor
    /// [wants it](Actor::wants_demonstrations); `None` otherwise, or when
    /// the env has none.
    pub demonstration: Option<String>,
}

/// How a reply ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyEnd {
    /// The model wrote this end-of-turn id (the last of `tokens`).
    Eos(u32),
    /// The token limit cut it.
    Length,
}

/// One reply: its ids exactly as produced, the text the env receives.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The ids, end-of-turn id included when there is one.
    pub tokens: Vec<u32>,
    /// The temperature-1 log-prob of each id, when sampled: one per id
    /// (the rollout refuses another count with an error).
    pub logprobs: Option<Vec<f32>>,
    /// The reply's text without the end-of-turn token (what
    /// [`ToolEnv::step`], or [`ToolEnv::step_cut`] for a reply a length
    /// limit cut off, receives).
    pub text: String,
    /// How it ended.
    pub end: ReplyEnd,
}

/// Writes the next reply of every live episode, in order (`None`: nothing
/// to say for that episode, which ends it).
pub trait Actor {
    /// The replies for `live`, one per entry.
    fn act(&mut self, live: &[LiveEpisode<'_>]) -> Result<Vec<Option<Reply>>, TrainError>;

    /// Whether the rollout should ask each env for its demonstration
    /// before every turn ([`LiveEpisode::demonstration`]). The rollout
    /// makes that call as it makes `step`: on the env's thread, under
    /// [`RolloutLimits::env_timeout`](crate::rollout::RolloutLimits), a
    /// panic or a time-out failing only that episode. Default: no (an
    /// actor that hands turns to a [`Demonstrator`] must say yes).
    fn wants_demonstrations(&self) -> bool {
        false
    }
}

/// The policy sampling replies: one batched `generate` call per turn over
/// every live episode. Consecutive live episodes of one group whose
/// contexts (and token limits) are identical share one request and its
/// prefill, the `k`-th of them drawing from stream `k` of the request's
/// seed: the G episodes of a task on their first turn (the group's seed),
/// and on a later turn members that wrote the same replies and were told
/// the same. A request's seed is the group's on the first turn and
/// otherwise one derived from the group seed, the turn and its first
/// member. A rollout is therefore a function of its seeds alone.
pub struct Sampler<'a> {
    model: Qwen2ForCausalLM,
    tokenizer: &'a Tokenizer,
    config: GenerationConfig,
}

impl<'a> Sampler<'a> {
    /// A sampler over `model` (used without autograd).
    pub fn new(
        model: &Qwen2ForCausalLM,
        tokenizer: &'a Tokenizer,
        eos_token_ids: &[u32],
        sampling: SamplingParams,
        max_response_tokens: usize,
        max_batch_size: usize,
    ) -> Result<Self, TrainError> {
        Ok(Self {
            model: model.detached()?,
            tokenizer,
            config: GenerationConfig {
                max_new_tokens: max_response_tokens,
                sampling,
                eos_token_ids: eos_token_ids.to_vec(),
                max_batch_size,
                ..GenerationConfig::default()
            },
        })
    }

    /// Chooses tokens where `place` says (default: [`SamplingPlace::Auto`]).
    pub fn with_sampling_place(mut self, place: SamplingPlace) -> Self {
        self.config.sampling_place = place;
        self
    }
}

impl Actor for Sampler<'_> {
    fn act(&mut self, live: &[LiveEpisode<'_>]) -> Result<Vec<Option<Reply>>, TrainError> {
        // Runs of identical contexts within a group share a request.
        let mut requests: Vec<GenerateRequest> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        for (k, ep) in live.iter().enumerate() {
            let joins = owners.last().is_some_and(|o| {
                let head = &live[o[0]];
                head.group == ep.group
                    && head.turn == ep.turn
                    && head.max_tokens == ep.max_tokens
                    && head.context == ep.context
            });
            if joins {
                if let (Some(r), Some(o)) = (requests.last_mut(), owners.last_mut()) {
                    r.n += 1;
                    o.push(k);
                }
                continue;
            }
            let seed = if ep.turn == 1 && ep.member == 0 {
                ep.seed
            } else {
                mix_seed(
                    mix_seed(ep.seed, ep.turn as u64),
                    0x6d65_6d00 + ep.member as u64,
                )
            };
            requests.push(
                GenerateRequest::new(ep.context.to_vec(), 1, seed)
                    .with_max_new_tokens(ep.max_tokens),
            );
            owners.push(vec![k]);
        }
        let outputs = generate(&self.model, &requests, &self.config, Some(self.tokenizer))?;
        let mut replies: Vec<Option<Reply>> = vec![None; live.len()];
        for (outs, owner) in outputs.into_iter().zip(owners) {
            for (o, k) in outs.into_iter().zip(owner) {
                let end = match (o.finish_reason, &o.stop_cause) {
                    (FinishReason::Stop, Some(StopCause::Eos(id))) => ReplyEnd::Eos(*id),
                    _ => ReplyEnd::Length,
                };
                replies[k] = Some(Reply {
                    tokens: o.token_ids,
                    logprobs: Some(o.logprobs),
                    text: o.text.unwrap_or_default(),
                    end,
                });
            }
        }
        Ok(replies)
    }
}

/// The env's reference solver ([`ToolEnv::demonstration`]) writes the
/// replies, tokenised as SFT targets. An episode whose env has no
/// demonstration gets none; one whose solver panics or does not return
/// within the rollout's `env_timeout` ends as an env failure.
pub struct Demonstrator<'a> {
    tokenizer: &'a Tokenizer,
    eos_token_ids: Vec<u32>,
}

impl<'a> Demonstrator<'a> {
    /// A demonstrator tokenising with `tokenizer`; `eos_token_ids` mark a
    /// reply's end.
    pub fn new(tokenizer: &'a Tokenizer, eos_token_ids: &[u32]) -> Self {
        Self {
            tokenizer,
            eos_token_ids: eos_token_ids.to_vec(),
        }
    }

    /// A demonstration as a reply: its ids, and its text without a final
    /// end-of-turn token. A demonstration written without one
    /// ([`toolgym_env::ToolEnv::demonstration`] returns the reply with it)
    /// gets the first of `eos_token_ids` appended, said once per process:
    /// without it the template's end of turn would be read as the
    /// environment's text, and SFT would train a model that never ends a
    /// turn. One that ends with another special token (then perhaps
    /// whitespace) is left as written: a model whose end ids lack the
    /// template's end of turn (a base checkpoint's `<|endoftext|>` against
    /// ChatML's `<|im_end|>`) writes that token as text.
    pub fn reply(&self, demo: &str) -> Result<Reply, TrainError> {
        let mut tokens = self.tokenizer.encode(demo)?;
        let last = tokens.last().copied();
        let (end, text) = match last.filter(|t| self.eos_token_ids.contains(t)) {
            Some(id) => {
                let eos = self.tokenizer.decode(&[id], false)?;
                let text = demo.strip_suffix(eos.as_str()).unwrap_or(demo);
                (ReplyEnd::Eos(id), text.to_string())
            }
            None => match self.eos_token_ids.first() {
                Some(&id) if !self.ends_with_special_token(&tokens)? => {
                    static SAID: std::sync::Once = std::sync::Once::new();
                    SAID.call_once(|| {
                        let eos = self.tokenizer.decode(&[id], false).unwrap_or_default();
                        eprintln!(
                            "warning: a demonstration ends without an end-of-turn token: {eos:?} \
                             appended (ToolEnv::demonstration returns the reply with it; said \
                             once)"
                        );
                    });
                    tokens.push(id);
                    (ReplyEnd::Eos(id), demo.to_string())
                }
                _ => (ReplyEnd::Length, demo.to_string()),
            },
        };
        Ok(Reply {
            tokens,
            logprobs: None,
            text,
            end,
        })
    }

    /// Whether `ids`, whitespace tokens at their end aside, end with a
    /// special token (one that decoding without special tokens drops).
    fn ends_with_special_token(&self, ids: &[u32]) -> Result<bool, TrainError> {
        for &id in ids.iter().rev() {
            if self.tokenizer.decode(&[id], true)?.is_empty() {
                return Ok(true);
            }
            if !self.tokenizer.decode(&[id], false)?.trim().is_empty() {
                return Ok(false);
            }
        }
        Ok(false)
    }
}

impl Actor for Demonstrator<'_> {
    fn act(&mut self, live: &[LiveEpisode<'_>]) -> Result<Vec<Option<Reply>>, TrainError> {
        live.iter()
            .map(|ep| match ep.demonstration.as_deref() {
                Some(d) if !d.is_empty() => self.reply(d).map(Some),
                _ => Ok(None),
            })
            .collect()
    }

    fn wants_demonstrations(&self) -> bool {
        true
    }
}
