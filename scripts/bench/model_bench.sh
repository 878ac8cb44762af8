#!/usr/bin/env bash
# Side-by-side generation benchmark: toolgym-model (candle, CPU f32) vs
# transformers generate (PyTorch eager, CPU f32), Qwen2.5-0.5B architecture
# with random weights, same prompt lengths / new tokens / measurements.
#
#   scripts/bench/model_bench.sh [--batch-sizes 1,32] [--prompt-len 64] \
#       [--new-tokens 32] [--prefill-len 128] [--repeats 3] [--tiny] \
#       [--device cpu|cuda] [--dtype f32|bf16] [--peak-gbps G]
#
# The arguments go to both sides. BENCH_BIN names a prebuilt bench_generate
# (a `--features cuda` build carried to a GPU machine, see docs/gpu.md);
# unset, it is built here with cargo.
#
# PYTHON (default /work/ref/venv-torch/bin/python) must have torch and
# transformers (scripts/fixtures/requirements-qwen2.txt). Both sides use all
# cores (candle: rayon/gemm threads; torch: its default intra-op threads).
# THREADS=N pins both sides to N threads (RAYON_NUM_THREADS for candle,
# torch.set_num_threads for PyTorch); default: all cores on both sides.
# ROUNDS (default 2) alternates candle / transformers runs; each figure is the
# best over rounds and repeats, which keeps interference from other processes
# out of the comparison as far as possible. Prefer an otherwise idle machine.
#
# Both sides run with the glibc malloc settings that toolgym's binaries set
# for themselves (toolgym_model::runtime::configure_allocator: mmap threshold
# 1 GiB, trim threshold 2 GiB), so neither pays for re-faulting freed
# buffers; SAME_MALLOC=0 leaves the allocator defaults to both.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ "${SAME_MALLOC:-1}" != 0 ]]; then
  export MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=2147483647
fi
PYTHON=${PYTHON:-/work/ref/venv-torch/bin/python}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-}
PY_THREADS=()
if [[ -n "$THREADS" ]]; then
  export RAYON_NUM_THREADS=$THREADS
  PY_THREADS=(--threads "$THREADS")
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

if [[ -z "${BENCH_BIN:-}" ]]; then
  cargo build -q -p toolgym-model --release --example bench_generate
  BENCH_BIN=target/release/examples/bench_generate
fi
echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: candle (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "$BENCH_BIN" "$@" | tee -a "$OUT/candle.jsonl" >&2
  echo "== round $r: transformers (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "$PYTHON" scripts/bench/model_hf_generate_bench.py "$@" "${PY_THREADS[@]}" 2> >(grep -v -i warn >&2) | tee -a "$OUT/hf.jsonl" >&2
done

"$PYTHON" - "$OUT/candle.jsonl" "$OUT/hf.jsonl" <<'PY'
import json, sys
FIELDS = ("tokens_per_s", "decode_tokens_per_s", "decode_gb_per_s", "bandwidth_fraction")
def load(p):
    best = {}
    for line in open(p):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        key = (r["metric"], r["batch"])
        cur = best.setdefault(key, {})
        for f in FIELDS:
            if r.get(f) is not None:
                cur[f] = max(cur.get(f, 0.0), r[f])
    return best
c, h = load(sys.argv[1]), load(sys.argv[2])
print(f"{'measurement (best of rounds)':34} {'candle':>10} {'transformers':>13} {'ratio':>7}")
for key in sorted(c, key=lambda k: (k[0] != "prefill", k[1])):
    if key not in h:
        continue
    metric, b = key
    fields = [("prefill", "tokens_per_s")] if metric == "prefill" else \
             [("generate e2e", "tokens_per_s"), ("decode", "decode_tokens_per_s")]
    for name, f in fields:
        label = f"{name} tok/s (batch {b})"
        x, y = c[key].get(f), h[key].get(f)
        if x is None or y is None:
            print(f"{label:34} {'n/a':>10} {'n/a':>13}")
            continue
        print(f"{label:34} {x:10.1f} {y:13.1f} {x / y:6.2f}x")
    if "decode_gb_per_s" in c[key]:
        frac = c[key].get("bandwidth_fraction")
        frac = f", {frac:.1%} of peak" if frac is not None else ""
        print(f"  (candle decode reads {c[key]['decode_gb_per_s']:.1f} GB/s at batch {b}{frac})")
PY
