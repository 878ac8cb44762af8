#!/usr/bin/env python3
"""Python baseline throughput of the released Tool-N1 reward (compute_score_v0).

Usage:
    python scripts/bench/tooln1_python_bench.py --toolcall /path/to/toolcall.py \
        --corpus FILE.jsonl [--repeat N] [--min-seconds S]

FILE.jsonl: one JSON object per line, {"completion": str, "ground_truth": [calls]}.
The ground truth list is passed to the script as json.dumps(ground_truth), which
is done once up front and not timed.

The script is measured as released: its `random.randint(1, 64)` call stays in
place; the resulting prints go to /dev/null. Single-threaded. The corpus is
scored in full passes until at least --min-seconds (default 3) have elapsed and
at least --repeat passes (default 1) were made. An exception raised by the script
on a line counts as reward 0.

Prints one JSON line:
    {"completions_per_sec": float, "n": int, "seconds": float, "python": "3.x.y",
     "mean_reward": float, "passes": int, "corpus_lines": int, "exceptions": int}
"""

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import sys
import time


def load_toolcall(path):
    spec = importlib.util.spec_from_file_location("tooln1_toolcall", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not hasattr(mod, "compute_score_v0"):
        raise SystemExit(f"{path} has no compute_score_v0")
    return mod


def load_corpus(path):
    items = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            gt = rec["ground_truth"]
            if not isinstance(gt, list):
                raise SystemExit(f"{path}:{lineno}: ground_truth must be a JSON list")
            items.append((rec["completion"], json.dumps(gt)))
    if not items:
        raise SystemExit(f"{path}: empty corpus")
    return items


def one_pass(fn, items):
    total = 0.0
    exceptions = 0
    for completion, gt in items:
        try:
            total += fn(completion, gt)
        except Exception:  # noqa: BLE001 - released script raises on some inputs
            exceptions += 1
    return total, exceptions


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--toolcall", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--repeat", type=int, default=1, help="minimum number of full passes (default 1)")
    ap.add_argument("--min-seconds", type=float, default=3.0, help="minimum timed seconds (default 3)")
    args = ap.parse_args()

    mod = load_toolcall(args.toolcall)
    fn = mod.compute_score_v0
    items = load_corpus(args.corpus)

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        one_pass(fn, items[: min(len(items), 64)])  # warm-up, not timed
        passes = 0
        n = 0
        reward_sum = 0.0
        exceptions = 0
        start = time.perf_counter()
        while True:
            s, e = one_pass(fn, items)
            passes += 1
            n += len(items)
            reward_sum += s
            exceptions += e
            elapsed = time.perf_counter() - start
            if passes >= args.repeat and elapsed >= args.min_seconds:
                break

    print(json.dumps({
        "completions_per_sec": n / elapsed,
        "n": n,
        "seconds": elapsed,
        "python": platform.python_version(),
        "mean_reward": reward_sum / n,
        "passes": passes,
        "corpus_lines": len(items),
        "exceptions": exceptions,
    }), file=sys.stdout)


if __name__ == "__main__":
    main()
