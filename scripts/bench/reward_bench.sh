#!/usr/bin/env bash
# Reward throughput: toolgym's rules vs the released Python script, on the
# same corpus, in one run. Usage:
#   scripts/bench/reward_bench.sh /path/to/Tool-N1/verl/verl/utils/reward_score/toolcall.py
# Prints a table: completions/s for Python (single thread) and for toolgym's
# `tool-n1` and `binary` rules (single thread and all cores), with ratios.
set -euo pipefail
toolcall=${1:?path to the Tool-N1 toolcall.py}
cd "$(dirname "$0")/../.."
corpus=$(mktemp --suffix=.jsonl)
trap 'rm -f "$corpus"' EXIT
cargo run --release -q -p toolgym-reward --example bench_corpus -- 2000 7 >"$corpus"
py=$(python3 scripts/bench/tooln1_python_bench.py --toolcall "$toolcall" --corpus "$corpus" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["completions_per_sec"])')
out=$(cargo bench -q -p toolgym-reward --features rayon --bench score -- --noplot 2>&1)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); date: $(date -I)"
printf '%-28s %14s %8s\n' "scorer" "completions/s" "vs Python"
printf '%-28s %14.0f %8s\n' "python compute_score_v0" "$py" "1.0x"
echo "$out" | python3 -c '
import re, sys
py = float(sys.argv[1])
name = None
for line in sys.stdin:
    m = re.match(r"^score/(\S+)", line)
    if m:
        name = m.group(1)
    m = re.search(r"thrpt:\s+\[\S+ \S+ (\S+) (\S)elem/s", line)
    if m and name:
        v = float(m.group(1)) * {"K": 1e3, "M": 1e6, "G": 1e9}.get(m.group(2), 1)
        print(f"{name:<28} {v:14.0f} {v / py:7.1f}x")
        name = None
' "$py"
