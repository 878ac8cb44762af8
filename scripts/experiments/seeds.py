#!/usr/bin/env python3
"""Run a training example over several seeds and summarise held-out results.

Usage (from the repository root, after `cargo build --release --examples`):

    python3 scripts/experiments/seeds.py train_qwen --seeds 0 1 2 3 4 [--set key=value ...] [--jobs 2]
    python3 scripts/experiments/seeds.py train_custom_env --seeds 0 1 2 [--jobs 2] [--arg=--shortcut-percent=0]

Each seed runs `target/release/examples/<example> --seed N --fresh --out
runs/seeds/<tag>/seed-N` plus the given overrides (`--set key=value`); its
output is kept in runs/seeds/<tag>/seed-N/log.txt.
The script reads the example's final report (before/after
GRPO, greedy and sampled) and the run's metrics.jsonl (SFT loss at a few
steps, the step where SFT loss first falls below 0.1, GRPO reward per decile),
then prints a Markdown table with the mean and the population standard
deviation over seeds, and writes runs/seeds/<tag>/summary.json.

Standard library only. Wall times are only comparable between runs that
did not share the machine (use --jobs 1 for timings).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

REPORT = re.compile(
    r"^\s*(after SFT warm start|before GRPO|after GRPO)\s+(?:accuracy|success)\s+([0-9.]+)"
    r"(?:.*?sampled accuracy\s+([0-9.]+))?"
)


def run_one(example, seed, tag, overrides, args=()):
    out = os.path.join("runs", "seeds", tag, f"seed-{seed}")
    cmd = [os.path.join("target", "release", "examples", example), "--fresh", "--out", out]
    cmd += ["--seed", str(seed)]
    for o in overrides:
        cmd += ["--set", o]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    # The example's own report, kept next to the run (the summary below
    # reads only part of it).
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "log.txt"), "w") as log:
        log.write(proc.stdout)
        log.write(proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"seed {seed} failed:\n{proc.stderr[-2000:]}")
    result = {"seed": seed}
    for line in proc.stdout.splitlines():
        m = REPORT.match(line)
        if m:
            key = m.group(1).replace(" ", "_")
            result[key] = float(m.group(2))
            if m.group(3):
                result[key + "_sampled"] = float(m.group(3))
        t = re.search(r"total time ([0-9.]+)s", line)
        if t:
            result["seconds"] = float(t.group(1))
    metrics = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
    sft = [m for m in metrics if m["phase"] == "sft"]
    grpo = [m for m in metrics if m["phase"] == "grpo" and m["step"] > 0]
    # A step with no update writes its loss as null; a step whose every
    # episode failed in its env has no reward_mean.
    result["sft_loss"] = {
        m["step"]: round(m["loss"], 4) for m in sft if m["step"] % 40 == 0 and m.get("loss") is not None
    }
    result["sft_loss_below_0.1_at"] = next(
        (m["step"] for m in sft if m.get("loss") is not None and m["loss"] < 0.1), None
    )
    if grpo:
        k = max(1, len(grpo) // 10)
        result["grpo_reward_deciles"] = [
            round(statistics.mean(m["reward_mean"] for m in grpo[i : i + k] if m.get("reward_mean") is not None), 3)
            if any(m.get("reward_mean") is not None for m in grpo[i : i + k])
            else None
            for i in range(0, len(grpo), k)
        ]
    return result


def mean_sd(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    return f"{100 * statistics.mean(xs):.1f} ± {100 * statistics.pstdev(xs):.1f}"


def gain(r):
    """After GRPO less before, or None where either is missing (a resumed
    run reports "at resume" instead of "before GRPO")."""
    if "after_GRPO" not in r or "before_GRPO" not in r:
        return None
    return r["after_GRPO"] - r["before_GRPO"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("example")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--tag", default=None)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument(
        "--arg", dest="args", action="append", default=[],
        help="an argument passed to the example as is, e.g. --arg=--shortcut-percent=0",
    )
    a = ap.parse_args()
    tag = a.tag or a.example
    with ThreadPoolExecutor(a.jobs) as pool:
        results = list(pool.map(lambda s: run_one(a.example, s, tag, a.overrides, a.args), a.seeds))
    cols = ["before_GRPO", "after_GRPO", "before_GRPO_sampled", "after_GRPO_sampled"]
    # Only the columns some run reported (train_custom_env has no sampled ones).
    cols = [c for c in cols if any(c in r for r in results)]
    print(f"| seed | {' | '.join(cols)} | gain (greedy) | SFT loss < 0.1 at | seconds |")
    print("|" + "---|" * (len(cols) + 4))
    for r in results:
        vals = [f"{100 * r[c]:.1f}" if c in r else "–" for c in cols]
        g = gain(r)
        shown = "–" if g is None else f"{100 * g:+.1f}"
        print(f"| {r['seed']} | {' | '.join(vals)} | {shown} | {r['sft_loss_below_0.1_at']} | {r.get('seconds', 0):.0f} |")
    gains = [gain(r) for r in results]
    print(f"| mean ± sd (population) | {' | '.join(mean_sd([r.get(c) for r in results]) for c in cols)} | {mean_sd(gains)} | | |")
    path = os.path.join("runs", "seeds", tag, "summary.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print(f"\n(details: {path})")


if __name__ == "__main__":
    main()
