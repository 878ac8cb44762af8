"""Shared paths and helpers for the toolgym Python tests."""

import json
import os
import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
REWARD_FIXTURES = REPO / "crates" / "reward" / "tests" / "fixtures"


def read_jsonl(path):
    """Lines of a JSONL file as dicts (lines Python's json cannot read are
    returned as None, so callers count them)."""
    out = []
    with open(path, encoding="utf-8", errors="surrogatepass") as f:
        for line in f:
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append(None)
    return out


@pytest.fixture(scope="session")
def cli():
    """The toolgym CLI: $TOOLGYM_BIN, else the workspace's build. CI
    (.ci/run) sets TOOLGYM_BIN after `cargo test` built it."""
    explicit = os.environ.get("TOOLGYM_BIN")
    if explicit:
        return explicit
    for profile in ("release", "debug"):
        path = REPO / "target" / profile / "toolgym"
        if path.exists():
            return str(path)
    found = shutil.which("toolgym")
    if found:
        return found
    pytest.skip("no toolgym CLI: set TOOLGYM_BIN or run `cargo build` first")


@pytest.fixture(autouse=True)
def fresh_unscored_count():
    """Each test starts with no unscored rows counted, so the thinning of
    per-row warnings (past 20 in a process) does not depend on test order."""
    from toolgym import _tasks

    _tasks._unscored["rows"] = 0
    yield
