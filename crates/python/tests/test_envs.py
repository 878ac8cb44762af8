"""Tasks and environments from Python: loaders, SingleTurnEnv,
MultiTurnEnv with Python tools (including tools that raise)."""

import json
import pickle
import warnings

import pytest

import toolgym
from conftest import REWARD_FIXTURES

ADD = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}


def reply(calls, think="ok"):
    return f"<think>{think}</think>\n<tool_call>\n{json.dumps(calls)}\n</tool_call>"


def test_synthetic_tasks_are_deterministic_and_round_trip(tmp_path):
    tasks = toolgym.synthetic_tasks(20, split="validation", seed=3)
    assert len(tasks) == 20 and tasks == toolgym.synthetic_tasks(20, split="validation", seed=3)
    assert tasks != toolgym.synthetic_tasks(20, split="validation", seed=4)
    t = tasks[0]
    assert t.source == "synthetic" and t.tools and t.query
    assert toolgym.Task.from_dict(t.to_dict()) == t == toolgym.Task.from_json(t.to_json())
    assert pickle.loads(pickle.dumps(t)) == t
    path = tmp_path / "tasks.jsonl"
    assert toolgym.write_tasks(tasks, str(path)) == 20
    assert toolgym.load_tasks(str(path)) == tasks
    # The reference reply earns the reward, under the task's own rule.
    assert toolgym.Rule("binary").score(t.target(), t.ground_truth).ok
    assert t.prompt().endswith("<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="split"):
        toolgym.synthetic_tasks(2, split="test")
    with pytest.raises(ValueError, match="unknown template"):
        t.prompt("nope")


def test_load_tasks_skips_bad_lines_with_one_warning(tmp_path):
    good = toolgym.synthetic_tasks(3)
    path = tmp_path / "t.jsonl"
    lines = [good[0].to_json(), "{not json", "", good[1].to_json(), '{"id": 3}', good[2].to_json()]
    path.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tasks = toolgym.load_tasks(str(path))
    assert tasks == good
    assert len(caught) == 1 and "skipped 2 bad line(s)" in str(caught[0].message)
    assert caught[0].category is UserWarning  # filterable as Python's own warnings are
    assert "t.jsonl:2:" in str(caught[0].message)
    with pytest.raises(ValueError, match=r"t\.jsonl:2:"):
        toolgym.load_tasks(str(path), strict=True)
    with pytest.raises(OSError):
        toolgym.load_tasks(str(tmp_path / "missing.jsonl"))
    # A NUL in what the warning quotes (a task id) is shown escaped, not an empty warning.
    tool = {"name": "f", "description": "", "parameters": {"type": "object", "properties": {}}}
    path.write_text(json.dumps({"id": "a\u0000", "source": "s", "tools": [tool, tool], "messages": [], "ground_truth": []}) + "\n")
    with pytest.warns(UserWarning, match=r"task a\\0: tool 1 of the list repeats the name"):
        assert toolgym.load_tasks(str(path)) == []


def test_tasks_built_from_records_refuse_what_load_tasks_would_skip(tmp_path):
    tool = lambda d: {"name": "f", "description": d, "parameters": {"type": "object", "properties": {}}}  # noqa: E731
    record = {"id": "a", "source": "s", "messages": [{"role": "user", "content": "q"}],
              "ground_truth": [], "tools": [tool("one"), tool("two")]}
    # Written, such a task would read back as nothing.
    with pytest.raises(ValueError, match=r'task a: tool 1 of the list repeats the name "f" of tool 0'):
        toolgym.Task.from_dict(record)
    with pytest.raises(ValueError, match="repeats the name"):
        toolgym.Task.from_json(json.dumps(record))
    record["tools"] = [tool("one")]
    t = toolgym.Task.from_dict(record)
    toolgym.write_tasks([t], str(tmp_path / "t.jsonl"))
    assert toolgym.load_tasks(str(tmp_path / "t.jsonl")) == [t]


def test_bfcl_tasks_load_and_score():
    path = REWARD_FIXTURES / "bfcl" / "BFCL_v4_simple_python.json"
    tasks = toolgym.load_bfcl(str(path))
    assert len(tasks) > 10 and all(t.source == "bfcl" for t in tasks)
    t = tasks[0]
    assert t.meta["bfcl_category"] == "simple_python" and t.meta["bfcl_possible_answer"]
    assert toolgym.Rule("binary").score(t.target(), t.ground_truth).ok
    assert len(toolgym.load_bfcl(str(REWARD_FIXTURES / "bfcl"))) > len(tasks)


def test_task_from_python_and_chat_messages():
    task = toolgym.Task(
        "What is 2 plus 3?",
        ground_truth=[{"name": "add", "arguments": {"a": 2, "b": 3}}],
        tools=[{"name": "add", "description": "Adds.", "parameters": ADD}],
    )
    chat = task.chat()
    assert [m["role"] for m in chat] == ["system", "user"]
    assert '"name": "add"' in chat[0]["content"] and "<tool_call>" in chat[0]["content"]
    assert set(chat[0]) == {"role", "content"}
    assert task.prompt() == (
        "<|im_start|>system\n" + chat[0]["content"] + "<|im_end|>\n"
        "<|im_start|>user\nWhat is 2 plus 3?<|im_end|>\n<|im_start|>assistant\n"
    )
    with pytest.raises(ValueError, match="ground_truth"):
        toolgym.Task("q", ground_truth=[{"arguments": {}}])
    with pytest.raises(ValueError, match="tools"):
        toolgym.Task("q", tools=[{"description": "no name"}])


def test_task_messages_in_openai_form():
    user = {"role": "user", "content": "2 plus 3?"}
    openai = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}]}
    result = {"role": "tool", "name": "add", "content": "5"}
    flat = {"role": "assistant", "content": "", "tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}
    a = toolgym.Task([user, openai, result, {"role": "user", "content": "and 4?"}])
    b = toolgym.Task([user, flat, result, {"role": "user", "content": "and 4?"}])
    assert a.prompt() == b.prompt()
    # Text beside the calls (not holding them): both are rendered, text
    # first, as Qwen2.5's template renders such a message; the calls were
    # left out before, so the result answered a call the prompt never showed.
    said = dict(openai, content="Let me add them.")
    c = toolgym.Task([user, said, result])
    for template in ("qwen2.5", "tool-n1"):
        turn = c.chat(template)[2]["content"]
        assert turn.startswith("Let me add them.\n<tool_call>\n") and '"name": "add"' in turn, turn
    assert "Let me add them.\n<tool_call>\n" in c.prompt()
    # A raw reply that holds its calls is rendered as written, once.
    raw = "<tool_call>\n[{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 3}}]\n</tool_call>"
    d = toolgym.Task([user, dict(flat, content=raw), result])
    assert d.chat()[2]["content"] == raw and d.prompt().count("<tool_call>\n[") == 1
    # A bad message is named by its place.
    with pytest.raises(ValueError, match=r"messages\[1\]\.tool_calls\[0\]"):
        toolgym.Task([user, {"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}])
    with pytest.raises(ValueError, match=r"messages\[1\]: unknown variant `robot`"):
        toolgym.Task([user, {"role": "robot", "content": "x"}])


def test_single_turn_env_has_the_gymnasium_shape():
    task = toolgym.synthetic_tasks(1)[0]
    env = toolgym.SingleTurnEnv(task)
    obs, info = env.reset(seed=7)
    assert obs["prompt"] == task.prompt() and obs["messages"] == task.messages and info == {}
    obs, reward, terminated, truncated, info = env.step(env.demonstration())
    assert (reward, terminated, truncated) == (1.0, True, False)
    env.reset()
    assert env.step(env.demonstration(), cut=True)[1:4] == (1.0, True, False)  # scored as written
    assert info["reason"] == "ok" and info["end"] == "scored" and info["calls"] == task.ground_truth
    env.reset()
    _, reward, _, _, info = env.step("<think>hm</think>")
    assert reward == 0.0 and info["reason"] == "format_error" and info["detail"]
    # OpenAI-format actions are read like completions.
    env.reset()
    message = {"role": "assistant", "reasoning_content": "r", "tool_calls": task.ground_truth}
    assert env.step(message)[1] == 1.0
    with pytest.raises(ValueError, match="rule"):
        toolgym.SingleTurnEnv(task, rule="bfcl-ast")
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=-1)


def bank_task():
    return toolgym.Task(
        "Add 2 and 3, then add 4 to the result.",
        ground_truth=[{"name": "add", "arguments": {"a": 2, "b": 3}}, {"name": "add", "arguments": {"a": 5, "b": 4}}],
    )


def test_multi_turn_env_runs_python_tools():
    calls = []

    def add(a, b):
        calls.append((a, b))
        return {"sum": a + b}

    env = toolgym.MultiTurnEnv(bank_task(), [toolgym.Tool("add", "Adds two integers.", ADD, add)], max_turns=4)
    obs, info = env.reset()
    assert [t["name"] for t in obs["tools"]] == ["add"] and "seed" in info
    obs, reward, terminated, truncated, info = env.step(reply([{"name": "add", "arguments": {"a": 2, "b": 3}}]))
    assert not terminated and info["results"] == [{"name": "add", "result": {"sum": 5}, "ok": True}]
    assert obs["messages"][-1]["role"] == "tool" and obs["prompt"].endswith("<|im_start|>assistant\n")
    env.step(reply([{"name": "add", "arguments": {"a": 5, "b": 4}}]))
    obs, reward, terminated, truncated, info = env.step("<think>done</think>\nThe result is 9.")
    assert (reward, terminated, truncated, info["end"]) == (1.0, True, False, "answered")
    assert calls == [(2, 3), (5, 4)]
    assert env.messages[-1]["content"].endswith("The result is 9.")
    # A reply a length limit cut off: its complete calls run, but a cut-off
    # answer ends the episode at the token limit, not as answered.
    env.reset()
    _, _, terminated, truncated, info = env.step(reply([{"name": "add", "arguments": {"a": 2, "b": 3}}]), cut=True)
    assert (terminated, truncated, info["end"]) == (False, False, None) and len(calls) == 3
    env.step(reply([{"name": "add", "arguments": {"a": 5, "b": 4}}]))
    _, reward, terminated, truncated, info = env.step("<think>done</think>\nThe res", cut=True)
    assert (reward, terminated, truncated, info["end"]) == (1.0, False, True, "token_limit")
    env.reset()
    _, reward, terminated, truncated, info = env.step('<think>x</think>\n<tool_call>\n[{"name": "ad', cut=True)
    assert (reward, truncated, info["end"]) == (0.0, True, "token_limit")


def test_objects_whose_tools_run_their_own_methods_are_collected():
    """A state object holding tools whose handlers are its own bound methods
    (directly, or through a MultiTurnEnv) is a reference cycle through a
    Tool: the garbage collector sees the handler through it and frees the
    object, so an episode's state does not outlive it."""
    import gc
    import weakref

    class Bank:
        def __init__(self, with_env):
            tool = toolgym.Tool("add", "Adds two integers.", ADD, self.add)
            self.tools = [tool]
            if with_env:
                self.env = toolgym.MultiTurnEnv(bank_task(), [tool], max_turns=2)
                self.dict_env = toolgym.MultiTurnEnv(
                    bank_task(), [{"name": "add", "description": "", "parameters": ADD, "handler": self.add}])

        def add(self, a, b):
            return {"sum": a + b}

    for with_env in (False, True):
        banks = [Bank(with_env) for _ in range(3)]
        refs = [weakref.ref(b) for b in banks]
        del banks
        gc.collect()
        assert [r() for r in refs] == [None, None, None], with_env
    # A tool still in use keeps its handler.
    bank = Bank(True)
    env = bank.env
    del bank
    gc.collect()
    obs, _ = env.reset()
    _, _, _, _, info = env.step(reply([{"name": "add", "arguments": {"a": 2, "b": 3}}]))
    assert info["results"][0]["result"] == {"sum": 5}


def test_multi_turn_env_binary_reward_needs_every_reply_well_formed():
    def add(a, b):
        return {"sum": a + b}

    steps = [reply([{"name": "add", "arguments": {"a": 2, "b": 3}}]),
             reply([{"name": "add", "arguments": {"a": 5, "b": 4}}])]

    def play(last, **kw):
        env = toolgym.MultiTurnEnv(bank_task(), [toolgym.Tool("add", "Adds two integers.", ADD, add)], **kw)
        env.reset()
        for s in steps:
            env.step(s)
        _, reward, _, _, info = env.step(last)
        return reward, info["reason"]

    good, bad = "<think>done</think>\nThe result is 9.", "The result is 9."  # the last without its think block
    # The right calls ran either way: calls-match pays both; the paper's rule only the well-formed one.
    assert play(good) == (1.0, "ok") and play(bad)[0] == 1.0
    assert play(good, reward="binary") == (1.0, "ok")
    assert play(bad, reward="binary") == (0.0, "format_error")
    with pytest.raises(ValueError, match='reward="sum": expected "calls-match"'):
        toolgym.MultiTurnEnv(bank_task(), [toolgym.Tool("add", "", ADD, add)], reward="sum")


def test_tools_that_raise_or_misbehave_never_crash_the_env():
    def boom(a, b):
        raise RuntimeError("the bank is closed")

    def not_json(a, b):
        return object()

    tools = [
        {"name": "add", "description": "Raises.", "parameters": ADD, "handler": boom},
        {"type": "function", "function": {"name": "odd", "description": "Returns junk.", "parameters": ADD}, "handler": not_json},
    ]
    env = toolgym.MultiTurnEnv(bank_task(), tools, max_turns=3)
    env.reset()
    _, _, terminated, _, info = env.step(
        reply([{"name": "add", "arguments": {"a": 1, "b": 2}}, {"name": "odd", "arguments": {"a": 1, "b": 2}},
               {"name": "add", "arguments": {"a": "x", "b": 2}}, {"name": "nope", "arguments": {}}])
    )
    assert not terminated
    kinds = [(r["ok"], r["error"]["kind"]) for r in info["results"]]
    assert kinds == [(False, "tool_error"), (False, "tool_error"), (False, "invalid_arguments"), (False, "unknown_tool")]
    assert "RuntimeError: the bank is closed" in info["results"][0]["error"]["message"]
    assert "not JSON" in info["results"][1]["error"]["message"]
    # The episode goes on to the turn limit and ends truncated, reward 0.
    env.step(reply([{"name": "add", "arguments": {"a": 1, "b": 2}}]))
    _, reward, terminated, truncated, info = env.step(reply([{"name": "add", "arguments": {"a": 1, "b": 2}}]))
    assert (reward, truncated, info["end"]) == (0.0, True, "turn_limit")


def test_bad_tool_definitions_are_clear_errors():
    with pytest.raises(TypeError, match="callable"):
        toolgym.Tool("add", "Adds.", ADD, 3)
    with pytest.raises(ValueError, match="handler"):
        toolgym.MultiTurnEnv(bank_task(), [{"name": "add", "description": "", "parameters": ADD}])
    with pytest.raises(TypeError, match=r"tools\[0\]"):
        toolgym.MultiTurnEnv(bank_task(), ["add"])
    with pytest.raises(ValueError, match=r"tools\[1\]"):
        t = toolgym.Tool("add", "Adds.", ADD, lambda a, b: a + b)
        toolgym.MultiTurnEnv(bank_task(), [t, t])
    with pytest.raises(ValueError, match="max_turns"):
        toolgym.MultiTurnEnv(bank_task(), [], max_turns=0)
    # A spec error names the tool once.
    with pytest.raises(ValueError, match=r'^tool "f": parameters must be a JSON object, found a string$'):
        toolgym.Tool("f", "", "x", lambda: 0)
    # Every tool the task shows must run, on the schema it shows.
    shows = toolgym.Task("Translate hi.", [], [{"name": "translate", "description": "",
                                                "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}])
    add = toolgym.Tool("add", "Adds.", ADD, lambda a, b: a + b)
    with pytest.raises(ValueError, match=r'shows the tool "translate", which no tool in tools runs \(tools: add\)'):
        toolgym.MultiTurnEnv(shows, [add])
    other = toolgym.Tool("translate", "", {"type": "object", "properties": {"words": {"type": "string"}}}, lambda **_: 0)
    with pytest.raises(ValueError, match='"translate" has other parameters than the task\'s tool'):
        toolgym.MultiTurnEnv(shows, [other])
    same = toolgym.Tool("translate", "Translates.", shows.tools[0]["parameters"], lambda text: text)
    toolgym.MultiTurnEnv(shows, [same, add])  # extra tools are fine: only the task's are shown


def test_a_keyboard_interrupt_in_a_tool_is_raised_not_swallowed():
    def stop(a, b):
        raise KeyboardInterrupt

    env = toolgym.MultiTurnEnv(bank_task(), [toolgym.Tool("add", "Stops.", ADD, stop)])
    env.reset()
    with pytest.raises(KeyboardInterrupt):
        env.step(reply([{"name": "add", "arguments": {"a": 1, "b": 2}}]))

    # So is any BaseException that is not an Exception (asyncio's cancellation).
    import asyncio

    def cancelled(a, b):
        raise asyncio.CancelledError()

    with pytest.raises(asyncio.CancelledError):
        toolgym.Tool("add", "Cancelled.", ADD, cancelled).call({"a": 1, "b": 2})
    # A bad pattern names the tool once.
    with pytest.raises(ValueError, match=r'^tool "f": invalid parameter schema'):
        toolgym.Tool("f", "", {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}, lambda a: a)


def test_a_hand_written_tool_schema_is_read_strictly():
    # What the lenient reading of data drops would loosen the tool's checks
    # silently: `required` as a string made `x` optional, an unknown type
    # took anything. Each problem is named by its JSON pointer.
    bad = {
        "type": "object",
        "properties": {"x": {"type": "strng"}, "n": {"type": "integer", "minimum": "3"},
                       "s": {"type": "string", "minLength": -1}},
        "required": "x",
    }
    with pytest.raises(ValueError) as e:
        toolgym.Tool("f", "", bad, lambda **k: 1)
    message = str(e.value)
    assert message.startswith('tool "f": the parameters are not a well-formed schema: '), message
    for problem in ['/properties/x/type: "strng" is not a type name', "/properties/n/minimum: a string is not a number",
                    "/properties/s/minLength: -1 is not a count", "/required: not a list of property names"]:
        assert problem in message, (problem, message)
    # The same through a dict tool (how verl and TRL bridges read tools).
    with pytest.raises(ValueError, match=r"^tools\[0\]: tool \"f\": the parameters are not a well-formed"):
        toolgym.MultiTurnEnv(bank_task(), [{"name": "f", "parameters": bad, "handler": lambda **k: 1}])
    # Dialects read in full still pass: BFCL types, Python annotations.
    ok = toolgym.Tool("f", "", {"type": "dict", "properties": {"x": {"type": "float"}, "l": {"type": "List[int]"}},
                                "required": ["x"]}, lambda **k: 1)
    assert ok.to_openai()["function"]["parameters"]["properties"]["x"] == {"type": "number"}


def test_synthetic_tasks_refuses_absurd_sizes():
    with pytest.raises(ValueError, match="at most"):
        toolgym.synthetic_tasks(10**11)


def test_a_handler_bug_is_warned_once_with_its_traceback():
    # The model reads the exception as a tool error; whoever runs the
    # training hears of it once per tool and exception type.
    def buggy(a, b):
        return undefined_name + a  # noqa: F821

    env = toolgym.MultiTurnEnv(bank_task(), [toolgym.Tool("add", "Adds.", ADD, buggy)], max_turns=4)
    env.reset()
    call = reply([{"name": "add", "arguments": {"a": 2, "b": 3}}])
    with pytest.warns(UserWarning, match=r'(?s)the handler of tool "add" raised NameError.*Traceback.*undefined_name'):
        _, _, _, _, info = env.step(call)
    assert info["results"][0]["error"]["kind"] == "tool_error"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env.step(call)  # the same tool and type: not said again


def test_tools_and_tasks_given_wrongly_are_named():
    add = toolgym.Tool("add", "Adds.", ADD, lambda a, b: a + b)
    # One tool, None, or a dict of tools where a list belongs.
    for tools in (add, None, {"add": add}, "add"):
        with pytest.raises(TypeError, match="tools must be a list of toolgym.Tool"):
            toolgym.MultiTurnEnv(bank_task(), tools)
    # Any other iterable of tools is taken (a dict's values, a generator).
    toolgym.MultiTurnEnv(bank_task(), {"add": add}.values())
    toolgym.MultiTurnEnv(bank_task(), (t for t in [add]))
    # A ground truth calling a tool the task does not offer: written, it
    # would read back as nothing.
    with pytest.raises(ValueError, match='calls "sub", which is not among its tools'):
        toolgym.Task("q", ground_truth=[{"name": "sub", "arguments": {}}],
                     tools=[{"name": "add", "description": "Adds.", "parameters": ADD}])


def test_a_folder_without_bfcl_files_is_an_error(tmp_path):
    with pytest.raises((OSError, ValueError), match="no BFCL_v<N>_<category>.json file"):
        toolgym.load_bfcl(str(tmp_path))
