#!/usr/bin/env bash
# Builds, on this CPU-only machine, everything the GPU checks run, with
# `--features cuda`, and packs it into gpu-bundle/bundle.tar.xz (git-ignored)
# for carrying to a lent GPU machine (see docs/gpu.md):
#   toolgym          the CLI (generate, train, eval on --device cuda)
#   bench_generate   the generation benchmark
#   test-*           toolgym-model's integration tests (parity, generation,
#                    training, checkpoint), which run on TOOLGYM_TEST_DEVICE
# Unpacked the binaries take ~140 MB, because each one embeds candle's CUDA
# kernels; xz with a 64 MB dictionary (single-threaded, -9) stores the
# shared kernels once: ~13 MB, well inside the device tool's 64 MiB.
#
#   scripts/gpu/build_bundle.sh            # CUDA toolchain from ../shared/gpu
#
# CUDA_TOOLCHAIN names the toolchain recipe (default ../shared/gpu/cuda-toolchain.sh),
# CUDA_PREFIX where it installs (default /opt/cuda-pip), CARGO_TARGET_DIR the
# build directory (default /tmp/cuda-target, kept apart from the CPU build:
# a clean build takes 15-20 min on 2 cores, because the CLI and
# toolgym-model alone resolve features differently and candle's kernels are
# built for each; a rebuild after source edits takes 1-2 min).
set -euo pipefail
cd "$(dirname "$0")/../.."
TOOLCHAIN=${CUDA_TOOLCHAIN:-../shared/gpu/cuda-toolchain.sh}
eval "$(bash "$TOOLCHAIN" "${CUDA_PREFIX:-/opt/cuda-pip}")"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/cuda-target}
BUNDLE=$CARGO_TARGET_DIR/gpu-bundle
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE" gpu-bundle

cargo build --release --features cuda --bin toolgym
cargo build --release --features cuda -p toolgym-model --example bench_generate
strip -o "$BUNDLE/toolgym" "$CARGO_TARGET_DIR/release/toolgym"
strip -o "$BUNDLE/bench_generate" "$CARGO_TARGET_DIR/release/examples/bench_generate"

# Test executables: cargo names them in its JSON messages.
cargo test --release --features cuda -p toolgym-model --no-run \
    --test parity --test generation --test training --test checkpoint \
    --message-format=json \
  | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do
  strip -o "$BUNDLE/test-$name" "$exe"
done
ls -l "$BUNDLE"
tar -C "$BUNDLE" -cf - . | xz -T1 -9 > gpu-bundle/bundle.tar.xz
ls -l gpu-bundle/bundle.tar.xz
