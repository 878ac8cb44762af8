#!/usr/bin/env bash
# All tests: the Rust workspace, then the Python package. The package is
# built with maturin into a venv (target/python-venv; pinned test
# requirements from PyPI) and its pytest suite runs against the CLI that
# `cargo test` just built (parity of Python and CLI verdicts).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
venv=target/python-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
export PATH="$PWD/$venv/bin:$PATH"   # maturin's build hook runs `maturin` from PATH
"$venv/bin/pip" install -q --disable-pip-version-check -r crates/python/requirements-test.txt
"$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation ./crates/python
TOOLGYM_BIN="$PWD/target/debug/toolgym" "$venv/bin/python" -m pytest -q crates/python/tests
