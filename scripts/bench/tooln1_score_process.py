#!/usr/bin/env python3
"""The Python reference as a whole process: what a user would write to score
a JSONL file with the released Tool-N1 reward.

    python tooln1_score_process.py --toolcall PATH/TO/toolcall.py INPUT.jsonl OUTPUT.jsonl

Per input line {"id", "completion", "ground_truth" (JSON text, as the
script takes it)}: json.loads, compute_score_v0 (an exception scores 0),
one output line {"id", "reward"}. The script's 1-in-64 debug print goes to
/dev/null so the output file holds only results.
"""

import argparse
import contextlib
import importlib.util
import json
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--toolcall", required=True)
    ap.add_argument("input")
    ap.add_argument("output")
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("tooln1_toolcall", args.toolcall)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    score = mod.compute_score_v0
    with open(args.input, encoding="utf-8") as f, open(args.output, "w", encoding="utf-8") as out, open(
        os.devnull, "w"
    ) as devnull, contextlib.redirect_stdout(devnull):
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            try:
                reward = score(rec["completion"], rec["ground_truth"])
            except Exception:  # noqa: BLE001 - the released script raises on some inputs
                reward = 0
            out.write(json.dumps({"id": rec["id"], "reward": reward}) + "\n")


if __name__ == "__main__":
    main()
