#!/usr/bin/env python3
"""Integration check of the toolgym Python package against the REAL engines.

Runs, on CPU, with no network (no model hub):

* trl-reward     toolgym.trl.reward_function called the way TRL calls it
                 (plain-text and conversational completions, TRL's extra kwargs).
* trl-reward-parsed  a completion in the shape TRL's response parser produces
                 (reasoning_content + tool_calls, empty content); a NaN argument that
                 TRL's own parser (Qwen3 schema) lets in scores 0.0, not None.
* trl-grpo       TRL's GRPOTrainer, 2 optimizer steps on a tiny random
                 Qwen2ForCausalLM, dataset from toolgym.trl.to_dataset, reward
                 toolgym.trl.reward_function("binary"); the metric
                 rewards/<func name>/mean must be in trainer.state.log_history.
* trl-tool-episode  TRL's own tool loop (GRPOTrainer(tools=[...]), its parse_response, tool
                 execution and completion assembly) on a scripted policy, with TRL's Qwen2.5
                 template: multi-step episodes scored by reward_function("binary", turn="all")
                 against ground truths holding every step's calls; one optimizer step.
* trl-environment  GRPOTrainer(environment_factory=toolgym.trl.environment(tools)): the tool
                 methods' schemas as transformers renders them, TRL's tool loop running them on a
                 scripted policy, and the environment's get_reward as TRL's reward.
* verl-custom-fn verl's own loader verl.trainer.ppo.reward.get_custom_reward_fn
                 with custom_reward_function.path = toolgym/verl.py (by file
                 path, as a verl user configures it) and name compute_score;
                 reward_kwargs are passed through.
* verl-naive     verl.workers.reward_manager.NaiveRewardManager on a DataProto.
* verl-batch     toolgym.verl.compute_score_batch via verl.workers.reward_manager.BatchRewardManager.
* verl-rewardloop verl.trainer.ppo.reward.load_reward_manager -> the reward-loop
                 NaiveRewardManager.run_single (what RewardLoopWorker calls),
                 driven here without ray.
* verl-episode   a multi-turn response built by verl's own Continuous Token builder for Qwen (as its
                 ToolAgentLoop builds one: replies, tool results), scored as one episode by
                 toolgym.verl_episode.EpisodeRewardManager (loaded with reward_manager.source=importlib)
                 and compute_score with episode=true.
* verl-function-tools  toolgym.verl_tools.register in a function-tool file loaded by verl's
                 load_all_tools; the tools called as verl's tool agent loop calls function tools.
* verl-episode-tools  toolgym.verl_tools.EpisodeTool (tools with per-episode state) in a tool config
                 written by write_tool_config, loaded by verl's load_all_tools and run by verl's
                 own ToolAgentLoop on a scripted server, three trajectories at once.
* verl-dataset   toolgym.verl.write_parquet read back by
                 verl.utils.dataset.rl_dataset.RLHFDataset (+ collate_fn, DataProto).

Usage (venv from scripts/integration/requirements-engines.txt, toolgym installed):

    python scripts/integration/engines_check.py            # all checks
    python scripts/integration/engines_check.py --only verl-custom-fn trl-reward
    python scripts/integration/engines_check.py --verl-path pkg://toolgym.verl   # load by module name

Prints one PASS/FAIL line per check and exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import warnings

# No hub, no telemetry, no tokenizer thread pools fighting the trainer.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU run even on a GPU box

import toolgym  # noqa: E402
import toolgym.trl  # noqa: E402
import toolgym.verl  # noqa: E402

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

WORK = tempfile.mkdtemp(prefix="toolgym-engines-")
# custom_reward_function.path; --verl-path overrides (e.g. pkg://toolgym.verl).
VERL_PATH = [toolgym.verl.__file__]
RESULTS: list[tuple[str, bool, str]] = []


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def calls_of(task) -> list[dict]:
    """The task's ground-truth calls as [{"name", "arguments"}, ...]."""
    gt = task.ground_truth
    if isinstance(gt, str):
        gt = json.loads(gt)
    return [{"name": c["name"], "arguments": c["arguments"]} for c in gt]


def correct_reply(calls: list[dict], think: bool = True) -> str:
    """A Tool-N1 style reply that makes exactly `calls`."""
    names = " and ".join(dict.fromkeys(c["name"] for c in calls)) or "nothing"
    head = f"<think>I need to call {names}.</think>\n" if think else ""
    return head + "<tool_call>\n" + json.dumps(calls) + "\n</tool_call>"


def wrong_reply(calls: list[dict]) -> str:
    bad = [dict(c, name=c["name"] + "_wrong") for c in calls] or [{"name": "nope", "arguments": {}}]
    return correct_reply(bad)


MALFORMED_REPLY = '<think>hmm</think>\n<tool_call>\n[{"name": "x", "arguments": \n</tool_call>'


def replies(task) -> list[tuple[str, str, float]]:
    c = calls_of(task)
    return [("correct", correct_reply(c), 1.0), ("wrong", wrong_reply(c), 0.0), ("malformed", MALFORMED_REPLY, 0.0)]


_TOKENIZER = None


def tokenizer():
    """A small byte-level BPE trained on the task texts, wrapped as a Qwen-like
    (ChatML, <|im_end|> eos, <|endoftext|> pad) PreTrainedTokenizerFast. No hub."""
    global _TOKENIZER
    if _TOKENIZER is not None:
        return _TOKENIZER
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = []
    for t in toolgym.synthetic_tasks(32):
        for m in toolgym.trl.to_dataset([t])[0]["prompt"]:
            corpus.append(m["content"])
        corpus.append(correct_reply(calls_of(t)))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        padding_side="left",
        model_max_length=4096,
    )
    hf.chat_template = CHATML_TEMPLATE
    # Round trip: a reply must decode back unchanged (skip_special_tokens=True as verl decodes).
    probe = correct_reply([{"name": "f", "arguments": {"a": 1, "s": "é ü"}}])
    assert hf.decode(hf(probe)["input_ids"], skip_special_tokens=True) == probe, "tokenizer round trip"
    _TOKENIZER = hf
    return hf


def tiny_model(tok):
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = Qwen2ForCausalLM(cfg)
    model.generation_config = GenerationConfig(
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    return model


FIND_SCHEMA = {"type": "object", "required": ["owner"],
               "properties": {"owner": {"type": "string", "description": "The account holder's full name."}}}
WITHDRAW_SCHEMA = {
    "type": "object", "required": ["account", "amount"],
    "properties": {
        "account": {"type": "integer", "description": "The account number."},
        "amount": {"type": "number", "minimum": 0, "description": "How much to withdraw."},
        "currency": {"type": "string", "enum": ["EUR", "USD"], "description": "The currency."},
        "memo": {"type": "object", "properties": {"text": {"type": "string"}}, "description": "A memo."},
    },
}


def check_trl_environment():
    """TRL's environment_factory with toolgym.trl.environment (toolgym.Tools defined by JSON
    Schema): transformers renders each tool method's schema from the signature and docstring
    toolgym gives it; TRL's own tool loop runs the methods (toolgym checks the arguments, then
    the handler runs) on a scripted policy; the environment's get_reward is TRL's reward
    "Bank" (1.0 for the two-step episode, 0.0 for the one that leaves a step out)."""
    import torch
    from datasets import Dataset
    from transformers.utils import get_json_schema
    from trl import GRPOTrainer

    os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    handled = []

    def tools():
        def withdraw_handler(account, amount, **_):
            handled.append(amount)
            return withdraw(account, amount)

        return [toolgym.Tool("find_account", "Finds a customer's account.", FIND_SCHEMA, find_account),
                toolgym.Tool("withdraw", "Withdraws money from an account.", WITHDRAW_SCHEMA, withdraw_handler)]

    Bank = toolgym.trl.environment(tools, name="Bank")
    probe = Bank()
    rendered = {m: get_json_schema(getattr(probe, m))["function"] for m in ("find_account", "withdraw")}
    assert rendered["find_account"] == {"name": "find_account", "description": "Finds a customer's account.",
                                        "parameters": FIND_SCHEMA}, rendered["find_account"]
    got = rendered["withdraw"]["parameters"]
    assert got["required"] == ["account", "amount"], got
    assert got["properties"]["account"] == WITHDRAW_SCHEMA["properties"]["account"], got
    assert got["properties"]["currency"] == WITHDRAW_SCHEMA["properties"]["currency"], got
    # What a type hint cannot carry is in the description, as JSON Schema.
    assert got["properties"]["amount"] == {"type": "number", "description":
                                           'How much to withdraw. JSON Schema: {"type":"number","minimum":0}'}, got
    memo = got["properties"]["memo"]
    assert memo["type"] == "object" and json.loads(memo["description"].split("JSON Schema: ", 1)[1]) == {
        "type": "object", "properties": {"text": {"type": "string"}}}, memo

    tok = qwen25_tokenizer()
    # to_dataset(template=None) writes a past call as text: Qwen2.5's chat template renders
    # it exactly as it renders the call from tool_calls.
    past = [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"type": "function", "function": {"name": "find_account", "arguments": {"owner": "Zoë"}}},
                {"type": "function", "function": {"name": "withdraw", "arguments": {"account": 7, "amount": 1}}}]},
            {"role": "tool", "name": "find_account", "content": '{"account": 7}'}]
    written = toolgym.trl.rows([toolgym.Task(past, [], [])], template=None)[0]["prompt"]
    assert tok.apply_chat_template(written, tokenize=False) == tok.apply_chat_template(past, tokenize=False)
    model = tiny_model(tok)
    truth, rows = bank_episodes()
    seen = []

    def spy(prompts, completions, environments, **kwargs):
        """What TRL hands a reward function: the rollouts' environments, as they ended."""
        seen.append([(o, c, e.calls, e.verdict) for o, c, e in zip(kwargs["owner"], completions, environments)])
        return [0.0] * len(completions)

    Scripted = scripted(GRPOTrainer)

    args = grpo_args("grpo-env", num_generations=2, max_completion_length=512, max_steps=1)
    episode = toolgym.trl.reward_function("binary", turn="all")  # the pairing the README advises
    trainer = Scripted(model=model, reward_funcs=[episode, spy], args=args,
                       train_dataset=Dataset.from_list(rows * 2), processing_class=tok, environment_factory=Bank)
    trainer.train()
    assert trainer.state.global_step == 1, trainer.state.global_step
    assert seen, "the reward functions were not called"
    for batch in seen:
        for owner, completion, calls, verdict in batch:
            roles = [m["role"] for m in completion]
            assert calls == truth[owner][: 2 if owner == "Ann Lee" else 1], (owner, calls)
            if owner == "Ann Lee":
                assert roles == ["assistant", "tool", "assistant", "tool", "assistant"], roles
                assert json.loads(completion[1]["content"]) == {"name": "find_account", "result": {"account": 7}}
                assert verdict.reward == 1.0, (owner, verdict)
            else:
                assert roles == ["assistant", "tool", "assistant"], roles
                assert (verdict.reward, verdict.reason) == (0.0, "missing_call"), (owner, verdict)
    assert handled and set(handled) == {40.5}, handled
    expected = [sum(o == "Ann Lee" for o, *_ in b) / len(b) for b in seen]
    for key in ("rewards/Bank/mean", f"rewards/{episode.__name__}/mean"):
        logged = [h[key] for h in trainer.state.log_history if key in h]
        assert logged == expected, (key, logged, expected)
    n = sum(len(b) for b in seen)
    return (f"tool schemas rendered by transformers' get_json_schema as expected; template=None past calls "
            f"render as Qwen2.5's template renders tool_calls; {n} episodes through "
            f"TRL's tool loop with environment_factory: Ann Lee's 1.0, Bo Chen's (a step left out) 0.0; "
            f"rewards/Bank/mean and rewards/{episode.__name__}/mean both {logged}")


def grpo_args(name, **settings):
    """TRL's GRPOConfig for a few CPU steps (4 completions a step, no saving, no reports)."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=os.path.join(WORK, name),
        use_cpu=True,
        bf16=False,
        fp16=False,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        logging_steps=1,
        learning_rate=1e-4,
        report_to="none",
        save_strategy="no",
        dataloader_num_workers=0,
        seed=0,
        **settings,
    )


def verl_trainer_config():
    """verl's own PPO trainer config (the Hydra-composed defaults shipped as
    verl/trainer/config/_generated_ppo_trainer.yaml), so the checks use the real key layout."""
    import verl
    from omegaconf import OmegaConf

    return OmegaConf.load(os.path.join(os.path.dirname(verl.__file__), "trainer", "config",
                                       "_generated_ppo_trainer.yaml"))


def custom_reward_config(**reward_kwargs):
    """The trainer config with toolgym as the custom reward, set the way a verl 0.9 user does:
        reward.custom_reward_function.path=<toolgym/verl.py> reward.custom_reward_function.name=compute_score
        +reward.custom_reward_function.reward_kwargs.rule=...
    (verl 0.9 reads `reward.custom_reward_function`; the legacy top-level `custom_reward_function`
    is only migrated there by verl.experimental.reward_loop.migrate_legacy_reward_impl.)"""
    from omegaconf import OmegaConf

    cfg = verl_trainer_config()
    OmegaConf.update(cfg, "reward.custom_reward_function.path", VERL_PATH[0])
    OmegaConf.update(cfg, "reward.custom_reward_function.name", "compute_score")
    if reward_kwargs:
        OmegaConf.update(cfg, "reward.custom_reward_function.reward_kwargs", dict(reward_kwargs), force_add=True)
    assert cfg.reward.reward_manager.source == "register" and cfg.reward.reward_manager.name == "naive"
    return cfg


def dataproto_batch(tok, prompt_texts, response_texts, task_list, ground_truth_as="json"):
    """A verl rollout batch: left-padded prompts, right-padded responses,
    attention_mask over both, plus the non-tensor columns the parquet carries."""
    import numpy as np
    import torch
    from verl import DataProto

    p_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompt_texts]
    r_ids = [tok(r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for r in response_texts]
    P, R, pad = max(map(len, p_ids)), max(map(len, r_ids)), tok.pad_token_id
    prompts = torch.tensor([[pad] * (P - len(x)) + x for x in p_ids])
    responses = torch.tensor([x + [pad] * (R - len(x)) for x in r_ids])
    p_mask = torch.tensor([[0] * (P - len(x)) + [1] * len(x) for x in p_ids])
    r_mask = torch.tensor([[1] * len(x) + [0] * (R - len(x)) for x in r_ids])
    gts = [json.dumps(calls_of(t)) if ground_truth_as == "json" else calls_of(t) for t in task_list]
    obj = lambda xs: np.array(xs + [None], dtype=object)[:-1]  # noqa: E731  (keep dicts/lists as objects)
    return DataProto.from_dict(
        tensors={
            "prompts": prompts,
            "responses": responses,
            "input_ids": torch.cat([prompts, responses], dim=1),
            "attention_mask": torch.cat([p_mask, r_mask], dim=1),
        },
        non_tensors={
            "data_source": obj(["toolgym"] * len(task_list)),
            "reward_model": obj([{"style": "rule", "ground_truth": g} for g in gts]),
            "extra_info": obj([{"index": i, "id": t.id} for i, t in enumerate(task_list)]),
        },
    )


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

def check_trl_reward():
    fn = toolgym.trl.reward_function("binary")
    assert fn.__name__ == "toolgym_binary", fn.__name__
    tasks = toolgym.synthetic_tasks(4)
    ds = toolgym.trl.to_dataset(tasks)
    assert len(ds) == 4 and {"prompt", "ground_truth", "id", "source"} <= set(ds.column_names), ds.column_names
    row = ds[0]
    assert isinstance(row["prompt"], list) and all({"role", "content"} <= set(m) for m in row["prompt"]), row["prompt"]
    assert isinstance(row["ground_truth"], str) and json.loads(row["ground_truth"]) == calls_of(tasks[0])

    cases = [r for t in tasks for r in replies(t)]
    gts = [row["ground_truth"] for row in ds for _ in range(3)]
    prompts = [row["prompt"] for row in ds for _ in range(3)]
    want = [w for _, _, w in cases]
    # What TRL passes besides prompts/completions (grpo_trainer._calculate_rewards).
    extra = dict(completion_ids=[[0]] * len(cases), trainer_state=None, log_extra=lambda *a, **k: None,
                 log_metric=lambda *a, **k: None, id=[r["id"] for r in ds for _ in range(3)],
                 source=[r["source"] for r in ds for _ in range(3)])
    conv = [[{"role": "assistant", "content": text}] for _, text, _ in cases]
    got_conv = fn(prompts=prompts, completions=conv, ground_truth=gts, **extra)
    assert got_conv == want, f"conversational {got_conv} != {want}"
    plain = [text for _, text, _ in cases]
    got_plain = fn(prompts=[p[-1]["content"] for p in prompts], completions=plain, ground_truth=gts, **extra)
    assert got_plain == want, f"plain {got_plain} != {want}"
    return f"conversational+plain {len(cases)} completions scored {want[:3]}..., __name__={fn.__name__}"


def check_trl_reward_parsed():
    """TRL parses completions into tool_calls (transformers>=5 parse_response) when GRPOTrainer gets
    `tools=` or the tokenizer carries a response_schema/response_template (Qwen3 schema: think ->
    reasoning_content, each <tool_call> -> tool_calls[i] = {"type": "function", "function": {...}},
    content = the rest). toolgym's reward must score that shape like the text it came from."""
    fn = toolgym.trl.reward_function("binary")
    t = toolgym.synthetic_tasks(1)[0]
    calls = calls_of(t)
    parsed = [[{
        "role": "assistant",
        "reasoning_content": "I need to call " + calls[0]["name"] + ".",
        "content": "",
        "tool_calls": [{"type": "function", "function": c} for c in calls],
    }]]
    got = fn(prompts=[[]], completions=parsed, ground_truth=[json.dumps(calls)])
    assert got == [1.0], f"a correct call in TRL's parsed tool_calls shape scored {got} (content is empty there)"
    # TRL's own parser (Qwen3 schema, Python's json) takes NaN into the
    # arguments: that completion is the model's and must score 0, not None
    # (TRL leaves None out of the advantages).
    import math
    import warnings

    from transformers.utils.chat_parsing_utils import recursive_parse
    from trl.chat_template_utils import qwen3_schema

    args = dict(calls[0]["arguments"], amount=float("nan"))
    text = "<think>x</think>\n<tool_call>\n" + json.dumps({"name": calls[0]["name"], "arguments": args}) + "\n</tool_call>"
    nan = recursive_parse(text, qwen3_schema)
    assert math.isnan(nan["tool_calls"][0]["function"]["arguments"]["amount"]), nan
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        got = fn(prompts=[[]], completions=[[nan]], ground_truth=[json.dumps(calls)])
    assert got == [0.0], f"a NaN argument parsed by TRL scored {got}, not 0.0"
    return "parsed tool_calls/reasoning_content completion scored 1.0; a NaN argument TRL's parser let in scored 0.0"


def check_trl_grpo():
    import torch
    from trl import GRPOTrainer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    tok = tokenizer()
    model = tiny_model(tok)
    ds = toolgym.trl.to_dataset(toolgym.synthetic_tasks(16))
    reward = toolgym.trl.reward_function("binary")
    seen = {}

    def spy(prompts, completions, **kwargs):
        """Records what TRL hands a reward function and re-scores it with toolgym."""
        seen.setdefault("completion", completions[0])
        seen.setdefault("kwargs", sorted(kwargs))
        seen.setdefault("toolgym", reward(prompts=prompts, completions=completions, **kwargs))
        return [0.0] * len(completions)

    args = grpo_args("grpo", num_generations=4, max_completion_length=12, max_steps=2)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward, spy], args=args, train_dataset=ds,
                          processing_class=tok)
    trainer.train()
    logs = trainer.state.log_history
    key = f"rewards/{reward.__name__}/mean"
    steps = [h for h in logs if key in h]
    assert trainer.state.global_step == 2, trainer.state.global_step
    assert len(steps) == 2, f"{key} not logged per step: {logs}"
    assert all(0.0 <= h[key] <= 1.0 for h in steps), steps
    comp = seen["completion"]
    assert isinstance(comp, list) and comp[0]["role"] == "assistant", comp
    assert {"ground_truth", "id", "source", "completion_ids", "trainer_state"} <= set(seen["kwargs"]), seen
    assert len(seen["toolgym"]) == args.per_device_train_batch_size, seen["toolgym"]
    metrics = sorted(k for k in steps[0] if k.startswith("rewards/") or k.startswith("reward"))
    return f"2 steps; {key}={[h[key] for h in steps]}; logged {metrics}; reward kwargs {seen['kwargs']}"


# Two accounts; the episode's ground truth is both steps: look the account up, then withdraw.
BANK = {"Ann Lee": 7, "Bo Chen": 9}


def find_account(owner: str) -> dict:
    """Finds a customer's account.

    Args:
        owner: The account holder's full name.
    """
    if owner not in BANK:
        raise ValueError(f"no account for {owner}")
    return {"account": BANK[owner]}


def withdraw(account: int, amount: float) -> dict:
    """Withdraws money from an account.

    Args:
        account: The account number.
        amount: How much to withdraw.
    """
    return {"account": account, "withdrawn": amount}


def scripted_reply(history: str) -> str:
    """What the scripted policy writes next, given the conversation so far (rendered by the
    Qwen2.5 template): Ann Lee's episode looks the account up, withdraws with the id the tool
    returned, then answers; Bo Chen's answers right after the look-up (a step left out). One call
    object per <tool_call> block, the form TRL's Qwen response parser reads."""
    owner = "Ann Lee" if "Ann Lee" in history else "Bo Chen"
    amount = 40.5 if owner == "Ann Lee" else 10
    results = history.count("<tool_response>")
    def block(name, args):
        return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"
    if results == 0:
        return f"<think>Find {owner}'s account first.</think>\n" + block("find_account", {"owner": owner})
    if results == 1 and owner == "Ann Lee":
        account = BANK[owner]
        # The tool's result is in the prompt: TRL writes it as str(result), verl's tools as text (JSON here).
        result = {"account": account}
        assert str(result) in history or json.dumps(result) in history, history
        return f"<think>Account {account}.</think>\n" + block("withdraw", {"account": account, "amount": amount})
    return "<think>Done.</think>\nThe money was withdrawn."


def bank_episodes():
    """The two bank episodes' ground truths (by owner) and their dataset rows: Ann Lee's
    holds both steps, and `scripted_reply` makes both; Bo Chen's reply leaves the withdrawal out."""
    truth = {
        "Ann Lee": [{"name": "find_account", "arguments": {"owner": "Ann Lee"}},
                    {"name": "withdraw", "arguments": {"account": 7, "amount": 40.5}}],
        "Bo Chen": [{"name": "find_account", "arguments": {"owner": "Bo Chen"}},
                    {"name": "withdraw", "arguments": {"account": 9, "amount": 10}}],
    }
    rows = [{"prompt": [{"role": "user", "content": f"Withdraw {amount} from {owner}'s account."}],
             "ground_truth": json.dumps(truth[owner]), "owner": owner}
            for owner, amount in (("Ann Lee", 40.5), ("Bo Chen", 10))]
    return truth, rows


def scripted(trainer_class):
    """TRL's trainer with the model's generation replaced by `scripted_reply` (tokenized);
    everything else (tool parsing, tool calls, completion assembly, rewards) is TRL's."""

    class Scripted(trainer_class):
        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations,
                                  has_tool_images=False):
            out = []
            for ids in prompt_ids:
                reply = scripted_reply(self._tokenizer.decode(ids))
                out.append(self._tokenizer(reply, add_special_tokens=False)["input_ids"]
                           + [self._tokenizer.eos_token_id])
            return out, None

    return Scripted


def qwen25_tokenizer():
    """The script's BPE tokenizer with TRL's copy of the Qwen2.5 chat template (tools in the
    system prompt, tool results as <tool_response> in a user turn); with it, TRL's
    add_response_schema gives the tokenizer Qwen's response parser."""
    import pathlib

    import trl

    base = tokenizer()
    tok = base.__class__(
        tokenizer_object=base.backend_tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        padding_side="left",
        model_max_length=4096,
    )
    tok.chat_template = (pathlib.Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()
    return tok


def check_trl_tool_episode():
    """TRL's own tool loop (GRPOTrainer(tools=...), real parse_response, real tool execution,
    real completion assembly) on a scripted policy: the model's generation is replaced by the
    replies of `scripted_reply` (tokenized), everything else is TRL's. The reward with
    turn="all" scores each episode's calls against a ground truth holding both steps."""
    import torch
    from datasets import Dataset
    from trl import GRPOTrainer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    tok = qwen25_tokenizer()
    model = tiny_model(tok)
    truth, rows = bank_episodes()
    ds = Dataset.from_list(rows * 2)
    episode = toolgym.trl.reward_function("binary", turn="all")
    first = toolgym.trl.reward_function("binary", turn="first")
    seen = []

    def spy(prompts, completions, **kwargs):
        """Records what TRL hands a reward function and scores it with toolgym both ways."""
        seen.append({
            "owner": list(kwargs["owner"]),
            "completions": completions,
            "all": episode(prompts=prompts, completions=completions, **kwargs),
            "first": first(prompts=prompts, completions=completions, **kwargs),
        })
        return [0.0] * len(completions)

    Scripted = scripted(GRPOTrainer)

    args = grpo_args("grpo-tools", num_generations=2, max_completion_length=512, max_steps=1)
    trainer = Scripted(model=model, reward_funcs=[episode, spy], args=args, train_dataset=ds,
                       processing_class=tok, tools=[find_account, withdraw])
    trainer.train()
    assert trainer.state.global_step == 1, trainer.state.global_step
    assert seen, "the reward function was not called"
    for batch in seen:
        for owner, completion, all_, first_ in zip(batch["owner"], batch["completions"], batch["all"],
                                                  batch["first"]):
            roles = [m["role"] for m in completion]
            if owner == "Ann Lee":
                assert roles == ["assistant", "tool", "assistant", "tool", "assistant"], roles
                assert completion[1]["content"] == str({"account": 7}), completion[1]
                assert (all_, first_) == (1.0, 0.0), (owner, all_, first_, completion)
            else:
                assert roles == ["assistant", "tool", "assistant"], roles
                assert (all_, first_) == (0.0, 0.0), (owner, all_, first_, completion)
    key = f"rewards/{episode.__name__}/mean"
    logged = [h[key] for h in trainer.state.log_history if key in h]
    expected = [sum(owner == "Ann Lee" for owner in b["owner"]) / len(b["owner"]) for b in seen]
    assert logged == expected, (key, logged, expected)
    n = sum(len(b["owner"]) for b in seen)
    return (f"{n} episodes through TRL's tool loop: Ann Lee's (find, withdraw, answer) 1.0 with "
            f"turn='all' (0.0 with turn='first'), Bo Chen's (a step left out) 0.0; {key}={logged}")


def check_verl_custom_fn():
    from verl.trainer.ppo.reward import get_custom_reward_fn

    fn = get_custom_reward_fn(custom_reward_config())
    assert fn is not None
    tasks = toolgym.synthetic_tasks(3)
    got, want = [], []
    for t in tasks:
        for as_json in (True, False):  # ground truth as the parquet stores it (JSON str) and as a list
            gt = json.dumps(calls_of(t)) if as_json else calls_of(t)
            for label, text, w in replies(t):
                r = fn(data_source="toolgym", solution_str=text, ground_truth=gt, extra_info={"index": 0})
                assert isinstance(r, (float, int)) and not isinstance(r, bool), (label, type(r))
                got.append(float(r))
                want.append(w)
    assert got == want, f"{got} != {want}"
    # reward_kwargs reach compute_score (`rule=`): a think-less correct reply.
    t = tasks[0]
    no_think = correct_reply(calls_of(t), think=False)
    gt = json.dumps(calls_of(t))
    plain = fn(data_source="toolgym", solution_str=no_think, ground_truth=gt, extra_info=None)
    fn2 = get_custom_reward_fn(custom_reward_config(rule="binary-no-think"))
    relaxed = fn2(data_source="toolgym", solution_str=no_think, ground_truth=gt, extra_info=None)
    assert (plain, relaxed) == (0.0, 1.0), (plain, relaxed)
    # pkg:// form of the path works as well.
    from omegaconf import OmegaConf

    cfg = custom_reward_config()
    OmegaConf.update(cfg, "reward.custom_reward_function.path", "pkg://toolgym.verl")
    fn3 = get_custom_reward_fn(cfg)
    assert fn3(data_source="toolgym", solution_str=replies(t)[0][1], ground_truth=gt) == 1.0
    # The legacy top-level key: ignored by get_custom_reward_fn until migrated (main_ppo does not migrate).
    from verl.experimental.reward_loop import migrate_legacy_reward_impl

    legacy = verl_trainer_config()
    OmegaConf.update(legacy, "custom_reward_function.path", VERL_PATH[0])
    OmegaConf.update(legacy, "custom_reward_function.name", "compute_score")
    ignored = get_custom_reward_fn(legacy) is None
    fn4 = get_custom_reward_fn(migrate_legacy_reward_impl(legacy))
    assert fn4(data_source="toolgym", solution_str=replies(t)[0][1], ground_truth=gt) == 1.0
    # reward_kwargs.sources (an OmegaConf list): a gsm8k row beside toolgym's goes to verl's own scorer.
    fn5 = get_custom_reward_fn(custom_reward_config(sources=["toolgym"]))
    math = [fn5(data_source="openai/gsm8k", solution_str=f"So the answer is #### {a}", ground_truth="42")
            for a in (42, 41)]
    ours = fn5(data_source="toolgym", solution_str=replies(t)[0][1], ground_truth=gt)
    assert (math, ours) == ([1.0, 0.0], 1.0), (math, ours)
    return (f"path={VERL_PATH[0]}; {len(got)} calls -> 1/0/0 per task; reward_kwargs rule= honoured; "
            f"pkg:// ok; legacy top-level custom_reward_function ignored unless migrated: {ignored}; "
            f"sources=[toolgym]: gsm8k rows by verl's scorer {math}")


def check_verl_naive():
    from verl.workers.reward_manager import NaiveRewardManager

    from verl.trainer.ppo.reward import get_custom_reward_fn

    tok = tokenizer()
    fn = get_custom_reward_fn(custom_reward_config())
    tasks = toolgym.synthetic_tasks(3)
    rows = [(t, text, w) for t in tasks for _, text, w in replies(t)]
    prompts = [tok.apply_chat_template(toolgym.trl.to_dataset([t])[0]["prompt"], add_generation_prompt=True,
                                       tokenize=False) for t, _, _ in rows]
    data = dataproto_batch(tok, prompts, [x for _, x, _ in rows], [t for t, _, _ in rows])
    mgr = NaiveRewardManager(tokenizer=tok, num_examine=0, compute_score=fn)
    out = mgr(data, return_dict=True)
    rt = out["reward_tensor"]
    got = rt.sum(-1).tolist()
    want = [w for _, _, w in rows]
    assert got == want, f"{got} != {want}"
    # The score sits on the last valid response token.
    last = data.batch["attention_mask"][:, data.batch["prompts"].shape[1]:].sum(-1) - 1
    assert all(rt[i, last[i]] == want[i] for i in range(len(rows)))
    return f"reward_tensor {tuple(rt.shape)} row sums {got}"


def check_verl_batch():
    """toolgym.verl.compute_score_batch through verl's BatchRewardManager (verl.workers.reward_manager,
    the pre-reward-loop manager). verl 0.9's trainer resolves reward managers from the reward-loop
    registry, which has no "batch" entry; reported in the message."""
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager import BatchRewardManager
    from omegaconf import OmegaConf

    if not hasattr(toolgym.verl, "compute_score_batch"):
        return "skipped: toolgym.verl has no compute_score_batch"
    cfg = custom_reward_config()
    OmegaConf.update(cfg, "reward.custom_reward_function.name", "compute_score_batch")
    fn = get_custom_reward_fn(cfg)
    tok = tokenizer()
    tasks = toolgym.synthetic_tasks(3)
    rows = [(t, text, w) for t in tasks for _, text, w in replies(t)]
    prompts = [tok.apply_chat_template(toolgym.trl.to_dataset([t])[0]["prompt"], add_generation_prompt=True,
                                       tokenize=False) for t, _, _ in rows]
    data = dataproto_batch(tok, prompts, [x for _, x, _ in rows], [t for t, _, _ in rows])
    mgr = BatchRewardManager(tokenizer=tok, num_examine=0, compute_score=fn)
    got = mgr(data, return_dict=True)["reward_tensor"].sum(-1).tolist()
    want = [w for _, _, w in rows]
    assert got == want, f"{got} != {want}"
    try:
        get_reward_manager_cls("batch")
        in_loop = "registered"
    except ValueError as e:
        in_loop = f"not in the reward-loop registry ({e})"
    return f"BatchRewardManager row sums {got}; reward_manager.name=batch: {in_loop}"


def check_verl_rewardloop():
    import torch

    from verl.trainer.ppo.reward import load_reward_manager

    tok = tokenizer()
    mgr = load_reward_manager(custom_reward_config(), tok)
    tasks = toolgym.synthetic_tasks(2)
    rows = [(t, text, w) for t in tasks for _, text, w in replies(t)]
    prompts = [tok.apply_chat_template(toolgym.trl.to_dataset([t])[0]["prompt"], add_generation_prompt=True,
                                       tokenize=False) for t, _, _ in rows]
    data = dataproto_batch(tok, prompts, [x for _, x, _ in rows], [t for t, _, _ in rows], ground_truth_as="json")
    outs = [mgr.loop.run_until_complete(mgr.run_single(data[i:i + 1])) for i in range(len(data))]
    got = [o["reward_score"] for o in outs]
    want = [w for _, _, w in rows]
    assert got == want, f"{got} != {want}"
    assert all(o["reward_extra_info"].get("acc") == o["reward_score"] for o in outs), outs[0]
    rm = type(mgr).assemble_rm_scores(data, got)
    assert torch.equal(rm.sum(-1), torch.tensor(want, dtype=torch.float32))
    return f"{type(mgr).__module__}.{type(mgr).__name__}.run_single -> {got}"


def check_verl_episode():
    """verl's tool agent loop layout, scored as one episode: the prompt and response token ids are
    built by verl's own Continuous Token builder for Qwen (what ToolAgentLoop uses: initial prompt,
    each generated reply ending at <|im_end|>, each tool result merged as the chat template renders
    it), the batch is scored by toolgym.verl_episode.EpisodeRewardManager loaded the way a verl user
    configures it (reward_manager.source=importlib), with compute_score and episode=true."""
    import numpy as np
    import torch
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

    # Imported before warnings become errors below: its first import warns (ray's own
    # DeprecationWarning), which would fail a run of this check alone (--only).
    import toolgym.verl_episode  # noqa: F401

    tok = qwen25_tokenizer()
    builder = create_continuous_token_builder(tok, hf_model_type="qwen2")
    assert type(builder).__name__ == "QwenContinuousTokenBuilder", type(builder)
    schemas = [{"type": "function", "function": {"name": f.__name__, "description": f.__doc__.split("\n")[0],
                                                  "parameters": {"type": "object", "properties": {}}}}
               for f in (find_account, withdraw)]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")

    def episode(owner, amount):
        """(prompt ids, response ids) of the scripted policy's episode, built as ToolAgentLoop does."""
        messages = [{"role": "user", "content": f"Withdraw {amount} from {owner}'s account."}]
        prompt_ids = builder.build_initial_tokens(messages, tools=schemas)
        runtime = list(prompt_ids)
        while True:
            history = tok.decode(runtime)
            reply = scripted_reply(history)
            ids = tok(reply, add_special_tokens=False)["input_ids"] + [im_end]
            runtime = builder.merge_assistant_tokens(runtime, ids).token_ids
            messages.append({"role": "assistant", "content": reply})
            if "<tool_call>" not in reply:
                return prompt_ids, runtime[len(prompt_ids):]
            call = json.loads(reply.split("<tool_call>")[1].split("</tool_call>")[0])
            result = {"find_account": find_account, "withdraw": withdraw}[call["name"]](**call["arguments"])
            previous = list(messages)
            messages.append({"role": "tool", "content": json.dumps(result)})
            runtime = builder.merge_context_tokens(previous, messages, runtime, tools=schemas).token_ids

    truth = {
        "Ann Lee": [{"name": "find_account", "arguments": {"owner": "Ann Lee"}},
                    {"name": "withdraw", "arguments": {"account": 7, "amount": 40.5}}],
        "Bo Chen": [{"name": "find_account", "arguments": {"owner": "Bo Chen"}},
                    {"name": "withdraw", "arguments": {"account": 9, "amount": 10}}],
    }
    owners = [("Ann Lee", 40.5), ("Bo Chen", 10)]
    built = [episode(o, a) for o, a in owners]
    P = max(len(p) for p, _ in built)
    R = max(len(r) for _, r in built)
    pad = tok.pad_token_id
    prompts = torch.tensor([[pad] * (P - len(p)) + p for p, _ in built])
    responses = torch.tensor([r + [pad] * (R - len(r)) for _, r in built])
    mask = torch.tensor([[0] * (P - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (R - len(r)) for p, r in built])
    obj = lambda xs: np.array(xs + [None], dtype=object)[:-1]  # noqa: E731
    data = DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses,
                 "input_ids": torch.cat([prompts, responses], dim=1), "attention_mask": mask},
        non_tensors={
            "data_source": obj(["toolgym"] * 2),
            "reward_model": obj([{"style": "rule", "ground_truth": json.dumps(truth[o])} for o, _ in owners]),
            "extra_info": obj([{"index": i} for i in range(2)]),
            # verl's count (ToolAgentLoop: user_turns + assistant_turns + 1), checked against the headers.
            "__num_turns__": np.array([6, 4]),
        },
    )
    response_text = tok.decode(built[0][1])
    assert response_text.count("<tool_response>") == 2 and response_text.count("<|im_start|>assistant") == 2, response_text

    def scores(cfg):
        mgr = load_reward_manager(cfg, tok)
        return type(mgr).__name__, [mgr.loop.run_until_complete(mgr.run_single(data[i:i + 1]))["reward_score"]
                                    for i in range(len(data))]

    import warnings

    manager_file = os.path.join(os.path.dirname(toolgym.verl.__file__), "verl_episode.py")
    got = {}
    for path in (manager_file, "pkg://toolgym.verl_episode"):
        cfg = custom_reward_config(episode=True)
        OmegaConf.update(cfg, "reward.reward_manager.source", "importlib")
        OmegaConf.update(cfg, "reward.reward_manager.module.path", path)
        OmegaConf.update(cfg, "reward.reward_manager.name", "EpisodeRewardManager")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the headers agree with verl's num_turns: no warning
            got[path] = scores(cfg)
        assert got[path] == ("EpisodeRewardManager", [1.0, 0.0]), (path, got[path])
    # verl's own manager decodes without special tokens: the turns run together, nothing scores,
    # and the warning names the manager to use.
    toolgym.verl._warned.discard("no-headers")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        naive = scores(custom_reward_config(episode=True))
    assert naive == ("NaiveRewardManager", [0.0, 0.0]), naive
    assert any("EpisodeRewardManager" in str(w.message) for w in caught), [str(w.message) for w in caught]
    # Mixed data (reward_kwargs.sources=[toolgym]): a math_dapo row is decoded as verl decodes it
    # (no <|im_end|> in the answer) and scored by verl's own scorer; toolgym's rows as before.
    cfg = custom_reward_config(episode=True, sources=["toolgym"])
    OmegaConf.update(cfg, "reward.reward_manager.source", "importlib")
    OmegaConf.update(cfg, "reward.reward_manager.module.path", "pkg://toolgym.verl_episode")
    OmegaConf.update(cfg, "reward.reward_manager.name", "EpisodeRewardManager")
    assert scores(cfg) == ("EpisodeRewardManager", [1.0, 0.0])
    q = tok("What is six times seven?", add_special_tokens=False)["input_ids"]
    math = []
    for answer in (42, 41):
        a = tok(f"Six times seven. Answer: {answer}", add_special_tokens=False)["input_ids"] + [im_end]
        row = DataProto.from_dict(
            tensors={"prompts": torch.tensor([q]), "responses": torch.tensor([a]),
                     "input_ids": torch.tensor([q + a]), "attention_mask": torch.tensor([[1] * (len(q) + len(a))])},
            non_tensors={"data_source": obj(["math_dapo"]), "reward_model": obj([{"style": "rule", "ground_truth": "42"}]),
                         "extra_info": obj([{"index": 9}]), "__num_turns__": np.array([2])})
        mgr = load_reward_manager(cfg, tok)
        math.append(mgr.loop.run_until_complete(mgr.run_single(row))["reward_score"])
    assert math == [1.0, -1.0], math
    return (f"verl Continuous Token (Qwen) responses of {R} tokens max, 2 tool rounds: "
            f"EpisodeRewardManager (file and pkg://) -> {got[manager_file][1]}; "
            f"NaiveRewardManager (special tokens skipped) -> {naive[1]}; sources=[toolgym]: math_dapo "
            f"rows by verl's scorer {math}")


def check_verl_function_tools():
    """toolgym.verl_tools.register in a function-tool file, loaded by verl's own load_all_tools
    (what the agent loop worker does with rollout.multi_turn.function_tool_path); each tool is
    called as ToolAgentLoop._call_tool calls a function tool (FunctionTool.call, then
    normalize_function_tool_return). verl's agent loop module itself is not imported here (it
    needs ray, hydra, fastapi, opentelemetry, ...)."""
    import asyncio

    import pyarrow.parquet as pq
    from omegaconf import OmegaConf
    from verl.tools.function_tool import normalize_function_tool_return
    from verl.tools.tool_registry import load_all_tools
    from verl.utils.dataset.rl_dataset import RLHFDataset

    import toolgym.verl_tools

    path = os.path.join(WORK, "bank_tools.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            "import toolgym, toolgym.verl_tools\n"
            f"BANK = {BANK!r}\n"
            "def find_account(owner):\n"
            "    if owner not in BANK:\n"
            "        raise ValueError(f'no account for {owner}')\n"
            "    return {'account': BANK[owner]}\n"
            "def withdraw(account, amount, **_):\n"
            "    return {'account': account, 'withdrawn': amount}\n"
            "toolgym.verl_tools.register([\n"
            f"    toolgym.Tool('find_account', \"Finds a customer's account.\", {FIND_SCHEMA!r}, find_account),\n"
            f"    toolgym.Tool('withdraw', 'Withdraws money from an account.', {WITHDRAW_SCHEMA!r}, withdraw),\n"
            "])\n"
        )
    tools = {t.name: t for t in load_all_tools(tool_config_path=None, function_tool_path=path)}
    assert sorted(tools) == ["find_account", "withdraw"], sorted(tools)
    # The schema verl renders: its model keeps type, description and enum; the rest is in the
    # description as JSON Schema.
    for name, schema in (("find_account", FIND_SCHEMA), ("withdraw", WITHDRAW_SCHEMA)):
        got = tools[name].tool_schema.model_dump(exclude_unset=True, exclude_none=True)
        assert got["function"]["parameters"]["required"] == schema["required"], got
        for param, want in schema["properties"].items():
            have = got["function"]["parameters"]["properties"][param]
            assert have["type"] == want["type"] and have.get("enum") == want.get("enum"), (param, have)
            assert have["description"].startswith(want["description"]), (param, have)
            if set(want) - {"type", "description", "enum"}:
                note = json.loads(have["description"].split("JSON Schema: ", 1)[1])
                assert note == {k: v for k, v in want.items() if k != "description"}, (param, note)

    async def call(name, arguments):
        response, reward, metrics = normalize_function_tool_return(await tools[name].call(arguments))
        return json.loads(response.text), reward

    ok = asyncio.run(call("find_account", {"owner": "Ann Lee"}))
    assert ok == ({"name": "find_account", "result": {"account": 7}}, 0.0), ok
    bad, _ = asyncio.run(call("withdraw", {"account": "7", "amount": -1}))
    problems = {p["path"] for p in bad["error"]["problems"]}
    assert bad["error"]["kind"] == "invalid_arguments" and problems == {"/account", "/amount"}, bad
    raised, _ = asyncio.run(call("find_account", {"owner": "Nobody"}))
    assert raised["error"] == {"kind": "tool_error", "message": "ValueError: no account for Nobody"}, raised

    # Each row's own tools, for verl's per-row tool_selection.
    tasks = toolgym.synthetic_tasks(4, split="train", seed=3)
    parquet = os.path.join(WORK, "selection.parquet")
    toolgym.verl.write_parquet(tasks, parquet, template=None, tool_selection=True)
    written = pq.read_table(parquet).column("extra_info").to_pylist()
    ds = RLHFDataset(data_files=parquet, tokenizer=tokenizer(), config=OmegaConf.create({
        "prompt_key": "prompt", "max_prompt_length": 4096, "truncation": "error", "filter_overlong_prompts": False,
        "return_raw_chat": True, "cache_dir": os.path.join(WORK, "verl-cache")}))
    for i, task in enumerate(tasks):
        want = [t["name"] for t in task.tools]
        assert written[i]["tool_selection"] == want and list(ds[i]["extra_info"]["tool_selection"]) == want, i
    return ("function tools loaded by verl's load_all_tools from a file calling toolgym.verl_tools.register; "
            "schemas as verl keeps them (rest as JSON Schema in descriptions); calls through FunctionTool.call "
            "+ normalize_function_tool_return: result, invalid arguments listed (no handler run), handler "
            "exception as tool_error; write_parquet(tool_selection=True) read back by RLHFDataset")


#: A tool description with what verl's YAML loader (OmegaConf) would read otherwise.
WITHDRAW_DESCRIPTION = "Withdraws ${AMOUNT} (not \\${HOME}) \x7f\x85 \u2028 é."


def check_verl_episode_tools():
    """toolgym.verl_tools.EpisodeTool in verl's own ToolAgentLoop: tools with per-episode state (a
    balance that withdrawals change) from a function named in a tool config written by
    write_tool_config, loaded by verl's load_all_tools, run by ToolAgentLoop.run (its hermes parser,
    its parallel calls, its Continuous Token prompt for Qwen) on a scripted server, three
    trajectories at once. Each must see its own balance, the parallel calls of a reply in order, the
    row's create_kwargs, and the tool text masked out of the response."""
    import asyncio
    import types

    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop
    from verl.tools.tool_registry import load_all_tools
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.workers.rollout.replica import TokenOutput

    import toolgym.verl_tools

    path = os.path.join(WORK, "stateful_bank.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            "import time, toolgym\n"
            "def bank_tools(balance=100.0):\n"
            "    state = {'balance': float(balance)}\n"
            "    def withdraw(amount):\n"
            "        if amount == 30:\n"
            "            time.sleep(0.05)  # slower than the call after it: out of order, balances differ\n"
            "        if amount > state['balance']:\n"
            "            raise ValueError('insufficient funds')\n"
            "        state['balance'] -= amount\n"
            "        return {'balance': state['balance']}\n"
            "    def balance():\n"
            "        return {'balance': state['balance']}\n"
            "    return [\n"
            f"        toolgym.Tool('withdraw', {WITHDRAW_DESCRIPTION!r}, {{'type': 'object', 'properties': "
            f"{{'amount': {{'type': 'number', 'minimum': 0}}}}, 'required': ['amount']}}, withdraw),\n"
            "        toolgym.Tool('balance', 'The balance.', {'type': 'object', 'properties': {}}, balance),\n"
            "    ]\n"
        )
    config_path = os.path.join(WORK, "bank_tools.yaml")
    assert toolgym.verl_tools.write_tool_config(config_path, f"{path}:bank_tools") == ["withdraw", "balance"]
    tools = load_all_tools(tool_config_path=config_path, function_tool_path=None)
    assert [type(t).__name__ for t in tools] == ["EpisodeTool"] * 2, tools
    # What OmegaConf or YAML would read otherwise (an interpolation, DEL, NEL, U+2028) reads back as written.
    assert tools[0].tool_schema.function.description == WITHDRAW_DESCRIPTION, tools[0].tool_schema

    tok = qwen25_tokenizer()
    im_end = tok.convert_tokens_to_ids("<|im_end|>")

    def block(name, args):
        return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"

    # What each trajectory writes, reply by reply (its user message says which it is).
    script = {
        "A": [block("withdraw", {"amount": 30}) + "\n" + block("withdraw", {"amount": 50}),
              block("balance", {}), "Done."],
        "B": [block("withdraw", {"amount": 10}), block("balance", {}), "Done."],
        "C": [block("withdraw", {"amount": 6}), "Done."],
    }

    class ScriptedServer:
        async def generate(self, request_id, prompt_ids, sampling_params, **kwargs):
            history = tok.decode(prompt_ids)
            which = history.split("Trajectory ")[1][0]
            turn = history.count("<|im_start|>assistant") - 1
            await asyncio.sleep(0.01 * (3 - ord(which) + ord("A")))  # interleave the trajectories
            reply = "<think>Next.</think>\n" + script[which][turn]
            return TokenOutput(token_ids=tok(reply, add_special_tokens=False)["input_ids"] + [im_end])

    cfg = OmegaConf.create({"actor_rollout_ref": {"rollout": {
        "prompt_length": 1024, "response_length": 1024, "full_determinism": False,
        "multi_turn": {"max_user_turns": 8, "max_assistant_turns": 8, "max_parallel_calls": 4,
                       "max_tool_response_length": 4096, "tool_response_truncate_side": "middle",
                       "format": "hermes"}}}})
    async def rollouts():
        # Made in the running event loop, as verl's worker makes it (it keeps that loop).
        loop = ToolAgentLoop(trainer_config=DictConfigWrap(cfg), server_manager=ScriptedServer(), tokenizer=tok,
                             processor=None, dataset_cls=RLHFDataset,
                             data_config=DictConfigWrap(OmegaConf.create({})), hf_model_type="qwen2",
                             tools=ToolListWrap(tools))
        rows = [("A", {}), ("B", {}), ("C", {"toolgym": {"create_kwargs": {"balance": 5}}})]
        return await asyncio.gather(*[
            loop.run({}, raw_prompt=[{"role": "user", "content": f"Trajectory {name}: withdraw money."}],
                     tools_kwargs=kwargs, extra_info={}) for name, kwargs in rows])

    outputs = asyncio.run(rollouts())
    seen = {}
    for name, out in zip("ABC", outputs):
        text = tok.decode(out.response_ids)
        seen[name] = [json.loads(r.strip()) for r in
                      [part.split("</tool_response>")[0] for part in text.split("<tool_response>")[1:]]]
        # The model's tokens count, the tools' do not.
        model = tok.decode([t for t, m in zip(out.response_ids, out.response_mask) if m])
        assert "<tool_response>" not in model and "Done." in model, (name, model)
        assert all(isinstance(k, str) for k in out.extra_fields), out.extra_fields  # nothing but verl's own
    balances = {n: [r.get("result", r.get("error")) for r in rs] for n, rs in seen.items()}
    assert balances["A"] == [{"balance": 70.0}, {"balance": 20.0}, {"balance": 20.0}], balances
    assert balances["B"] == [{"balance": 90.0}, {"balance": 90.0}], balances
    assert balances["C"] == [{"kind": "tool_error", "message": "ValueError: insufficient funds"}], balances
    return ("write_tool_config read by verl's load_all_tools; verl's ToolAgentLoop.run on a scripted server, "
            "3 trajectories at once: each its own balance (A 100->70->20 from two parallel calls in order, "
            "B 100->90, C from create_kwargs 5: insufficient funds), tool text masked out of the response")


def check_verl_dataset():
    import numpy as np
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    tok = tokenizer()
    tasks = toolgym.synthetic_tasks(12, split="train", seed=1)
    path = os.path.join(WORK, "train.parquet")
    n = toolgym.verl.write_parquet(tasks, path, split="train")
    assert n == len(tasks), n

    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert {"data_source", "prompt", "ability", "reward_model", "extra_info"} <= set(table.column_names), table.schema
    written_prompts = table.column("prompt").to_pylist()

    def cfg(max_len):
        return OmegaConf.create({
            "prompt_key": "prompt",
            "max_prompt_length": max_len,
            "truncation": "error",
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
            "return_raw_chat": True,
            "cache_dir": os.path.join(WORK, "verl-cache"),
        })

    ds = RLHFDataset(data_files=path, tokenizer=tok, config=cfg(4096))
    assert len(ds) == len(tasks), len(ds)
    lens = []
    for i in range(len(ds)):
        item = ds[i]
        t = tasks[i]
        assert item["data_source"] == "toolgym" and item["ability"] == "tool_call", item
        assert json.loads(item["reward_model"]["ground_truth"]) == calls_of(t), item["reward_model"]
        assert item["reward_model"]["style"] == "rule"
        assert item["extra_info"]["index"] == i and item["extra_info"]["id"] == t.id, item["extra_info"]
        assert item["index"] == i
        raw = item["raw_prompt"]
        assert raw == written_prompts[i], (raw, written_prompts[i])
        assert raw[0]["role"] == "system" and raw[-1]["role"] == "user", raw
        ids = tok.apply_chat_template(raw, add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        lens.append(len(ids))
    # verl 0.9 returns raw_prompt (tokenised later by the agent loop); older verl returned input_ids.
    has_ids = "input_ids" in ds[0]
    # The overlong filter tokenises with the same chat template: a limit below every prompt drops all.
    short = RLHFDataset(data_files=path, tokenizer=tok, config=cfg(min(lens) - 1))
    assert len(short) == 0, len(short)
    batch = collate_fn([ds[i] for i in range(4)])
    dp = DataProto.from_single_dict(batch)
    assert len(dp) == 4 and isinstance(dp.non_tensor_batch["reward_model"], np.ndarray)
    # The agent_name column reaches the batch, where verl's agent loop
    # manager reads each row's loop (else rollout.agent.default_agent_loop).
    tool_path = os.path.join(WORK, "tool_agent.parquet")
    toolgym.verl.write_parquet(tasks[:4], tool_path, template=None, agent_name="tool_agent")
    tool_ds = RLHFDataset(data_files=tool_path, tokenizer=tok, config=cfg(4096))
    tool_dp = DataProto.from_single_dict(collate_fn([tool_ds[i] for i in range(4)]))
    assert list(tool_dp.non_tensor_batch["agent_name"]) == ["tool_agent"] * 4, tool_dp.non_tensor_batch.keys()
    return (f"{n} rows -> RLHFDataset len {len(ds)}; prompt tokens {min(lens)}..{max(lens)}; "
            f"item keys incl. raw_prompt/reward_model/extra_info (input_ids in item: {has_ids}); "
            f"overlong filter ok; collate_fn->DataProto ok; agent_name column reaches the batch")


def check_verl_episode_concurrent():
    """verl's reward loop scores a batch's samples concurrently
    (RewardLoopWorker.compute_score_batch gathers their run_single), and
    the n samples of a prompt share one extra_info dict (DataProto.repeat):
    verl's run_single writes the turn count into it, then awaits the
    decode. EpisodeRewardManager gives each sample its own."""
    import asyncio
    from functools import partial

    import numpy as np
    import torch
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import _call_with_kwargs
    from toolgym.verl_episode import EpisodeRewardManager

    calls = [{"name": "f", "arguments": {"a": 1}}]
    block = '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call><|im_end|>'
    texts = {1: block, 2: block + "\n<|im_start|>user\n<tool_response>\n{}\n</tool_response><|im_end|>"
             "\n<|im_start|>assistant\nDone.<|im_end|>"}

    class Tok:  # the response's first id names its text
        def decode(self, ids, skip_special_tokens=False, **kwargs):
            return texts[int(ids[0])]

    base = DataProto.from_dict(
        tensors={"prompts": torch.tensor([[5]]), "responses": torch.tensor([[0]]),
                 "attention_mask": torch.tensor([[1, 1]])},
        non_tensors={"data_source": np.array(["toolgym"], dtype=object),
                     "reward_model": np.array([{"style": "rule", "ground_truth": json.dumps(calls)}], dtype=object),
                     "extra_info": np.array([{"index": 0}], dtype=object)})
    data = base.repeat(repeat_times=2, interleave=True)
    assert data.non_tensor_batch["extra_info"][0] is data.non_tensor_batch["extra_info"][1]
    data.batch["responses"] = torch.tensor([[1], [2]])  # one reply; a tool round then an answer
    data.non_tensor_batch["__num_turns__"] = np.array([2, 4])
    fn = partial(_call_with_kwargs, toolgym.verl.compute_score, {"rule": "binary-no-think", "episode": True})

    def concurrently(manager):
        async def both():
            return await asyncio.gather(*[manager.run_single(data[i:i + 1]) for i in range(2)])
        return [o["reward_score"] for o in manager.loop.run_until_complete(both())]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = concurrently(EpisodeRewardManager(config=None, tokenizer=Tok(), compute_score=fn))
        shared = concurrently(NaiveRewardManager(config=None, tokenizer=Tok(), compute_score=fn))
    assert ours == [1.0, 1.0], ours
    assert shared != [1.0, 1.0], shared  # the race the override removes
    return f"2 samples sharing extra_info scored concurrently: EpisodeRewardManager {ours}, verl's run_single {shared}"


CHECKS = {
    "trl-reward": check_trl_reward,
    "verl-custom-fn": check_verl_custom_fn,
    "verl-naive": check_verl_naive,
    "verl-batch": check_verl_batch,
    "verl-rewardloop": check_verl_rewardloop,
    "verl-dataset": check_verl_dataset,
    "trl-reward-parsed": check_trl_reward_parsed,
    "trl-grpo": check_trl_grpo,
    "trl-tool-episode": check_trl_tool_episode,
    "verl-episode": check_verl_episode,
    "verl-episode-concurrent": check_verl_episode_concurrent,
    "trl-environment": check_trl_environment,
    "verl-function-tools": check_verl_function_tools,
    "verl-episode-tools": check_verl_episode_tools,
}


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for d in ("toolgym", "torch", "transformers", "trl", "datasets", "verl", "pyarrow"):
        try:
            out.append(f"{d}=={version(d)}")
        except PackageNotFoundError:
            out.append(f"{d}=(missing)")
    return " ".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", choices=sorted(CHECKS), help="run only these checks")
    ap.add_argument("-v", "--verbose", action="store_true", help="print tracebacks of failures")
    ap.add_argument("--verl-path", default=VERL_PATH[0],
                    help="custom_reward_function.path for the verl checks (default: the toolgym/verl.py file)")
    a = ap.parse_args()
    VERL_PATH[0] = a.verl_path
    print(versions(), flush=True)
    for name, fn in CHECKS.items():
        if a.only and name not in a.only:
            continue
        t0 = time.time()
        try:
            msg = fn()
            RESULTS.append((name, True, msg))
        except Exception as e:  # noqa: BLE001
            tb = traceback.format_exc()
            msg = f"{type(e).__name__}: {e}"
            if e.__cause__ is not None:  # verl wraps import errors of the reward file
                msg += f" <- {type(e.__cause__).__name__}: {e.__cause__}"
            msg = msg[:600]
            RESULTS.append((name, False, msg))
            if a.verbose:
                print(tb, file=sys.stderr)
        ok = RESULTS[-1][1]
        print(f"{'PASS' if ok else 'FAIL'} {name} ({time.time() - t0:.1f}s): {RESULTS[-1][2]}", flush=True)
    passed = sum(ok for _, ok, _ in RESULTS)
    failed = len(RESULTS) - passed
    print(f"engines_check: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
