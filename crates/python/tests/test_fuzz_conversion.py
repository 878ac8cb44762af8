"""Structure-aware fuzzing of the bindings' argument conversion (Python
objects → Rust), with Hypothesis: arbitrary nested values, odd types and
hostile strings as completions, ground truths, task fields and tool specs.

Contract: every call returns a result or raises TypeError / ValueError whose
message names the argument; nothing else escapes (no panic, no SystemError);
the same call gives the same outcome twice. Derandomised, so CI runs the
same examples every time (`max_examples` per test below).
"""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import toolgym

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Opaque:
    """An object the bindings cannot know."""


# Leaves: every JSON type, plus what JSON lacks (bytes, huge ints, NaN,
# lone surrogates, NUL, tuples, sets, arbitrary objects).
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12),
    st.binary(max_size=8),
    st.sampled_from(["\ud800", "\x00", "<tool_call>", "</think>", "{", "["]),
    st.builds(Opaque),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 3), st.none()), inner, max_size=4),
        st.frozensets(st.integers(0, 5), max_size=3),
    ),
    max_leaves=20,
)
# Call-shaped values, so that conversion gets past the first type check.
calls = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=6), values), "arguments": st.one_of(st.dictionaries(st.text(max_size=6), values, max_size=3), values)}
)
truths = st.one_of(values, st.lists(calls, max_size=3), calls)
completions = st.one_of(
    values,
    st.text(max_size=200),
    st.builds(lambda c: {"role": "assistant", "content": c}, values),
    st.builds(lambda c: [{"role": "assistant", "content": c}], st.text(max_size=40)),
)


def outcome(f, *args, **kwargs):
    """The call's result (as comparable data) or its exception, checked
    against the contract."""
    try:
        r = f(*args, **kwargs)
    except (TypeError, ValueError) as e:
        return (type(e).__name__, str(e))
    if isinstance(r, list):
        return [(v.reward, v.reason, v.detail) if hasattr(v, "reward") else v for v in r]
    if hasattr(r, "reward"):
        assert not math.isnan(r.reward)
        return (r.reward, r.reason, r.detail)
    return r


def names(exc, *words):
    return any(w in exc[1] for w in words)


@FUZZ
@given(completion=completions, truth=truths)
def test_rule_score_converts_anything_or_names_the_argument(completion, truth):
    rule = toolgym.Rule("binary")
    got = outcome(rule.score, completion, truth)
    assert got == outcome(rule.score, completion, truth)
    if isinstance(got, tuple) and isinstance(got[0], str):
        assert names(got, "completion", "ground_truth"), got


@FUZZ
@given(batch=st.lists(st.tuples(completions, truths), max_size=4), threads=st.sampled_from([None, 1, 2]))
def test_score_batch_converts_anything_or_names_the_item(batch, threads):
    rule = toolgym.Rule("tool-n1")
    cs, ts = [c for c, _ in batch], [t for _, t in batch]
    got = outcome(rule.score_batch, cs, ts, threads=threads)
    assert got == outcome(rule.score_batch, cs, ts, threads=threads)
    if isinstance(got, tuple):
        assert names(got, "completions", "ground_truths"), got


@FUZZ
@given(messages=st.one_of(values, st.text(max_size=30)), truth=st.one_of(st.none(), truths), tools=st.one_of(st.none(), values))
def test_task_fields_convert_or_name_the_argument(messages, truth, tools):
    got = outcome(lambda: toolgym.Task(messages, ground_truth=truth, tools=tools).id)
    if isinstance(got, tuple):
        assert names(got, "messages", "ground_truth", "tools"), got


@FUZZ
@given(spec=values)
def test_tool_specs_convert_or_are_rejected_clearly(spec):
    got = outcome(lambda: toolgym.Task("hi", tools=[spec]).id)
    if isinstance(got, tuple):
        assert names(got, "tools"), got
