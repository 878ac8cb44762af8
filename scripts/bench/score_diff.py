#!/usr/bin/env python3
"""Differential check of two `toolgym score` builds: the same verdict lines
and the same run summary, byte for byte, on generated hostile corpora and
on any JSONL files given, on one thread and on two.

    python3 scripts/bench/score_diff.py --old OLD_BUILD --new target/release/toolgym \
        [--lines 60000] [--seed 1] [--rules tool-n1 binary ...] [EXTRA.jsonl ...]

The generated corpus (seeded) stresses the fast readers: argument strings
with quotes, backslashes, surrogate pairs, raw and escaped newlines, `/`,
tags inside strings; floats of every length, spelt otherwise in some
replies; payloads cut off at random or with a byte inserted; whitespace
(and a no-break space) around payloads; ground truths written
with and without `ensure_ascii`, a few cut off; records written with and
without `ensure_ascii` (the literal's own `\\u` escapes). Use it before a
change to the JSONL path lands: the fast paths must never change a verdict.
"""

import argparse
import json
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile

STRINGS = ['a"b', "back\\slash", "São Paulo", "😀x", "line\nbreak", "tab\there", "a/b", '\\"', '\\\\"', '"',
           "\\", "é\\u00e9", "\u2028", "\x7f", "plain", "", "\\n", "<tool_call>", "</tool_call>"]
RULES = ["tool-n1", "tool-n1-no-think", "tool-n1-fine", "tool-n1-fine-names", "binary", "fine-grained"]


def corpus(rng, lines):
    def value(depth=0):
        k = rng.random()
        if k < 0.5 or depth > 2:
            return rng.choice(STRINGS)
        if k < 0.6:
            return rng.randint(-5, 5)
        if k < 0.7:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        if k < 0.8:
            return {rng.choice(STRINGS): value(depth + 1) for _ in range(rng.randint(0, 3))}
        if k < 0.9:
            # Floats of every length (short ones are read without a general
            # parse), exponents, zeros, halfway-looking values.
            return rng.choice([round(rng.uniform(-1e4, 1e4), rng.randint(0, 12)), rng.random(),
                               rng.uniform(-1e16, 1e16), 1e-07, 1e22, 123456789012345.6, 0.1, 0.3, -0.0, 5e-324])
        return rng.choice([True, None, 2.5, -0.0])

    def call():
        return {"name": rng.choice(["f", "g", "é", 'a"b']),
                "arguments": {rng.choice(STRINGS): value() for _ in range(rng.randint(0, 4))}}

    for i in range(lines):
        truth = [call() for _ in range(rng.randint(0, 3))]
        calls = json.loads(json.dumps(truth))
        if rng.random() < 0.3:
            rng.shuffle(calls)
        if rng.random() < 0.2 and calls:
            calls[0]["arguments"]["x"] = 1
        body = json.dumps(calls, ensure_ascii=rng.random() < 0.5)
        if rng.random() < 0.1:
            # The same values spelt otherwise: trailing zeros, exponents.
            body = body.replace(".5", ".50").replace("e-07", "E-7").replace(".1,", ".10e0,")
        r = rng.random()
        if r < 0.3:
            body = body[:rng.randint(0, len(body))]
        elif r < 0.4:
            at = rng.randint(0, len(body))
            body = body[:at] + rng.choice([" ", "\n", "\t", "\\", '"', "\x01", "\xa0", "]", "}", ",", "NaN", "x"]) + body[at:]
        ws = rng.choice(["", " ", "\n", " \n\t", "\xa0"])
        completion = f"<think>t</think>\n<tool_call>{ws}{body}{ws}</tool_call>"
        gt = json.dumps(truth, ensure_ascii=rng.random() < 0.5)
        if rng.random() < 0.05:
            gt = gt[:rng.randint(0, len(gt))]
        yield json.dumps({"id": i, "completion": completion, "ground_truth": gt}, ensure_ascii=rng.random() < 0.3)


def run(binary, rule, path, out, threads):
    p = subprocess.run([binary, "score", "--rule", rule, "--threads", str(threads), "--input", str(path),
                        "--output", str(out)], capture_output=True)
    return p.returncode, p.stderr, out.read_bytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--lines", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rules", nargs="+", default=RULES)
    ap.add_argument("extra", nargs="*", type=pathlib.Path)
    args = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="toolgym-score-diff-"))
    generated = work / "escapes.jsonl"
    with open(generated, "w", encoding="utf-8") as f:
        for line in corpus(random.Random(args.seed), args.lines):
            f.write(line + "\n")
    differ = 0
    for path in [generated, *args.extra]:
        for rule in args.rules:
            # One thread (one worker's buffers for the whole run) and two.
            for threads in (1, 2):
                old = run(args.old, rule, path, work / "old.jsonl", threads)
                new = run(args.new, rule, path, work / "new.jsonl", threads)
                same = old == new
                differ += not same
                print(f"{'same' if same else 'DIFFERENT'}  {rule:20} {threads} thread(s)  {path}")
    if differ:
        sys.exit(f"{differ} run(s) differ; the corpus is in {work}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
