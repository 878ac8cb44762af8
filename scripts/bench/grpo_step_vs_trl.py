#!/usr/bin/env python3
"""GRPO step time, side by side: `toolgym train grpo` against TRL's GRPOTrainer
on the same work (whole processes, measured per optimiser step).

Both sides start from the same Hugging Face Qwen2 directory (default: the
checkpoint `cargo run --release --example train_qwen` leaves in
runs/train_qwen/final, the built-in tiny model and its tokenizer), train on
the same tasks (the built-in synthetic environment's `tiny` tasks, rendered
with the `compact` template, so both see the same prompt text) and use the
same settings:

* 16 prompts x G = 5 completions per step, completions <= 64 tokens,
  T = 0.7, top-p 1;
* k3 KL to the frozen reference with beta = 1e-3, clip 0.2, token-mean loss
  (TRL's `loss_type="dapo"`), lr 3e-4 constant, one update per rollout batch;
* reward: toolgym's `binary` rule (TRL calls it through
  `toolgym.trl.reward_function`);
* glibc malloc tuned alike (the thresholds `toolgym` sets for itself, given
  to both processes), PyTorch on all cores.

With `--phase sft` (or `both`) it also times the SFT step: `toolgym train
sft` against TRL's `SFTTrainer`, both on the same tasks' prompts and
reference replies (`Task.prompt` / `Task.target` in the `compact`
template, loss on the reply only), 32 examples per optimiser step, lr 3e-4
constant, in micro-batches of `--sft-micro` examples on both sides (TRL
accumulates gradients over them).

Rounds alternate (toolgym, TRL, toolgym, TRL, ...) so that both sides see
the same machine; the first step of each run is warm-up and left out. It
prints, per side, the median seconds per step (steps 2..N) of each round,
and for toolgym the per-phase split (rollout, log-probs, update), which
`metrics.jsonl` records.

Run it in a venv with torch, trl and the toolgym wheel (pinned in
scripts/integration/requirements-engines.txt):

    python3 -m venv target/engines-venv
    target/engines-venv/bin/pip install -r scripts/integration/requirements-engines.txt
    target/engines-venv/bin/pip install ./crates/python
    cargo build --release
    target/engines-venv/bin/python scripts/bench/grpo_step_vs_trl.py --rounds 2

Timings on a shared machine move by up to 2x within minutes: compare
only rounds of one sitting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 31)}
PROMPTS_PER_STEP = 16
GROUP = 5
MAX_COMPLETION = 64
TEMPERATURE = 0.7
BETA = 1e-3
LR = 3e-4
SFT_BATCH = 32


def write_tasks(path: str, n: int) -> None:
    import toolgym

    tasks = toolgym.synthetic_tasks(n, split="train", seed=0, difficulty="tiny")
    toolgym.write_tasks(tasks, path)


def train_toolgym(binary: str, phase: str, model: str, tasks: str, steps: int, work: str,
                  phase_sets: list[str]) -> list[dict]:
    """Runs `toolgym train <phase>` on the shared model and tasks with
    `phase_sets` added; returns that phase's rows of metrics.jsonl."""
    out = os.path.join(work, f"toolgym-{phase}")
    sets = [
        f"model.path={json.dumps(model)}",
        f"data.train={json.dumps(tasks)}",
        'data.template="compact"',
        *phase_sets,
        "run.eval_every=0",
        f"run.save_every={steps + 1}",
        f"run.out_dir={json.dumps(out)}",
        "run.resume=false",
    ]
    cmd = [binary, "train", phase]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, env={**os.environ, **MALLOC}, stdout=subprocess.DEVNULL)
    rows = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
    return [r for r in rows if r.get("phase") == phase]


def run_toolgym(binary: str, model: str, tasks: str, steps: int, work: str) -> dict:
    sets = [
        f"grpo.steps={steps}",
        f"grpo.prompts_per_step={PROMPTS_PER_STEP}",
        f"grpo.mini_batch_prompts={PROMPTS_PER_STEP}",
        f"grpo.group_size={GROUP}",
        f"grpo.max_response_tokens={MAX_COMPLETION}",
        "grpo.max_prompt_tokens=512",
        f"grpo.temperature={TEMPERATURE}",
        f"grpo.kl_coef={BETA}",
        "grpo.clip_low=0.2",
        "grpo.clip_high=0.2",
        'grpo.loss_agg="token-mean"',
        "grpo.epochs=1",
        f"grpo.optim.lr={LR}",
        "grpo.optim.warmup_steps=0",
        'grpo.optim.schedule="constant"',
        'grpo.reward_rule="binary"',
    ]
    rows = train_toolgym(binary, "grpo", model, tasks, steps, work, sets)
    steps_ = [r for r in rows if r.get("reward_mean") is not None]
    later = steps_[1:]
    med = lambda k: statistics.median(r[k] for r in later)
    return {
        "step": med("step_seconds"),
        "rollout": med("rollout_seconds"),
        "logprob": med("logprob_seconds"),
        "update": med("update_seconds"),
        "reward": [round(r["reward_mean"], 3) for r in steps_],
    }


def load_for_trl(model: str):
    """The tokenizer and the float32 policy both TRL workers start from, with
    PyTorch on all cores."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(os.cpu_count() or 1)
    tok = AutoTokenizer.from_pretrained(model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    policy = AutoModelForCausalLM.from_pretrained(model, torch_dtype=torch.float32)
    return tok, policy


def step_timer(times: list[float], losses: list[float] | None = None):
    """A TrainerCallback that appends each optimiser step's wall time to
    `times` (and, given `losses`, each logged loss)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)

        def on_log(self, args, state, control, logs=None, **kw):
            if losses is not None and logs and "loss" in logs:
                losses.append(round(float(logs["loss"]), 3))

    return StepTimer()


def trainer_args(work: str, steps: int) -> dict:
    """The TrainingArguments both TRL workers share: CPU in float32, lr
    constant at LR, `steps` optimiser steps, a log line per step, nothing
    saved or reported."""
    return dict(use_cpu=True, bf16=False, fp16=False, learning_rate=LR,
                lr_scheduler_type="constant", warmup_steps=0, max_steps=steps,
                logging_steps=1, report_to="none", save_strategy="no",
                dataloader_num_workers=0, seed=0)


def run_worker(flag: str, model: str, tasks: str, steps: int, work: str, result: str,
               extra: tuple[str, ...] = ()) -> dict:
    """Runs this script as a TRL worker (`flag`) in a fresh process and
    returns the JSON it writes to `result`."""
    cmd = [sys.executable, __file__, flag, "--model", model, "--tasks-path", tasks,
           "--steps", str(steps), "--work", work, "--result", result, *extra]
    subprocess.run(cmd, check=True, env={**os.environ, **MALLOC},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.load(open(result))


def trl_worker(model: str, tasks: str, steps: int, work: str, result: str) -> None:
    """Runs TRL's GRPOTrainer (called in a fresh process) and writes step times."""
    import toolgym
    import toolgym.trl
    from trl import GRPOConfig, GRPOTrainer

    tok, policy = load_for_trl(model)
    ds = toolgym.trl.to_dataset(
        toolgym.load_tasks(tasks, strict=True), template="compact", conversational=False
    )
    times: list[float] = []
    rewards: list[float] = []
    score = toolgym.trl.reward_function("binary")

    def reward(prompts=None, completions=None, **kw):
        r = score(prompts=prompts, completions=completions, **kw)
        rewards.append(sum(r) / len(r))
        return r

    reward.__name__ = score.__name__
    args = GRPOConfig(
        output_dir=os.path.join(work, "trl-run"),
        per_device_train_batch_size=PROMPTS_PER_STEP * GROUP,
        gradient_accumulation_steps=1,
        num_generations=GROUP,
        max_completion_length=MAX_COMPLETION,
        temperature=TEMPERATURE,
        top_p=1.0,
        beta=BETA,
        epsilon=0.2,
        loss_type="dapo",
        num_iterations=1,
        **trainer_args(work, steps),
    )
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=args,
        train_dataset=ds,
        processing_class=tok,
        callbacks=[step_timer(times)],
    )
    trainer.train()
    with open(result, "w") as f:
        json.dump({"times": times, "reward": [round(r, 3) for r in rewards]}, f)


def run_trl(model: str, tasks: str, steps: int, work: str) -> dict:
    data = run_worker("--trl-worker", model, tasks, steps, work, os.path.join(work, "trl.json"))
    return {"step": statistics.median(data["times"][1:]), "reward": data["reward"]}


def run_toolgym_sft(binary: str, model: str, tasks: str, steps: int, work: str,
                    micro: int) -> dict:
    sets = [
        f"sft.steps={steps}",
        f"sft.batch_size={SFT_BATCH}",
        f"sft.micro_batch_seqs={micro}",
        f"sft.optim.lr={LR}",
        "sft.optim.warmup_steps=0",
        'sft.optim.schedule="constant"',
    ]
    rows = train_toolgym(binary, "sft", model, tasks, steps, work, sets)
    steps_ = [r for r in rows if r.get("step_seconds") is not None]
    return {"step": statistics.median(r["step_seconds"] for r in steps_[1:]),
            "loss": [round(r["loss"], 3) for r in steps_]}


def trl_sft_worker(model: str, tasks: str, steps: int, work: str, result: str,
                   micro: int) -> None:
    """Runs TRL's SFTTrainer (called in a fresh process) and writes step times."""
    import toolgym
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tok, policy = load_for_trl(model)
    rows = [{"prompt": t.prompt("compact"), "completion": t.target("compact")}
            for t in toolgym.load_tasks(tasks, strict=True)]
    times: list[float] = []
    losses: list[float] = []
    args = SFTConfig(
        output_dir=os.path.join(work, "trl-sft"),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=SFT_BATCH // micro,
        completion_only_loss=True,
        packing=False,
        max_length=1024,
        **trainer_args(work, steps),
    )
    trainer = SFTTrainer(model=policy, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tok, callbacks=[step_timer(times, losses)])
    trainer.train()
    with open(result, "w") as f:
        json.dump({"times": times, "loss": losses}, f)


def run_trl_sft(model: str, tasks: str, steps: int, work: str, micro: int) -> dict:
    data = run_worker("--trl-sft-worker", model, tasks, steps, work,
                      os.path.join(work, "trl-sft.json"), ("--sft-micro", str(micro)))
    return {"step": statistics.median(data["times"][1:]), "loss": data["loss"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/train_qwen/final")
    ap.add_argument("--toolgym", default="target/release/toolgym")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--tasks", type=int, default=64)
    ap.add_argument("--phase", choices=["grpo", "sft", "both"], default="grpo")
    ap.add_argument("--sft-micro", type=int, default=4,
                    help="SFT examples per forward/backward on both sides (a divisor of "
                         f"{SFT_BATCH}; TRL accumulates {SFT_BATCH} // this micro-batches)")
    ap.add_argument("--trl-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--trl-sft-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tasks-path", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args()
    model = os.path.abspath(a.model)
    if a.trl_worker:
        trl_worker(model, a.tasks_path, a.steps, a.work, a.result)
        return
    if a.trl_sft_worker:
        trl_sft_worker(model, a.tasks_path, a.steps, a.work, a.result, a.sft_micro)
        return
    if not os.path.isfile(os.path.join(model, "config.json")):
        sys.exit(f"{model} is not a model directory; run `cargo run --release --example train_qwen` "
                 "first, or pass --model")
    with tempfile.TemporaryDirectory(prefix="grpo-vs-trl-") as work:
        tasks = os.path.join(work, "tasks.jsonl")
        write_tasks(tasks, a.tasks)
        if a.phase in ("grpo", "both"):
            grpo_rounds(a, model, tasks, work)
        if a.phase in ("sft", "both"):
            sft_rounds(a, model, tasks, work)


def alternate(label: str, rounds: int, ours, theirs) -> None:
    """Runs `rounds` rounds of `ours()` then `theirs()` (each returns its
    median s/step and the rest of its table row), prints a row per run and
    the ratio of the medians."""
    steps: dict[str, list[float]] = {"toolgym": [], "TRL": []}
    for r in range(1, rounds + 1):
        for side, run in (("toolgym", ours), ("TRL", theirs)):
            step, cells = run()
            steps[side].append(step)
            print(f"| {r} | {side} | {step:.2f} | {cells} |", flush=True)
    o, p = statistics.median(steps["toolgym"]), statistics.median(steps["TRL"])
    print(f"\n{label} median s/step: toolgym {o:.2f}, TRL {p:.2f}; "
          f"toolgym is {p / o:.2f}x TRL's speed")


def grpo_rounds(a, model: str, tasks: str, work: str) -> None:
    print(f"GRPO: model {model}; {a.tasks} tasks; {PROMPTS_PER_STEP} prompts x G={GROUP}; "
          f"<= {MAX_COMPLETION} tokens; {a.steps} steps per run (median of steps 2..{a.steps})")
    print("| round | side | s/step | rollout | log-probs | update | reward per step |")
    print("|---|---|---:|---:|---:|---:|---|")

    def ours():
        t = run_toolgym(os.path.abspath(a.toolgym), model, tasks, a.steps, work)
        return t["step"], (f"{t['rollout']:.2f} | {t['logprob']:.2f} | {t['update']:.2f} | "
                           f"{t['reward']}")

    def theirs():
        p = run_trl(model, tasks, a.steps, work)
        return p["step"], f"| | | {p['reward']}"

    alternate("GRPO", a.rounds, ours, theirs)
    print()


def sft_rounds(a, model: str, tasks: str, work: str) -> None:
    print(f"SFT: model {model}; {a.tasks} tasks; {SFT_BATCH} examples per step in "
          f"micro-batches of {a.sft_micro}; "
          f"{a.steps} steps per run (median of steps 2..{a.steps})")
    print("| round | side | s/step | loss per step |")
    print("|---|---|---:|---|")

    def ours():
        t = run_toolgym_sft(os.path.abspath(a.toolgym), model, tasks, a.steps, work, a.sft_micro)
        return t["step"], f"{t['loss']}"

    def theirs():
        p = run_trl_sft(model, tasks, a.steps, work, a.sft_micro)
        return p["step"], f"{p['loss']}"

    alternate("SFT", a.rounds, ours, theirs)

if __name__ == "__main__":
    main()
