#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), JOBS at a time
# (default 2), inputs up to 4 KB, from the seed corpora, and prints one line per target:
# executions, exec/s, crashes (files in fuzz/artifacts/<target>/).
#   scripts/fuzz/run_all.sh [SECONDS] [JOBS]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); stable Rust with
# RUSTC_BOOTSTRAP=1. Sanitizer off (`-s none`): the code under test is safe
# Rust, and executions are 2-3x faster without ASan. Debug assertions and
# overflow checks on (`-a`: an arithmetic overflow is a finding, where a
# release build wraps), and an input that takes over 10 s is a finding
# (`-timeout=10`; libFuzzer's default, 1200 s, is past a run's length).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
jobs=${2:-2}
python3 scripts/fuzz/seed.py >/dev/null
targets=$(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v '^toolgym-fuzz$')
RUSTC_BOOTSTRAP=1 cargo fuzz build -O -a -s none >/dev/null
logs=$(mktemp -d)
echo "$targets" | xargs -P "$jobs" -I{} sh -c \
  "mkdir -p fuzz/corpus/{}; RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a -s none {} fuzz/corpus/{} -- -max_total_time=$seconds -max_len=4096 -timeout=10 -print_final_stats=1 >$logs/{}.log 2>&1 || true"
printf '| target | executions | exec/s | crashes |\n|---|---:|---:|---:|\n'
for t in $targets; do
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log" | tail -1)
  crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l)
  printf '| %s | %s | %s | %s |\n' "$t" "${runs:-?}" "${rate:-?}" "$crashes"
done
echo "logs: $logs"
