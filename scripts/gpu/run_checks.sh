#!/usr/bin/env bash
# The CUDA checks of the model crate, run ON a lent GPU machine (which has
# CUDA, PyTorch and transformers but no Rust) from the repository root, with
# gpu-bundle/bundle.tar.xz built here by scripts/gpu/build_bundle.sh and
# carried. See
# docs/gpu.md. Everything is logged under $OUT (the device tool's folder;
# default gpu-results/):
#   gpu.txt         nvidia-smi, torch's view of the device, measured copy bandwidth
#   tests.log       toolgym-model's parity / generation / training / checkpoint
#                   tests with TOOLGYM_TEST_DEVICE=cuda
#   bench.log       bench_generate vs transformers generate, bf16 on cuda
#   grpo.log        3 GRPO steps of a Qwen2.5-0.5B-shaped policy in bf16
#   grpo.jsonl      their metrics (per-phase timings)
# Steps: STEPS="tests bench grpo" (default all), run in that order. Device
# time is scarce, so each part has a time limit and a part that overruns is
# killed and reported, not waited for: TEST_TIMEOUT (seconds per test
# binary, default 60), BENCH_TIMEOUT (default 200), GRPO_TIMEOUT (default
# 240; three steps took ~3 min on an H200 with host sampling, ~1.5 min
# with device sampling).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
STEPS=${STEPS:-tests bench grpo}
PY=${PYTHON:-python3}
B=${BUNDLE_DIR:-/tmp/toolgym-gpu-bundle}
if [[ ! -x "$B/toolgym" ]]; then
  mkdir -p "$B"
  # Python's tarfile reads xz whether or not the xz tool is installed.
  "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
    gpu-bundle/bundle.tar.xz "$B" || { echo "no gpu-bundle/bundle.tar.xz: run scripts/gpu/build_bundle.sh and carry gpu-bundle" >&2; exit 2; }
fi
# The CUDA 13 runtime libraries the binaries link against come with torch.
SP=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export LD_LIBRARY_PATH="$SP/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv
  "$PY" - <<'PY'
import torch
p = torch.cuda.get_device_properties(0)
print(f"torch {torch.__version__}: {p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2**30:.1f} GiB")
# Device-to-device copy of 2 GiB: bytes read + written per second.
x = torch.empty(2**31, dtype=torch.uint8, device="cuda")
y = torch.empty_like(x)
for _ in range(3):
    y.copy_(x)
torch.cuda.synchronize()
a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
a.record()
for _ in range(10):
    y.copy_(x)
b.record()
torch.cuda.synchronize()
secs = a.elapsed_time(b) / 1e3 / 10
print(f"measured copy bandwidth: {2 * x.numel() / secs / 1e9:.0f} GB/s")
PY
} 2>&1 | tee "$OUT/gpu.txt"
PEAK=${PEAK_GBPS:-$(sed -n 's/^measured copy bandwidth: \([0-9]*\) GB\/s/\1/p' "$OUT/gpu.txt")}

if [[ " $STEPS " == *" tests "* ]]; then
  echo "== tests: start at ${SECONDS}s"
  export TOOLGYM_TEST_DEVICE=cuda CARGO_MANIFEST_DIR=$PWD/crates/model
  for t in "$B"/test-*; do
    echo "== $t" | tee -a "$OUT/tests.log"
    timeout "${TEST_TIMEOUT:-60}" "$t" 2>&1 | tee -a "$OUT/tests.log"
    rc=${PIPESTATUS[0]}
    if [[ $rc != 0 ]]; then
      status=1
      echo "== $t failed (rc $rc; 124: timed out)" | tee -a "$OUT/tests.log"
    fi
  done
  unset TOOLGYM_TEST_DEVICE CARGO_MANIFEST_DIR
fi

if [[ " $STEPS " == *" bench "* ]]; then
  echo "== bench: start at ${SECONDS}s"
  BENCH_BIN=$B/bench_generate PYTHON=$PY ROUNDS=${ROUNDS:-2} \
    timeout "${BENCH_TIMEOUT:-200}" scripts/bench/model_bench.sh --device cuda --dtype bf16 --batch-sizes 1,32 \
      --prompt-len 64 --new-tokens 128 --prefill-len 512 --repeats 3 \
      ${PEAK:+--peak-gbps $PEAK} 2>&1 | tee "$OUT/bench.log" || status=1
fi

if [[ " $STEPS " == *" grpo "* ]]; then
  echo "== grpo: start at ${SECONDS}s"
  # The built-in policy at Qwen2.5-0.5B's shape (vocabulary padded to
  # 151,936 rows, so the LM head costs what the real one does), bf16 on cuda,
  # the paper's GRPO settings (G = 5, temperature 0.7, KL 1e-3, lr 1e-6) on
  # a batch of 64 prompts (the paper: 1024) with replies up to 256 tokens,
  # GRPO_STEPS steps (default 3). Micro-batches of 8 sequences (GRPO_MICRO;
  # peak 43 GB): 4 is 25% slower, and 16 peaks at 85 GB within a step and
  # runs out of the H200's memory in step 2, because the CUDA log-prob pass
  # materialises the full-vocabulary log-softmax (docs/gpu.md, "Measured,
  # second session").
  # grpo.jsonl carries device_mem_used_gb per step: it stays flat (7.55 GB).
  RUN=$(mktemp -d)
  timeout "${GRPO_TIMEOUT:-240}" "$B/toolgym" train grpo \
    --set 'model.device="cuda"' --set 'model.dtype="bf16"' \
    --set model.builtin.hidden_size=896 --set model.builtin.intermediate_size=4864 \
    --set model.builtin.layers=24 --set model.builtin.heads=14 --set model.builtin.kv_heads=2 \
    --set model.builtin.padded_vocab_size=151936 \
    --set grpo.steps=${GRPO_STEPS:-3} --set grpo.prompts_per_step=64 --set grpo.mini_batch_prompts=32 \
    --set grpo.micro_batch_seqs=${GRPO_MICRO:-8} --set grpo.max_response_tokens=256 \
    --set run.progress=false --set run.eval_every=0 --set run.eval_tasks=8 --set run.save_every=0 \
    --set "run.out_dir=\"$RUN\"" 2>&1 | tee "$OUT/grpo.log" || status=1
  cp "$RUN/metrics.jsonl" "$OUT/grpo.jsonl" 2>/dev/null || status=1
fi
echo "== done at ${SECONDS}s, status $status"
exit $status
