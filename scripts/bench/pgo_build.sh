#!/usr/bin/env bash
# A profile-guided (PGO) release build of the `toolgym` binary, for the
# whole-process scoring figures (README, "Measured figures"): an
# instrumented build scores generated corpora (seeds other than the
# benchmark's: its corpus is not the training input), llvm-profdata merges
# the profiles, and a second build uses them.
#
#     rustup component add llvm-tools      # once: llvm-profdata for rustc's LLVM
#     scripts/bench/pgo_build.sh           # → target/pgo/use/release/toolgym
#     python3 scripts/bench/score_process_bench.py --toolcall PATH/TO/toolcall.py \
#         --toolgym target/pgo/use/release/toolgym --previous target/release/toolgym
#
# Two release builds of the workspace (about 11 minutes on 2 cores). The
# verdicts are the plain build's (check with scripts/bench/score_diff.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
    echo "error: no llvm-profdata for this toolchain ($profdata): rustup component add llvm-tools" >&2
    exit 1
fi
work=$PWD/target/pgo
rm -rf "$work/profiles" "$work/corpora" "$work/merged.profdata"
mkdir -p "$work/profiles" "$work/corpora"

RUSTFLAGS="-Cprofile-generate=$work/profiles" \
    cargo build --release --target-dir "$work/gen" --bin toolgym

python3 - "$work/corpora" <<'EOF'
import json, pathlib, random, sys
sys.path.insert(0, "scripts/bench")
import score_diff, score_process_bench as bench
out = pathlib.Path(sys.argv[1])
def write(name, lines):
    with open(out / name, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
rng = random.Random(11)  # the benchmark's corpus is seed 7
write("distinct.jsonl", (json.dumps(bench.line(rng, i), ensure_ascii=False) for i in range(40_000)))
def grouped(rng, n, group=5):
    for i in range(n):
        if i % group == 0:
            truth = [bench.call(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        yield json.dumps(bench.line(rng, i, truth), ensure_ascii=False)
write("group.jsonl", grouped(random.Random(12), 20_000))
rng = random.Random(13)
write("compact.jsonl", (json.dumps(bench.line(rng, i, truth_text=bench.dumps_compact), ensure_ascii=False)
                        for i in range(10_000)))
write("escapes.jsonl", score_diff.corpus(random.Random(14), 10_000))
EOF

for corpus in "$work"/corpora/*.jsonl; do
    for rule in tool-n1 binary; do
        "$work/gen/release/toolgym" score --rule "$rule" --threads 1 --input "$corpus" --output /dev/null 2>/dev/null
    done
done
"$work/gen/release/toolgym" score --rule tool-n1 --threads 2 \
    --input "$work/corpora/distinct.jsonl" --output /dev/null 2>/dev/null
"$profdata" merge -o "$work/merged.profdata" "$work/profiles"

RUSTFLAGS="-Cprofile-use=$work/merged.profdata" \
    cargo build --release --target-dir "$work/use" --bin toolgym
echo "PGO build: $work/use/release/toolgym"
