"""toolgym.Rule: parity with the released Tool-N1 script and the Rust CLI,
OpenAI-format completions, hostile inputs, threads."""

import json
import pickle
import subprocess
import sys

import pytest

import toolgym
from conftest import REWARD_FIXTURES, read_jsonl

TOOLN1 = REWARD_FIXTURES / "tooln1_parity.jsonl"
# Ground-truth integers beyond 64 bits: serde_json reads them as floats, the
# script keeps them exact (documented; the Rust parity test lists the same).
KNOWN_DEVIATIONS = {
    "arg_big_eq",
    "arg_big_vs_float",
    "arg_big_neg_eq",
    "arg_u64max_plus1_eq",
    "arg_i64min_minus1_eq",
}
SCRIPT_FIELDS = {"tool-n1": "reward", "tool-n1-no-think": "v2", "tool-n1-fine": "v3", "tool-n1-fine-names": "v4"}


def truth_is_call_list(text):
    """Whether the script's ground truth is a list of {"name": str,
    "arguments": dict} (other shapes cannot be a toolgym ground truth)."""
    def strict(t):  # RFC 8259, as serde_json reads it: no NaN / Infinity
        return json.loads(t, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))

    try:
        v = strict(text)
        if isinstance(v, str):
            v = strict(v)
    except (ValueError, RecursionError):
        return False
    shaped = isinstance(v, list) and all(
        isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("arguments"), dict)
        for c in v
    )
    try:  # and serde_json reads it (numbers beyond f64 are out of range)
        toolgym.Rule("binary").score("", text)
    except ValueError:
        return False
    return shaped


def fixture_cases():
    """The fixture's cases a Rust string can hold (lone surrogates, tagged
    raw_lone_surrogate, are tested on their own)."""
    return [c for c in read_jsonl(TOOLN1) if c is not None and "raw_lone_surrogate" not in c["tags"]]


def script_cases():
    cases = fixture_cases()
    assert len(cases) > 900
    return [
        c
        for c in cases
        if truth_is_call_list(c["ground_truth"])
        and "depth_sensitive" not in c["tags"]
        and c["id"] not in KNOWN_DEVIATIONS
    ]


@pytest.mark.parametrize("rule", sorted(SCRIPT_FIELDS))
def test_tool_n1_rules_match_the_released_script(rule):
    cases = script_cases()
    field = SCRIPT_FIELDS[rule]
    want = [c[field] if isinstance(c.get(field), (int, float)) else 0.0 for c in cases]
    got = toolgym.Rule(rule).rewards([c["completion"] for c in cases], [c["ground_truth"] for c in cases])
    bad = [(c["id"], g, w) for c, g, w in zip(cases, got, want) if g != w]
    assert not bad, bad[:10]
    assert len(cases) > 800


@pytest.mark.parametrize("rule", sorted(SCRIPT_FIELDS) + ["binary"])
def test_score_one_by_one_matches_the_batch(rule):
    # Rule.score keeps the last ground truth read from text (verl's
    # per-sample manager repeats it for a prompt's G responses): scoring
    # one by one, in groups and interleaved, gives the batch's verdicts.
    cases = script_cases()[:300]
    r = toolgym.Rule(rule)
    batch = r.score_batch([c["completion"] for c in cases], [c["ground_truth"] for c in cases])
    for order in (range(len(cases)), [i for i in range(len(cases)) for _ in range(3)], range(len(cases) - 1, -1, -1)):
        for i in order:
            v = r.score(cases[i]["completion"], cases[i]["ground_truth"])
            assert (v.reward, v.reason, v.detail) == (batch[i].reward, batch[i].reason, batch[i].detail), cases[i]["id"]
    # A ground truth that fails still fails after a good one, and the other way.
    truth = '[{"name": "f", "arguments": {"x": 1}}]'
    reply = '<think>t</think><tool_call>[{"name": "f", "arguments": {"x": 1}}]</tool_call>'
    for _ in range(2):
        assert r.score(reply, truth).reward == 1.0
        with pytest.raises(ValueError):
            r.score(reply, '[{"name": 1}]')


def test_lone_surrogates_are_verdicts_not_exceptions():
    # Python can hold them, Rust strings cannot: an input_error verdict.
    v = toolgym.Rule("tool-n1").score("<think>\udc80</think>", "[]")
    assert (v.reward, v.reason) == (0.0, "input_error")


@pytest.mark.parametrize("rule", [name for name, _ in toolgym.rules() if not name.startswith("bfcl-")])
def test_every_rule_matches_the_rust_cli(cli, tmp_path, rule):
    cases = [c for c in fixture_cases() if truth_is_call_list(c["ground_truth"])]
    # The CLI's ground_truth field is JSON (a list, or a string holding one);
    # Python's str ground truth is the text the script reads: one level more.
    records = [
        {"id": i, "completion": c["completion"], "ground_truth": json.loads(c["ground_truth"])}
        for i, c in enumerate(cases)
    ]
    # OpenAI-format records too: the CLI and Python must read them alike.
    records += [
        {"id": len(records) + i, "completion": m, "ground_truth": '[{"name": "f", "arguments": {"x": 1}}]'}
        for i, m in enumerate(openai_messages())
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8", errors="surrogatepass")
    out = subprocess.run(
        [cli, "score", "--rule", rule, "--input", str(path), "--output", "-"],
        check=True, capture_output=True, text=True,
    ).stdout
    cli_verdicts = [json.loads(line) for line in out.splitlines()]
    truths = [c["ground_truth"] for c in cases] + [r["ground_truth"] for r in records[len(cases):]]
    verdicts = toolgym.Rule(rule).score_batch([r["completion"] for r in records], truths)
    assert len(cli_verdicts) == len(verdicts) == len(records)
    for r, c, v in zip(records, cli_verdicts, verdicts):
        if c["reason"] == "input_error":
            # Lone surrogates: the CLI rejects the line, Python the string.
            assert v.reason == "input_error", r
            continue
        assert (v.reward, v.reason, v.detail) == (c["reward"], c["reason"], c.get("detail", "")), r["id"]


def openai_messages():
    call = {"type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    return [
        {"role": "assistant", "reasoning_content": "think", "content": "", "tool_calls": [call]},
        {"role": "assistant", "content": "<think>t</think>\n", "tool_calls": [call]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "assistant", "reasoning_content": "t", "tool_calls": [{"name": "f", "arguments": {"x": 1}}]},
        {"role": "assistant", "reasoning_content": "t", "tool_calls": [{"function": {"name": "f", "arguments": '{"x": 1.0}'}}]},
        {"role": "assistant", "reasoning_content": "t", "tool_calls": [{"function": {"name": "f", "arguments": "{broken"}}]},
        {"role": "assistant", "reasoning_content": "t", "content": "Sure!", "tool_calls": [call]},
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "<think>t</think><tool_call>[{\"name\": \"f\", \"arguments\": {\"x\": 1}}]</tool_call>"}],
        [{"role": "user", "content": "no reply"}],
        {"role": "assistant", "tool_calls": "nope"},
    ]


def test_openai_format_completions():
    truth = [{"name": "f", "arguments": {"x": 1}}]
    got = [(v.reward, v.reason) for v in toolgym.Rule("binary").score_batch(openai_messages(), [truth] * 10)]
    assert got == [
        (1.0, "ok"),
        (1.0, "ok"),
        (0.0, "format_error"),  # no think anywhere
        (1.0, "ok"),
        (0.0, "wrong_args"),  # 1.0 is not 1: the JSON string's spelling is kept
        (0.0, "schema_error"),  # arguments that are not JSON stay a string
        (0.0, "format_error"),  # free text outside the blocks
        (1.0, "ok"),  # a transcript: its last assistant message
        (0.0, "input_error"),  # no assistant message
        (0.0, "input_error"),  # tool_calls not a list
    ]
    tool_n1 = [v.reward for v in toolgym.Rule("tool-n1").score_batch(openai_messages()[:4], [truth] * 4)]
    assert tool_n1 == [1.0, 1.0, 0.0, 1.0]
    assert toolgym.Rule("binary", think=False).score(openai_messages()[2], truth).ok


def test_ground_truth_forms_agree():
    rule = toolgym.Rule("binary")
    reply = '<think>.</think><tool_call>[{"name": "f", "arguments": {"x": [1, {"y": null}]}}]</tool_call>'
    truth = [{"name": "f", "arguments": {"x": [1, {"y": None}]}}]
    forms = [truth, tuple(truth), truth[0], json.dumps(truth), json.dumps(json.dumps(truth))]
    assert [rule.score(reply, t).reward for t in forms] == [1.0] * 5
    assert rule.score(reply.encode(), truth).ok


def test_numpy_values_are_read_as_the_values_they_hold():
    # What pandas / parquet readers hand a reward function.
    np = pytest.importorskip("numpy")
    rule = toolgym.Rule("binary")
    reply = '<think>.</think><tool_call>[{"name": "f", "arguments": {"n": 1, "b": true, "x": 2.5, "l": [1, 2]}}]</tool_call>'
    args = {"n": np.int64(1), "b": np.bool_(True), "x": np.float32(2.5), "l": np.array([1, 2])}
    truth = [{"name": np.str_("f"), "arguments": args}]
    assert rule.score(reply, truth).reward == 1.0
    assert rule.score(reply, np.array(truth, dtype=object)).reward == 1.0
    assert rule.rewards([reply], [np.array(truth, dtype=object)]) == [1.0]
    # A float32 (a parquet column's) is the value it was written as: 0.1,
    # not 0.10000000149011612, alone or in an array.
    tenth = '<think>.</think><tool_call>[{"name": "f", "arguments": {"x": 0.1, "l": [0.1, 2.5]}}]</tool_call>'
    for dtype in (np.float32, np.float16):
        narrow = {"x": dtype(0.1), "l": np.array([0.1, 2.5], dtype=dtype)}
        assert rule.score(tenth, [{"name": "f", "arguments": narrow}]).reward == 1.0, dtype
    # Other objects are still refused, their type named in full.
    with pytest.raises(TypeError, match="decimal.Decimal is not JSON"):
        import decimal

        rule.score(reply, [{"name": "f", "arguments": {"n": decimal.Decimal(1)}}])
    # numpy types with no Python equivalent (tolist() gives them back) are named too.
    with pytest.raises(TypeError, match=r'\["n"\]: numpy.longdouble is not JSON'):
        rule.score(reply, [{"name": "f", "arguments": {"n": np.longdouble(1)}}])
    with pytest.raises(TypeError, match=r'\["l"\]\[0\]: numpy.longdouble is not JSON'):
        rule.score(reply, [{"name": "f", "arguments": {"l": np.array([1, 2], dtype=np.longdouble)}}])


def test_wrong_types_raise_naming_the_argument():
    rule = toolgym.Rule("binary")
    with pytest.raises(TypeError, match="completion"):
        rule.score(3, [])
    with pytest.raises(TypeError, match="ground_truth"):
        rule.score("x", object())
    with pytest.raises(TypeError, match="dict keys"):
        rule.score("x", [{1: 2}])
    with pytest.raises(ValueError, match="ground_truth"):
        rule.score("x", "[{")
    with pytest.raises(ValueError, match="ground_truth"):
        rule.score("x", [{"name": 3}])
    with pytest.raises(ValueError, match="ground_truth"):
        rule.score("x", [{"name": "f", "arguments": {"x": float("nan")}}])
    with pytest.raises(ValueError, match=r"ground_truths\[1\]"):
        rule.score_batch(["a", "b"], [[], "nope"])
    with pytest.raises(TypeError, match=r"completions\[1\]"):
        rule.score_batch(["a", None], [[], []])
    with pytest.raises(ValueError, match="length"):
        rule.score_batch(["a"], [])
    with pytest.raises(TypeError, match="completions"):
        rule.score_batch("abc", ["x", "y", "z"])
    with pytest.raises(ValueError, match="unknown reward rule"):
        toolgym.Rule("nope")
    with pytest.raises(TypeError, match="unknown option"):
        toolgym.Rule("binary", thinking=False)
    with pytest.raises(TypeError, match="bool"):
        toolgym.Rule("binary", think=1)
    with pytest.raises(TypeError, match="takes no options"):
        toolgym.Rule("tool-n1", think=False)
    with pytest.raises(ValueError, match="abs_tol"):
        toolgym.Rule("binary", abs_tol=-1.0)
    # True reads as a tolerance of 1.0: refused, as threads=True is.
    with pytest.raises(TypeError, match="abs_tol= must be a number, not a bool"):
        toolgym.Rule("binary", abs_tol=True)
    with pytest.raises(TypeError, match="rel_tol= must be a number, not a bool"):
        toolgym.match_calls([], [], rel_tol=True)
    # Iterables in no order, or that iterate as something else.
    for batch in ({"a", "b"}, b"ab", frozenset(["a", "b"])):
        with pytest.raises(TypeError, match="completions must be a sequence"):
            rule.score_batch(batch, [[], []])


def test_a_ground_truth_with_null_arguments_is_warned_about_once():
    # What Arrow makes of a column of call dicts: the keys another row has
    # filled with None. In a fresh interpreter: the warning is said once.
    code = (
        "import warnings, toolgym\n"
        "warnings.simplefilter('always')\n"
        "r = toolgym.Rule('tool-n1')\n"
        "truth = [{'name': 'f', 'arguments': {'x': 1, 'city': None}}]\n"
        "reply = '<think>x</think><tool_call>[{\"name\": \"f\", \"arguments\": {\"x\": 1}}]</tool_call>'\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    print(r.score(reply, truth).reward, r.score(reply, truth).reward)\n"
        "    print(len(w), w[0].message)\n"
        "    r.score(reply, [{'name': 'f', 'arguments': {'x': 1}}])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "0.0 0.0", out
    assert lines[1].startswith('1 a ground truth\'s call "f" has the argument "city" = None'), out


def test_hostile_completions_are_verdicts():
    rule = toolgym.Rule("binary")
    truth = [{"name": "f", "arguments": {}}]
    deep = "<think>.</think><tool_call>" + "[" * 100_000 + "]" * 100_000 + "</tool_call>"
    huge = "<think>" + "x" * 20_000_000 + "</think><tool_call>[]</tool_call>"
    cases = {
        "deep": deep,
        "huge": huge,
        "bytes": b"<think>\xff\xfe</think>",
        "surrogate": "\ud800",
        "nul": "<think>\x00</think><tool_call>[{\"name\": \"f\", \"arguments\": {}}]</tool_call>",
        "deep message": {"role": "assistant", "content": [[[]]] * 3},
    }
    got = {k: rule.score(c, truth) for k, c in cases.items()}
    assert got["deep"].reason == "json_error"
    assert got["huge"].reason == "missing_call"
    assert (got["bytes"].reason, got["bytes"].detail) == ("input_error", "completion: invalid UTF-8 at byte 7")
    assert got["surrogate"].reason == "input_error"
    assert got["nul"].ok
    assert got["deep message"].reason == "input_error"
    nested = []
    for _ in range(200):
        nested = [nested]
    assert rule.score({"role": "assistant", "content": nested}, truth).reason == "input_error"
    with pytest.raises(ValueError, match="nested deeper"):
        rule.score("x", [{"name": "f", "arguments": {"x": nested}}])


def test_score_batch_is_identical_across_threads():
    cases = fixture_cases()
    completions = [c["completion"] for c in cases] * 5
    truths = [c["ground_truth"] for c in cases] * 5
    for name in ("binary", "tool-n1", "fine-grained-names"):
        rule = toolgym.Rule(name)
        try:
            one = [rule.score(c, t) for c, t in zip(completions, truths)]
        except ValueError:
            one = None  # odd ground truths raise one by one; compare the batches only
        batches = []
        for threads in (1, 2, 4, None):
            try:
                batches.append(rule.score_batch(completions, truths, threads=threads))
            except ValueError as e:
                batches.append(str(e))
        assert all(b == batches[0] for b in batches), name
        if one is not None:
            assert one == batches[0]


def test_score_batch_releases_the_gil():
    import threading

    rule = toolgym.Rule("binary")
    completions = ["<think>" + "x" * 200_000 + "</think><tool_call>[]</tool_call>"] * 400
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        before = len(ticks)
        rule.score_batch(completions, [[]] * len(completions), threads=1)
        during = len(ticks) - before
    finally:
        stop.set()
        t.join()
    assert during > 0


def test_bfcl_rule_takes_bfcl_cases():
    case = {
        "id": "simple_python_0",
        "functions": [{"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}],
        "possible_answer": [{"f": {"x": [1]}}],
    }
    rule = toolgym.Rule("bfcl-ast")
    good = '<tool_call>[{"name": "f", "arguments": {"x": 1}}]</tool_call>'
    assert rule.score(good, case).ok
    assert rule.score(good, json.dumps(case)).ok
    assert not rule.score(good.replace("1", "2"), case).ok
    with pytest.raises(ValueError, match="possible_answer"):
        rule.score(good, {"id": "simple_python_0", "functions": []})


def test_verdicts_and_rules_pickle_and_compare():
    v = toolgym.Rule("binary").score("x", [])
    assert pickle.loads(pickle.dumps(v)) == v
    assert v.to_dict() == {"reward": 0.0, "reason": v.reason, "detail": v.detail}
    assert float(v) == 0.0 and not v.ok
    r = pickle.loads(pickle.dumps(toolgym.Rule("binary", think=False, abs_tol=0.5)))
    assert r.score('<tool_call>[{"name": "f", "arguments": {"x": 1.4}}]</tool_call>', [{"name": "f", "arguments": {"x": 1}}]).ok
    # Rules compare by name and options (a pickled one equals its original)
    # and hash alike where equal.
    assert r == toolgym.Rule("binary", think=False, abs_tol=0.5) and r != toolgym.Rule("binary", think=False)
    assert toolgym.Rule("binary") != toolgym.Rule("tool-n1") and toolgym.Rule("binary") != "binary"
    assert toolgym.Rule("binary", abs_tol=0.0) == toolgym.Rule("binary", abs_tol=-0.0)
    assert len({toolgym.Rule("binary", abs_tol=0.0), toolgym.Rule("binary", abs_tol=-0.0), r, pickle.loads(pickle.dumps(r))}) == 2
    names = [n for n, _ in toolgym.rules()]
    assert names[:2] == ["binary", "binary-no-think"] and "tool-n1" in names and "bfcl-ast" in names


def test_message_edge_cases():
    rule = toolgym.Rule("binary")
    closing = {"x": "a</tool_call>b"}
    m = {"reasoning_content": "r", "tool_calls": [{"function": {"name": "f", "arguments": json.dumps(closing)}}]}
    assert rule.score(m, [{"name": "f", "arguments": closing}]).ok
    assert toolgym.Rule("tool-n1").score(m, [{"name": "f", "arguments": closing}]).ok
    empty = {"reasoning_content": "r", "tool_calls": [{"function": {"name": "g", "arguments": ""}}]}
    assert rule.score(empty, [{"name": "g", "arguments": {}}]).ok
    transcript = ({"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>t</think><tool_call>[]</tool_call>"})
    assert rule.score(transcript, []).ok


def test_rule_repr_shows_options():
    assert repr(toolgym.Rule("binary", think=False, abs_tol=0.5)) == 'Rule("binary", think=False, abs_tol=0.5)'
    assert repr(toolgym.Rule()) == 'Rule("binary")'
