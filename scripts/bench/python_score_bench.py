#!/usr/bin/env python3
"""toolgym's Python package vs the released Tool-N1 reward, in one process.

In-process benchmark (not a whole-process CLI run): both scorers run in the
same Python interpreter on the same N completions, as a verl or TRL reward
function would call them.

Usage (toolgym installed in the running Python: pip install ./crates/python):
    python scripts/bench/python_score_bench.py \
        --toolcall /path/to/Tool-N1/verl/verl/utils/reward_score/toolcall.py \
        [--n 100000] [--corpus FILE.jsonl] [--rounds 3]

The corpus defaults to the reward benchmark's (`cargo run --release -p
toolgym-reward --example bench_corpus -- 2000 7`), tiled to N in groups of
G = 5: as in GRPO under verl and TRL, the G completions of a prompt share
one ground-truth object (JSON text, as verl's parquet stores it), made
afresh for each group. toolgym reads a recurring ground-truth object once;
the last row gives every completion its own object, for comparison.

Measured, alternating in each round (the median round is reported):
  * script: a Python loop over `compute_score_v0` (the released reward; its
    1-in-64 debug print goes to /dev/null, an exception counts as 0);
  * toolgym.verl.compute_score in a Python loop (verl's per-item reward
    manager), rule tool-n1;
  * Rule("tool-n1").rewards(...) with threads=1 and with all cores;
  * Rule("binary").rewards(...) with all cores.
The tool-n1 rewards must equal the script's on every completion.
"""

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

import toolgym
import toolgym.verl

REPO = pathlib.Path(__file__).resolve().parents[2]


def load_corpus(path, n):
    if path:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    else:
        text = subprocess.run(
            ["cargo", "run", "--release", "-q", "-p", "toolgym-reward", "--example", "bench_corpus", "--", "2000", "7"],
            cwd=REPO, check=True, capture_output=True, text=True,
        ).stdout
    items = [json.loads(line) for line in text.splitlines() if line.strip()]
    out = []
    for group in range(-(-n // 5)):
        completion, truth = items[group % len(items)]["completion"], items[group % len(items)]["ground_truth"]
        shared = json.dumps(truth)  # one object per group, as the engines pass it
        out += [(completion, shared)] * 5
    return out[:n]


def script_scores(fn, completions, truths):
    out = []
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for c, g in zip(completions, truths):
            try:
                out.append(float(fn(c, g)))
            except Exception:  # noqa: BLE001 - the released script raises on some inputs
                out.append(0.0)
    return out


def timed(f):
    start = time.perf_counter()
    result = f()
    return time.perf_counter() - start, result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--toolcall", required=True)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--corpus")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    spec = importlib.util.spec_from_file_location("tooln1_toolcall", args.toolcall)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    items = load_corpus(args.corpus, args.n)
    completions = [c for c, _ in items]
    truths = [g for _, g in items]
    distinct = [json.loads(json.dumps(g)) and "".join(g) for g in truths]  # equal text, new objects
    tool_n1, binary = toolgym.Rule("tool-n1"), toolgym.Rule("binary")

    scorers = {
        "released toolcall.py compute_score_v0 (Python loop)": lambda: script_scores(mod.compute_score_v0, completions, truths),
        "toolgym.verl.compute_score, tool-n1 (Python loop)": lambda: [
            toolgym.verl.compute_score("toolgym", c, g, None, rule="tool-n1") for c, g in zip(completions, truths)
        ],
        "Rule('tool-n1').rewards, threads=1": lambda: tool_n1.rewards(completions, truths, threads=1),
        f"Rule('tool-n1').rewards, threads={os.cpu_count()}": lambda: tool_n1.rewards(completions, truths),
        f"Rule('binary').rewards, threads={os.cpu_count()}": lambda: binary.rewards(completions, truths),
        f"Rule('tool-n1').rewards, threads={os.cpu_count()}, every ground truth its own object": lambda: tool_n1.rewards(
            completions, distinct
        ),
    }
    times = {name: [] for name in scorers}
    results = {}
    for _ in range(args.rounds):
        for name, f in scorers.items():
            seconds, results[name] = timed(f)
            times[name].append(seconds)

    reference = results[next(iter(scorers))]
    for name in list(scorers)[1:4]:
        mismatches = sum(a != b for a, b in zip(reference, results[name]))
        if mismatches:
            sys.exit(f"{name}: {mismatches} of {args.n} rewards differ from the released script")

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"In-process, N = {args.n} completions; {os.cpu_count()} cores, {cpu}; "
          f"Python {platform.python_version()}; {datetime.date.today()}; median of {args.rounds} alternating rounds.")
    print("tool-n1 rewards equal the script's on every completion.\n")
    base = statistics.median(times[next(iter(scorers))])
    print("| scorer | completions/s | vs script |")
    print("|---|---:|---:|")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"| {name} | {args.n / t:,.0f} | {base / t:.1f}x |")


if __name__ == "__main__":
    main()
