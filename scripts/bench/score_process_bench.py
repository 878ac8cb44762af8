#!/usr/bin/env python3
"""Whole-process scoring benchmark: `toolgym score` against a Python process
running the released Tool-N1 reward, both from file to file, on the same
generated JSONL corpus.

    cargo build --release
    python3 scripts/bench/score_process_bench.py --toolcall PATH/TO/toolcall.py \
        [--lines 200000] [--rounds 3] [--group 5] [--compact-truths] \
        [--toolgym target/release/toolgym] [--previous OTHER_BUILD] \
        [--page-cache as-written|reread]

The corpus (seeded) mixes long reasoning (about 1.4 KB per line), parallel
calls, wrong arguments and names, broken JSON, format errors and no-call
cases; ground truths are JSON text (as xLAM and verl's parquet hold them),
written as `json.dumps` writes them, as the replies are (a reply's right
call then repeats its ground truth's text, which toolgym copies instead of
reading again), or with `--compact-truths` without spaces (no call
repeats; every reply is read).
The corpus is read from the page cache by both processes. How it got
there matters to the kernel's share: on Linux 6.16+ with ext4 (large
folios), a file written line by line (8 KB writes, as Python writes the
corpus: `--page-cache as-written`, the default) is cached in small folios
and read about half as fast as one that was read back from disk
(`--page-cache reread`: the corpus is synced, dropped from the cache and
read once, as a file read from disk or copied with large writes is
cached). On kernels without large folios both are the slow kind.
Measured, alternating in each round (median reported; the builds' order
rotates from round to round): the Python process
(`tooln1_score_process.py`: json.loads + compute_score_v0 per line) and
`toolgym score --rule tool-n1` with --threads 1 and with all cores. The
toolgym rewards must equal the script's on every line.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORDS = ("the user wants to know about a value so I should look up the right tool and pass "
         "exactly what was asked including units dates names and numbers then check nothing "
         "else is needed before answering with a call").split()
TOOLS = ["get_weather", "search_flights", "convert_currency", "book_table", "get_stock_price", "translate"]


def reasoning(rng, chars):
    out = []
    n = 0
    while n < chars:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


def call(rng):
    args = {
        "city": rng.choice(["Paris", "Berlin", "São Paulo", "New York", "Tokyo"]),
        "days": rng.randint(1, 14),
        "units": rng.choice(["metric", "imperial"]),
    }
    if rng.random() < 0.4:
        args["filters"] = {"min": round(rng.uniform(0, 100), 2), "tags": [reasoning(rng, 20) for _ in range(3)]}
    return {"name": rng.choice(TOOLS), "arguments": args}


def dumps_compact(value):
    return json.dumps(value, separators=(",", ":"))


def line(rng, i, truth=None, truth_text=json.dumps):
    """One record; with `truth` given (a group's), it stays the line's ground truth.
    `truth_text` writes the ground truth: as `json.dumps` does (xLAM's form,
    and the replies'), or compact (`--compact-truths`)."""
    fixed = truth is not None
    if not fixed:
        truth = [call(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    think = reasoning(rng, rng.randint(700, 1100))
    kind = rng.random()
    calls = json.loads(json.dumps(truth))
    if kind < 0.45:
        rng.shuffle(calls)
    elif kind < 0.6:
        calls[0]["arguments"]["days"] += 1
    elif kind < 0.7:
        calls[-1]["name"] = "lookup"
    elif kind < 0.8:
        body = json.dumps(calls)[:-3]  # broken JSON
        return {"id": i, "completion": f"<think>{think}</think>\n<tool_call>\n{body}\n</tool_call>", "ground_truth": truth_text(truth)}
    elif kind < 0.9:
        calls = []
        if not fixed:
            truth = []
        if rng.random() < 0.5:
            return {"id": i, "completion": f"<think>{think}</think>\nNo tool fits this request.", "ground_truth": "[]"}
    else:
        return {"id": i, "completion": f"{think}\n<tool_call>\n{json.dumps(calls)}\n</tool_call>", "ground_truth": truth_text(truth)}
    return {"id": i, "completion": f"<think>{think}</think>\n<tool_call>\n{json.dumps(calls)}\n</tool_call>", "ground_truth": truth_text(truth)}


def reread(path):
    """Drops `path` from the page cache and reads it back once: cached as
    the kernel caches a file read from disk (large folios where it can)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while os.read(fd, 1 << 20):
            pass
    finally:
        os.close(fd)


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--toolcall", required=True)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--group", type=int, default=1,
                    help="consecutive lines sharing one ground truth (5: GRPO's G completions per prompt)")
    ap.add_argument("--toolgym", default=str(REPO / "target" / "release" / "toolgym"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--previous", help="another toolgym build (e.g. the last commit's) timed in the same rounds, "
                                       "tool-n1 on 1 thread and on all cores")
    ap.add_argument("--compact-truths", action="store_true",
                    help="write ground truths without spaces (`separators=(',', ':')`), so that no reply's call "
                         "repeats its ground truth's text byte for byte")
    ap.add_argument("--page-cache", choices=["as-written", "reread"], default="as-written",
                    help="leave the corpus cached as written (default), or drop it from the page cache and read "
                         "it back once first (see above)")
    args = ap.parse_args()
    truth_text = dumps_compact if args.compact_truths else json.dumps

    work = pathlib.Path(tempfile.mkdtemp(prefix="toolgym-score-bench-"))
    corpus = work / "corpus.jsonl"
    rng = random.Random(7)
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(args.lines):
            if args.group == 1:
                record = line(rng, i, truth_text=truth_text)
            else:
                if i % args.group == 0:
                    truth = [call(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
                record = line(rng, i, truth, truth_text)
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    size = corpus.stat().st_size
    if args.page_cache == "reread":
        reread(corpus)
    cores = os.cpu_count()
    runs = {
        "Python: json.loads + compute_score_v0": [args.python, str(HERE / "tooln1_score_process.py"),
                                                   "--toolcall", args.toolcall, str(corpus), str(work / "py.jsonl")],
        "toolgym score --rule tool-n1 --threads 1": [args.toolgym, "score", "--rule", "tool-n1", "--threads", "1",
                                                     "--input", str(corpus), "--output", str(work / "t1.jsonl")],
        f"toolgym score --rule tool-n1 --threads {cores}": [args.toolgym, "score", "--rule", "tool-n1", "--threads",
                                                            str(cores), "--input", str(corpus), "--output",
                                                            str(work / "tn.jsonl")],
        f"toolgym score --rule binary --threads {cores}": [args.toolgym, "score", "--rule", "binary", "--threads",
                                                           str(cores), "--input", str(corpus), "--output",
                                                           str(work / "bn.jsonl")],
    }
    if args.previous:
        for t in (1, cores):
            runs[f"previous build: toolgym score --rule tool-n1 --threads {t}"] = [
                args.previous, "score", "--rule", "tool-n1", "--threads", str(t),
                "--input", str(corpus), "--output", str(work / f"prev{t}.jsonl")]
    times = {name: [] for name in runs}
    names = list(runs)
    for r in range(args.rounds):
        # The Python process first, then the builds in an order rotated
        # each round: no build always follows the same run (on a shared
        # 2-core machine, what ran just before moves a run's time).
        rest = names[1:]
        shift = r % len(rest)
        for name in names[:1] + rest[shift:] + rest[:shift]:
            times[name].append(timed(runs[name]))

    def rewards(path):
        return [json.loads(l)["reward"] for l in open(path, encoding="utf-8")]

    ref = rewards(work / "py.jsonl")
    for out in ("t1.jsonl", "tn.jsonl") + (("prev1.jsonl",) if args.previous else ()):
        got = rewards(work / out)
        bad = sum(float(a) != float(b) for a, b in zip(ref, got)) + abs(len(ref) - len(got))
        if bad:
            sys.exit(f"{out}: {bad} of {len(ref)} rewards differ from the released script")

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"Whole process, file to file: {args.lines:,} lines, {size / 1e6:.0f} MB ({size / args.lines:,.0f} B/line); "
          f"{args.group} line(s) per ground truth; "
          f"{'compact' if args.compact_truths else 'json.dumps'} ground truths; page cache {args.page_cache} "
          f"(Linux {platform.release()}); {cores} cores, {cpu}; Python {platform.python_version()}; "
          f"{datetime.date.today()}; "
          f"median of {args.rounds} alternating rounds. tool-n1 rewards equal the script's on every line.\n")
    base = statistics.median(times[next(iter(runs))])
    print("| process | lines/s | MB/s | vs Python |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"| `{name}` | {args.lines / t:,.0f} | {size / t / 1e6:,.0f} | {base / t:.1f}x |")
    shutil.rmtree(work)  # the corpus and outputs: some 350 MB


if __name__ == "__main__":
    main()
