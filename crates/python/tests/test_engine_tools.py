"""toolgym tools in the engines' tool loops: toolgym.trl.environment (a
TRL environment class, driven here as TRL drives one) and
toolgym.verl_tools (verl function tools). scripts/integration/engines_check.py
runs both inside the real TRL and verl."""

import inspect
import json
import subprocess
import sys
import time
import types
import typing
import warnings

import pytest

import toolgym
import toolgym.trl
import toolgym.verl
import toolgym.verl_tools

BANK = {"Ann Lee": 7, "Bo Chen": 9}


def find_account(owner):
    if owner not in BANK:
        raise ValueError(f"no account for {owner}")
    return {"account": BANK[owner]}


FIND = {
    "type": "object",
    "properties": {"owner": {"type": "string", "description": "The account holder's\n  full name."}},
    "required": ["owner"],
}
WITHDRAW = {
    "type": "object",
    "properties": {
        "account": {"type": "integer", "description": "The account number."},
        "amount": {"type": "number", "minimum": 0, "description": "How much. Returns: nothing"},
        "currency": {"type": "string", "enum": ["EUR", "USD"], "description": "Currency."},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Labels."},
        "memo": {"type": "object", "properties": {"text": {"type": "string"}}, "description": "A memo."},
        "when": {"type": ["string", "null"], "description": "Date."},
    },
    "required": ["account", "amount"],
}


def bank_tools(log=None):
    def withdraw(account, amount, **rest):
        if log is not None:
            log.append(amount)
        return {"account": account, "withdrawn": amount}

    return [
        toolgym.Tool("find_account", "Finds a customer's account.", FIND, find_account),
        {"type": "function", "function": {"name": "withdraw", "description": "Withdraws money.",
                                          "parameters": WITHDRAW}, "handler": withdraw},
    ]


def truth(owner, amount):
    return json.dumps([{"name": "find_account", "arguments": {"owner": owner}},
                       {"name": "withdraw", "arguments": {"account": BANK[owner], "amount": amount}}])


# At module level, as TRL's AsyncGRPOTrainer needs to pickle it.
PickledBank = toolgym.trl.environment([toolgym.Tool("find_account", "Finds an account.", FIND, find_account)],
                                      name="PickledBank")


def test_an_environment_class_pickles_where_it_is_assigned():
    import pickle

    assert PickledBank.__module__ == __name__ and PickledBank.__qualname__ == "PickledBank"
    assert pickle.loads(pickle.dumps(PickledBank)) is PickledBank
    env = pickle.loads(pickle.dumps(PickledBank()))
    env.reset(ground_truth=json.dumps([{"name": "find_account", "arguments": {"owner": "Ann Lee"}}]))
    assert json.loads(env.find_account(owner="Ann Lee"))["result"] == {"account": 7}
    assert toolgym.trl.environment(bank_tools(), name="Elsewhere", module="my.module").__module__ == "my.module"
    # A Tool pickles as its parts (its handler by pickle's rules).
    tool = pickle.loads(pickle.dumps(toolgym.Tool("withdraw", "Withdraws.", WITHDRAW, find_account)))
    assert tool.to_openai()["function"]["parameters"] == WITHDRAW
    assert tool.call({"account": 7})["error"]["kind"] == "invalid_arguments"


def tool_methods(cls):
    """What TRL exposes as tools: the class's public functions but reset and get_reward."""
    return sorted(n for n, _ in inspect.getmembers(cls, predicate=inspect.isfunction)
                  if n not in ("reset", "get_reward") and not n.startswith("_"))


def test_trls_tool_discovery_on_a_fresh_instance_warns_nothing():
    # TRL finds tools with inspect.getmembers(instance, inspect.ismethod), which reads every
    # attribute, properties included: `verdict` before any reset is no episode to warn about.
    Bank = toolgym.trl.environment(bank_tools(), name="Discovered")
    env = Bank()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        methods = sorted(n for n, _ in inspect.getmembers(env, predicate=inspect.ismethod)
                         if n not in ("reset", "get_reward") and not n.startswith("_"))
    assert methods == ["find_account", "withdraw"]
    # After a reset, a row without a ground truth is said.
    env.reset()
    with pytest.warns(RuntimeWarning, match="no 'ground_truth' column"):
        assert env.get_reward() is None


def test_the_class_has_what_trl_looks_for():
    Bank = toolgym.trl.environment(bank_tools())
    assert Bank.__name__ == "ToolgymEnvironment" and issubclass(Bank, toolgym.trl.ToolEnvironment)
    assert tool_methods(Bank) == ["find_account", "withdraw"]
    assert callable(Bank.reset) and callable(Bank.get_reward)
    assert not hasattr(toolgym.trl.environment(bank_tools(), reward=False, name="Quiet"), "get_reward")
    env = Bank()
    # Methods named after the tools, keyword-only parameters (in the schema's order, as toolgym's
    # templates list them) with the schema's types; the optional ones default to None (so
    # they are not required when rendered).
    method = env.withdraw
    assert method.__name__ == "withdraw"
    params = inspect.signature(method).parameters
    assert list(params) == ["account", "amount", "currency", "tags", "memo", "when"]
    assert [n for n, p in params.items() if p.default is inspect.Parameter.empty] == ["account", "amount"]
    hints = typing.get_type_hints(method)
    assert hints["account"] is int and hints["amount"] is float
    assert hints["currency"] == typing.Literal["EUR", "USD"]
    assert hints["tags"] == typing.List[str] and hints["memo"] is dict
    assert hints["when"] == typing.Optional[str]
    # A Google-style docstring: one line per argument; what a hint cannot say is written as
    # JSON Schema; nothing reads as a section header.
    doc = inspect.getdoc(method)
    assert doc.startswith("Withdraws money.\n\nArgs:\n"), doc
    lines = doc.split("Args:\n", 1)[1].splitlines()
    assert lines[0] == "    account: The account number."
    assert lines[1] == '    amount: How much. Returns : nothing JSON Schema: {"type":"number","minimum":0}'
    assert lines[2] == "    currency: Currency."
    assert lines[4] == '    memo: A memo. JSON Schema: {"type":"object","properties":{"text":{"type":"string"}}}'
    assert inspect.getdoc(env.find_account).endswith("owner: The account holder's full name.")
    # transformers needs a description for every argument: one is given where the schema has none.
    bare = toolgym.Tool("f", "", {"type": "object", "properties": {"x": {"type": "string"}}}, lambda **_: 0)
    assert inspect.getdoc(toolgym.trl.environment([bare])().f) == "f\n\nArgs:\n    x: No description given."


def test_an_episode_runs_the_tools_and_scores_its_calls():
    env = toolgym.trl.environment(bank_tools())()
    assert env.reset(prompt=[{"role": "user", "content": "Withdraw 40.5"}], ground_truth=truth("Ann Lee", 40.5)) is None
    # The tool message is toolgym's: the result, named.
    assert json.loads(env.find_account(owner="Ann Lee")) == {"name": "find_account", "result": {"account": 7}}
    assert env.get_reward() == 0.0 and env.verdict.reason == "missing_call"
    assert json.loads(env.withdraw(account=7, amount=40.5))["result"] == {"account": 7, "withdrawn": 40.5}
    assert env.get_reward() == 1.0 and env.verdict.ok
    assert env.calls == [{"name": "find_account", "arguments": {"owner": "Ann Lee"}},
                         {"name": "withdraw", "arguments": {"account": 7, "amount": 40.5}}]
    assert [r["ok"] for r in env.results] == [True, True]
    # The instance is reused: reset clears the episode.
    env.reset(ground_truth=truth("Bo Chen", 10))
    assert env.calls == [] and env.results == []
    env.find_account(owner="Bo Chen")
    env.withdraw(account=9, amount=10.0)  # 10.0 is not 10: numbers compare as written
    assert env.get_reward() == 0.0 and env.verdict.reason == "wrong_args"
    loose = toolgym.trl.environment(bank_tools(), abs_tol=0.0)()
    loose.reset(ground_truth=truth("Bo Chen", 10))
    loose.find_account(owner="Bo Chen")
    loose.withdraw(account=9, amount=10.0)
    assert loose.get_reward() == 1.0
    # Order-free, and a list of dicts is a ground truth too.
    env.reset(ground_truth=json.loads(truth("Ann Lee", 40.5))[::-1])
    env.withdraw(account=7, amount=40.5)
    env.find_account(owner="Ann Lee")
    assert env.get_reward() == 1.0


def test_invalid_arguments_are_reported_and_the_handler_does_not_run():
    log = []
    env = toolgym.trl.environment(lambda: bank_tools(log))()
    env.reset(ground_truth=truth("Ann Lee", 40.5))
    out = json.loads(env.withdraw(account="7", amount=-1))
    assert out["name"] == "withdraw" and out["error"]["kind"] == "invalid_arguments"
    problems = {p["path"]: p["message"] for p in out["error"]["problems"]}
    assert problems == {"/account": '"7" is not of type "integer"', "/amount": "-1 is less than the minimum of 0"}
    assert log == [] and env.results[-1]["ok"] is False
    # A handler that raises is a tool error the model reads; the episode goes on.
    out = json.loads(env.find_account(owner="Nobody"))
    assert out["error"] == {"kind": "tool_error", "message": "ValueError: no account for Nobody"}
    # The calls as made count, invalid ones included.
    assert len(env.calls) == 2 and env.get_reward() == 0.0
    # Arguments that are not JSON (TRL's parser lets NaN through) run nothing and score 0.
    env.reset(ground_truth=truth("Ann Lee", 40.5))
    env.find_account(owner="Ann Lee")
    out = json.loads(env.withdraw(account=7, amount=float("nan")))
    assert out["error"]["kind"] == "invalid_arguments" and "NaN" in out["error"]["message"]
    env.withdraw(account=7, amount=40.5)
    v = env.verdict
    assert (v.reward, v.reason) == (0.0, "wrong_args") and "not JSON" in v.detail
    assert log == [40.5]
    # An argument named like the receiver is the model's: recorded and passed on like any
    # other (this handler does not take it: a tool error, not a crash of the method).
    out = json.loads(env.find_account(**{"owner": "Ann Lee", "self": 1}))
    assert out["error"]["kind"] == "tool_error" and "'self'" in out["error"]["message"], out
    assert env.calls[-1]["arguments"] == {"owner": "Ann Lee", "self": 1}


def test_a_tool_function_gives_each_episode_fresh_state():
    made = []

    def tools():
        state = {"balance": 100}

        def spend(amount):
            state["balance"] -= amount
            return dict(state)

        made.append(state)
        return [toolgym.Tool("spend", "Spends.", {"type": "object", "properties": {"amount": {"type": "integer"}},
                                                  "required": ["amount"]}, spend)]

    Env = toolgym.trl.environment(tools)
    env = Env()
    env.reset(ground_truth="[]")
    assert json.loads(env.spend(amount=30))["result"] == {"balance": 70}
    env.reset(ground_truth="[]")
    assert json.loads(env.spend(amount=30))["result"] == {"balance": 70}
    # Made for the probe that reads the schemas, the instance, then each reset.
    assert len(made) == 4

    def changing():
        changing.n = getattr(changing, "n", 0) + 1
        name = "spend" if changing.n < 3 else "spent"
        return [toolgym.Tool(name, "", {"type": "object", "properties": {}}, lambda: 0)]

    Env = toolgym.trl.environment(changing)
    env = Env()
    with pytest.raises(ValueError, match="other tools than at first"):
        env.reset(ground_truth="[]")

    # A description that changes (today's date, say) is no other tool.
    def dated():
        dated.n = getattr(dated, "n", 0) + 1
        return [toolgym.Tool("spend", f"day {dated.n}", {"type": "object", "properties": {}}, lambda: 0)]

    env = toolgym.trl.environment(dated)()
    for _ in range(3):
        env.reset(ground_truth="[]")
    assert json.loads(env.spend())["result"] == 0


def test_rows_without_a_readable_ground_truth_are_left_out_with_a_warning():
    env = toolgym.trl.environment(bank_tools(), column="answer")()
    env.reset(ground_truth=truth("Ann Lee", 1))  # not the configured column
    with pytest.warns(RuntimeWarning, match="no 'answer' column value"):
        assert env.get_reward() is None
    env.reset(answer="not json")
    with pytest.warns(RuntimeWarning, match="ground truth cannot be read"):
        assert env.get_reward() is None
    env.reset(answer="[]")
    assert env.get_reward() == 1.0  # no call was due, none was made
    env.find_account(owner="Ann Lee")
    assert env.get_reward() == 0.0


def test_tool_sets_trl_cannot_express_are_refused_clearly():
    def tool(name, props=None):
        return toolgym.Tool(name, "", {"type": "object", "properties": props or {}}, lambda **_: 0)

    for name in ("reset", "get_reward", "calls", "verdict", "_hidden"):
        with pytest.raises(ValueError, match=repr(name)):
            toolgym.trl.environment([tool(name)])
    with pytest.raises(ValueError, match="two tools are named 'f'"):
        toolgym.trl.environment([tool("f"), tool("f")])
    for param in ("from", "max-results", "self"):
        with pytest.raises(ValueError, match=f"parameter {param!r} is not a Python identifier"):
            toolgym.trl.environment([tool("f", {param: {"type": "string"}})])
    for param in ("maxReturns", "onRaises"):  # `name:` would read as a docstring section header
        with pytest.raises(ValueError, match=f"parameter {param!r} ends in a word transformers"):
            toolgym.trl.environment([tool("f", {param: {"type": "string"}})])
    # The parser is case-sensitive, and `Args:` ends nothing inside the block.
    ok = toolgym.trl.environment([tool("f", {p: {"type": "string"} for p in ("args", "kwargs", "returns", "myArgs")})])
    assert list(inspect.signature(ok().f).parameters) == ["args", "kwargs", "returns", "myArgs"]
    with pytest.raises(TypeError, match=r"tools\[0\] must be a toolgym.Tool"):
        toolgym.trl.environment([lambda: 0])
    with pytest.raises(ValueError, match=r'tools\[0\]: no "handler"'):
        toolgym.trl.environment([toolgym.synthetic_tasks(1)[0].tools[0]])  # a spec alone
    with pytest.raises(TypeError, match="tools must be a list"):
        toolgym.trl.environment("find_account")
    with pytest.raises(ValueError, match="abs_tol must be a finite number"):
        toolgym.trl.environment([tool("f")], abs_tol=-1)
    with pytest.raises(ValueError, match="must be a Python identifier"):
        toolgym.trl.environment([tool("f")], name="my env")


def test_match_calls():
    f1 = [{"name": "f", "arguments": {"x": 1}}]
    assert toolgym.match_calls(f1, json.dumps(f1)).ok
    assert toolgym.match_calls(f1, [{"name": "f", "arguments": {"x": 1.0}}]).reason == "wrong_args"
    assert toolgym.match_calls(f1, [{"name": "f", "arguments": {"x": 1.0}}], abs_tol=0.0).ok
    assert toolgym.match_calls(f1, [{"name": "g", "arguments": {"x": 1}}]).reason == "wrong_name"
    assert toolgym.match_calls(f1 * 2, f1).reason == "extra_call"
    assert toolgym.match_calls([], f1).reason == "missing_call"
    # OpenAI's form, as TRL's parser gives a completion's tool_calls (arguments as text).
    openai = [{"type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]
    assert toolgym.match_calls(openai, f1).ok
    assert toolgym.match_calls(json.dumps(openai), json.dumps(f1)).ok  # as JSON text alike
    assert toolgym.match_calls([{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}], f1).ok
    assert toolgym.match_calls([{"function": {"name": "g", "arguments": ""}}], [{"name": "g", "arguments": {}}]).ok
    with pytest.raises(ValueError, match="^calls: "):
        toolgym.match_calls([{"function": {"name": "f", "arguments": "{not json"}}], f1)
    with pytest.raises(ValueError, match="^calls: "):
        toolgym.match_calls([{"arguments": {}}], f1)
    with pytest.raises(ValueError, match="^ground_truth: "):
        toolgym.match_calls(f1, "[{")


def test_tool_call_runs_one_tool_as_an_env_does():
    t = toolgym.Tool("find_account", "Finds.", FIND, find_account)
    assert t.call({"owner": "Bo Chen"}) == {"name": "find_account", "result": {"account": 9}, "ok": True}
    bad = t.call({})
    assert bad["ok"] is False and bad["error"]["kind"] == "invalid_arguments"
    with pytest.raises(TypeError, match="arguments must be a dict"):
        t.call(["Bo Chen"])

    def interrupt(**_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        toolgym.Tool("i", "", {"type": "object"}, interrupt).call({})


def test_verl_schema_keeps_what_verl_keeps_and_describes_the_rest():
    spec = toolgym.Tool("withdraw", "Withdraws money.", WITHDRAW, lambda **_: 0).to_openai()
    got = toolgym.verl_tools.verl_schema(spec)
    assert got["type"] == "function" and got["function"]["name"] == "withdraw"
    assert got["function"]["description"] == "Withdraws money."
    params = got["function"]["parameters"]
    assert params["required"] == ["account", "amount"]
    props = params["properties"]
    # verl 0.9's property model: type, description, enum. Nothing else survives it.
    assert all(set(p) <= {"type", "description", "enum"} for p in props.values()), props
    assert props["account"] == {"type": "integer", "description": "The account number."}
    assert props["currency"] == {"type": "string", "description": "Currency.", "enum": ["EUR", "USD"]}
    assert props["when"] == {"type": ["string", "null"], "description": "Date."}
    assert props["amount"]["description"] == 'How much. Returns: nothing JSON Schema: {"type":"number","minimum":0}'
    assert props["tags"]["description"] == 'Labels. JSON Schema: {"type":"array","items":{"type":"string"}}'
    # verl requires a type: taken from anyOf branches or enum values, else every JSON type.
    odd = {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                                            "b": {"enum": [1, "x"]}, "c": {}}}
    spec = toolgym.Tool("odd", "", odd, lambda **_: 0).to_openai()
    props = toolgym.verl_tools.verl_schema(spec)["function"]["parameters"]["properties"]
    assert props["a"]["type"] == ["string", "integer"] and props["a"]["description"].startswith("JSON Schema: ")
    assert props["b"] == {"type": ["integer", "string"], "enum": [1, "x"], "description": 'JSON Schema: {"enum":[1,"x"]}'}
    assert props["c"]["type"] == ["string", "number", "integer", "boolean", "array", "object", "null"]


def test_verl_register_hands_verl_functions_that_give_toolgym_messages(monkeypatch):
    registered = {}

    def function_tool(name, schema):  # verl.tools.function_tool.function_tool's contract
        def decorator(fn):
            existing = stub.FUNCTION_TOOL_REGISTRY.get(name)
            if existing is not None and existing.fn is not fn:
                raise ValueError(f"Function tool {name!r} is already registered")
            stub.FUNCTION_TOOL_REGISTRY[name] = types.SimpleNamespace(fn=fn)
            registered[name] = (fn, schema)
            return fn

        return decorator

    stub = types.ModuleType("verl.tools.function_tool")
    stub.function_tool = function_tool
    stub.FUNCTION_TOOL_REGISTRY = {}
    for name, module in (("verl", types.ModuleType("verl")), ("verl.tools", types.ModuleType("verl.tools")),
                         ("verl.tools.function_tool", stub)):
        monkeypatch.setitem(sys.modules, name, module)
    assert toolgym.verl_tools.register(bank_tools()) == ["find_account", "withdraw"]
    fn, schema = registered["find_account"]
    assert schema == toolgym.verl_tools.verl_schema(toolgym.Tool("find_account", "Finds a customer's account.",
                                                                 FIND, find_account).to_openai())
    assert json.loads(fn(owner="Ann Lee")) == {"name": "find_account", "result": {"account": 7}}
    assert json.loads(fn(owner="Nobody"))["error"]["kind"] == "tool_error"
    withdraw = registered["withdraw"][0]
    assert json.loads(withdraw(account=7))["error"]["kind"] == "invalid_arguments"  # amount is required
    assert json.loads(withdraw(account=7, amount=float("inf")))["error"]["kind"] == "invalid_arguments"
    # A name registered before (even by the same tools: verl's loader takes only what is
    # registered while it runs the file, so they would be missing), or two tools of one
    # name, are refused clearly.
    tools = [toolgym.Tool("t", "", {"type": "object"}, lambda **_: 1)]
    assert toolgym.verl_tools.register(tools) == ["t"]
    with pytest.raises(ValueError, match="'t' is registered already .*register each tool once"):
        toolgym.verl_tools.register(tools)
    with pytest.raises(ValueError, match="'find_account' is registered already"):
        toolgym.verl_tools.register(bank_tools())
    with pytest.raises(ValueError, match="two tools are named 'u'"):
        toolgym.verl_tools.register([toolgym.Tool("u", "", {"type": "object"}, lambda **_: 1)] * 2)
    assert "u" not in stub.FUNCTION_TOOL_REGISTRY  # nothing of a refused list is registered


def test_verl_rows_list_each_tasks_tools_for_tool_selection():
    tasks = toolgym.synthetic_tasks(3, seed=2)
    plain = toolgym.verl.rows(tasks)
    assert all("tool_selection" not in r["extra_info"] for r in plain)
    selected = toolgym.verl.rows(tasks, template=None, tool_selection=True)
    assert [r["extra_info"]["tool_selection"] for r in selected] == [[t["name"] for t in task.tools] for task in tasks]
    # verl reads an empty selection as every tool: a task with none is refused, named.
    bare = toolgym.Task("Hello.", ground_truth=[], id="chat-1")
    assert toolgym.verl.rows([bare])[0]["extra_info"]["index"] == 0
    with pytest.raises(ValueError, match=r"1 task\(s\) list no tools \(tasks\[3\] \(id 'chat-1'\)\)"):
        toolgym.verl.rows(list(tasks) + [bare], tool_selection=True)


def test_schemas_hints_cannot_say_are_written_for_the_model():
    props = {
        "items_any": {"type": "array"},  # a bare list would render as an object
        "ratio": {"type": "number", "enum": [1, 2]},  # Literal[1, 2] renders as integer
        "titled": {"type": "string", "title": "Titled", "description": "Has a title."},
        "speed": {"type": "string", "description": "How fast (choices: fast or slow)"},
        "total": {"type": "integer", "description": "See totalReturns: the sum. Raises: never"},
        "to": {"$ref": "#/$defs/Addr"},
    }
    params = {"type": "object", "properties": props, "$defs": {"Addr": {"type": "object", "required": ["zip"],
                                                                          "properties": {"zip": {"type": "string"}}}}}
    env = toolgym.trl.environment([toolgym.Tool("ship", "Ships.", params, lambda **_: 0)])()
    hints = typing.get_type_hints(env.ship)
    assert hints["items_any"] == typing.List[typing.Any] and hints["ratio"] == typing.Literal[1, 2]
    doc = inspect.getdoc(env.ship)
    head, args = doc.split("\n\nArgs:\n")
    # The parameters object's $defs (where "to" points) are in the tool's description.
    assert head == 'Ships. Parameters JSON Schema: {"$defs":{"Addr":{"type":"object","required":["zip"],' \
                   '"properties":{"zip":{"type":"string"}}}}}'
    lines = dict(line.strip().split(": ", 1) for line in args.splitlines())
    assert lines["items_any"] == "No description given."
    assert lines["ratio"] == 'JSON Schema: {"type":"number","enum":[1,2]}'
    assert lines["titled"] == "Has a title."  # a title only annotates
    # Nothing transformers would parse as a header or an enum: `Returns :`, `(choices :`.
    assert lines["speed"] == "How fast (choices : fast or slow)"
    assert lines["total"] == "See totalReturns : the sum. Raises : never"
    assert lines["to"] == 'JSON Schema: {"$ref":"#/$defs/Addr"}'
    spec = toolgym.Tool("ship", "Ships.", params, lambda **_: 0).to_openai()
    verl = toolgym.verl_tools.verl_schema(spec)["function"]
    assert verl["description"] == head
    assert verl["parameters"]["properties"]["titled"] == {"type": "string", "description": "Has a title."}
    odd = toolgym.Tool("odd", "", {"type": "object", "properties": {"never": False}}, lambda **_: 0).to_openai()
    never = toolgym.verl_tools.verl_schema(odd)["function"]["parameters"]["properties"]["never"]
    assert never["description"] == "JSON Schema: false"  # not `{}`, which would read as anything


def test_json_schema_notes_read_back_as_the_schema_checked():
    props = {
        "code": {"type": "string", "pattern": "^[A-Z]{2}  [0-9]+$"},  # two spaces: kept
        "nested": {"type": "object", "properties": {"r": {"type": "string", "description": "Returns: x (choices: [1])"}}},
    }
    params = {"type": "object", "properties": props, "required": ["code", "hidden"]}
    env = toolgym.trl.environment([toolgym.Tool("f", "Does f.", params, lambda **_: 0)])()
    head, args = inspect.getdoc(env.f).split("\n\nArgs:\n")
    lines = dict(line.strip().split(": ", 1) for line in args.splitlines())
    for name in props:
        note = lines[name].split("JSON Schema: ", 1)[1]
        assert "Returns:" not in note and "(choices:" not in note  # nothing the docstring parser reads
        assert json.loads(note) == {k: v for k, v in props[name].items() if k != "description"}
    # A required name the properties do not list is told in the tool's description.
    assert json.loads(head.split("Parameters JSON Schema: ", 1)[1]) == {"required": ["hidden"]}


def _verl_tool_stubs(monkeypatch):
    """verl.tools.base_tool and verl.tools.schemas as far as EpisodeTool uses them: BaseTool's
    constructor contract (the schema given, else get_openai_tool_schema(); the name from it) and
    ToolResponse(text=...). scripts/integration/engines_check.py runs the real ones."""

    class Function(types.SimpleNamespace):
        pass

    class Schema:
        def __init__(self, d):
            self.raw = d
            self.function = Function(name=d["function"]["name"])

        @classmethod
        def model_validate(cls, d):
            return cls(d)

    class BaseTool:
        def __init__(self, config, tool_schema):
            self.config = config
            self.tool_schema = tool_schema or self.get_openai_tool_schema()
            self.name = self.tool_schema.function.name

        def get_openai_tool_schema(self):
            return self.tool_schema

    base = types.ModuleType("verl.tools.base_tool")
    base.BaseTool = BaseTool
    schemas = types.ModuleType("verl.tools.schemas")
    schemas.OpenAIFunctionToolSchema = Schema
    schemas.ToolResponse = lambda text=None: types.SimpleNamespace(text=text)
    for name, module in (("verl", types.ModuleType("verl")), ("verl.tools", types.ModuleType("verl.tools")),
                         ("verl.tools.base_tool", base), ("verl.tools.schemas", schemas)):
        monkeypatch.setitem(sys.modules, name, module)
    return Schema


def stateful_bank(balance=100.0, log=None):
    """An episode-tools function: each call returns tools sharing one fresh balance."""
    state = {"balance": float(balance)}

    def withdraw(amount):
        if amount == 30:
            # Slower than the call after it: run out of order, the
            # balances would say so.
            time.sleep(0.05)
        if amount > state["balance"]:
            raise ValueError("insufficient funds")
        state["balance"] -= amount
        if log is not None:
            log.append(amount)
        return {"balance": state["balance"]}

    def balance_of():
        return {"balance": state["balance"]}

    return [
        toolgym.Tool("withdraw", "Withdraws money.",
                     {"type": "object", "properties": {"amount": {"type": "number", "minimum": 0}},
                      "required": ["amount"]}, withdraw),
        toolgym.Tool("balance", "The balance.", {"type": "object", "properties": {}}, balance_of),
    ]


def test_verl_episode_tools_keep_state_per_trajectory(monkeypatch, tmp_path):
    import asyncio

    Schema = _verl_tool_stubs(monkeypatch)
    EpisodeTool = toolgym.verl_tools._episode_tool_class()
    ref = f"{__name__}:stateful_bank"
    # The config file verl reads: one entry per tool, schemas as verl keeps them.
    path = tmp_path / "tools.yaml"
    assert toolgym.verl_tools.write_tool_config(str(path), ref) == ["withdraw", "balance"]
    config = json.loads(path.read_text())
    assert [e["class_name"] for e in config["tools"]] == ["toolgym.verl_tools.EpisodeTool"] * 2
    assert config["tools"][0]["config"] == {"type": "native", "tools": ref, "name": "withdraw"}
    assert config["tools"][0]["tool_schema"] == toolgym.verl_tools.verl_schema(stateful_bank()[0].to_openai())
    tools = {e["config"]["name"]: EpisodeTool(e["config"], Schema.model_validate(e["tool_schema"]))
             for e in config["tools"]}
    # Without a schema in the config, the tool's own (as verl keeps it).
    bare = EpisodeTool({"type": "native", "tools": ref, "name": "balance"}, None)
    assert bare.name == "balance" and bare.tool_schema.raw == config["tools"][1]["tool_schema"]

    def trajectory(**create_kwargs):
        tools_kwargs = {"toolgym": {"create_kwargs": create_kwargs}} if create_kwargs else {}
        return types.SimpleNamespace(tools_kwargs=tools_kwargs, extra_fields={})

    async def call(agent_data, name, arguments):
        response, reward, metrics = await tools[name].execute("id", arguments, agent_data=agent_data)
        assert (reward, metrics) == (0.0, {})
        return json.loads(response.text)

    async def episodes():
        a, b, c = trajectory(), trajectory(), trajectory(balance=5)
        # One reply's parallel calls (gathered, as verl's loop gathers them) run in their order.
        first = await asyncio.gather(call(a, "withdraw", {"amount": 30}), call(a, "withdraw", {"amount": 50}),
                                     call(b, "withdraw", {"amount": 10}))
        later = await asyncio.gather(call(a, "balance", {}), call(b, "balance", {}), call(c, "balance", {}))
        broke = await call(c, "withdraw", {"amount": 6})
        invalid = await call(a, "withdraw", {"amount": -1})
        # Arguments that are not an object (verl passes what the call's JSON held).
        listed = await call(a, "withdraw", [["amount", 5]])
        assert listed["error"]["kind"] == "invalid_arguments", listed
        assert (await call(a, "balance", {}))["result"] == {"balance": 20.0}  # nothing withdrawn
        return first, later, broke, invalid, a

    with pytest.warns(UserWarning, match='handler of tool "withdraw" raised ValueError'):
        first, later, broke, invalid, a = asyncio.run(episodes())
    assert [r["result"]["balance"] for r in first] == [70.0, 20.0, 90.0]
    assert [r["result"]["balance"] for r in later] == [20.0, 90.0, 5.0]  # each trajectory its own state
    assert broke["error"] == {"kind": "tool_error", "message": "ValueError: insufficient funds"}
    assert invalid["error"]["kind"] == "invalid_arguments"  # checked against the schema; no handler ran
    assert a.extra_fields == {}  # the state is not put into verl's batch


def test_verl_episode_tools_refuse_what_cannot_work(monkeypatch, tmp_path):
    import asyncio

    _verl_tool_stubs(monkeypatch)
    EpisodeTool = toolgym.verl_tools._episode_tool_class()
    ref = f"{__name__}:stateful_bank"
    with pytest.raises(ValueError, match="expected 'package.module:function'"):
        EpisodeTool({"type": "native", "tools": "stateful_bank", "name": "withdraw"}, None)
    with pytest.raises(ValueError, match="has no function 'nothing'"):
        EpisodeTool({"type": "native", "tools": f"{__name__}:nothing", "name": "withdraw"}, None)
    with pytest.raises(ValueError, match=r"returns no tool named 'deposit' \(it returns \['balance', 'withdraw'\]\)"):
        EpisodeTool({"type": "native", "tools": ref, "name": "deposit"}, None)
    with pytest.raises(ValueError, match="names no tool"):
        EpisodeTool({"type": "native", "tools": ref}, None)
    # A function in a file, loaded as verl loads a function_tool_path.
    source = tmp_path / "shop.py"
    source.write_text("import toolgym\n"
                      "def shop(**kw):\n"
                      "    if kw.get('fail'):\n"
                      "        raise RuntimeError('no shop today')\n"
                      "    return [toolgym.Tool('buy', '', {'type': 'object'}, lambda **_: {'ok': 1})] * kw.get('n', 1)\n")
    buy = EpisodeTool({"type": "native", "tools": f"{source}:shop", "name": "buy"}, None)
    # The file named another way (through a link) is the same module: one state.
    link = tmp_path / "link.py"
    link.symlink_to(source)
    assert toolgym.verl_tools._factory(f"{link}:shop") is toolgym.verl_tools._factory(f"{source}:shop")
    with pytest.raises(ValueError, match="shop: two tools are named 'buy'"):
        toolgym.verl_tools._episode_tools(toolgym.verl_tools._factory(f"{source}:shop"), {"n": 2}, "shop")

    def run(agent_data):
        return asyncio.run(buy.execute("id", {}, agent_data=agent_data))

    assert json.loads(run(types.SimpleNamespace(tools_kwargs={}))[0].text) == {"name": "buy", "result": {"ok": 1}}
    # A function that fails fails the call (verl shows the model the error; the run goes on).
    with pytest.raises(RuntimeError, match="no shop today"):
        run(types.SimpleNamespace(tools_kwargs={"toolgym": {"create_kwargs": {"fail": True}}}))
    with pytest.raises(TypeError, match="must be a mapping"):
        run(types.SimpleNamespace(tools_kwargs={"toolgym": {"create_kwargs": [1]}}))
    with pytest.raises(RuntimeError, match="without agent_data"):
        asyncio.run(buy.execute("id", {}))


def slow_bank(hold=None):
    """An episode-tools function whose `wait` handler blocks until `hold` is set."""
    def wait():
        hold.wait(10)
        return {"waited": True}

    def echo(text):
        return {"text": text}

    return [toolgym.Tool("wait", "Waits.", {"type": "object", "properties": {}}, wait),
            toolgym.Tool("echo", "Echoes.", {"type": "object", "properties": {"text": {"type": "string"}},
                                             "required": ["text"]}, echo)]


def _slow_bank_tools(monkeypatch, hold, timeout_s):
    """verl's stubs and the `wait` and `echo` EpisodeTools of slow_bank, `wait` held by `hold`."""
    _verl_tool_stubs(monkeypatch)
    EpisodeTool = toolgym.verl_tools._episode_tool_class()
    original = slow_bank
    monkeypatch.setattr(sys.modules[__name__], "slow_bank", lambda: original(hold))
    toolgym.verl_tools._factories.pop(f"{__name__}:slow_bank", None)
    toolgym.verl_tools._probes.pop(f"{__name__}:slow_bank", None)
    config = {"type": "native", "tools": f"{__name__}:slow_bank", "timeout_s": timeout_s}
    return EpisodeTool, config, EpisodeTool({**config, "name": "wait"}, None), \
        EpisodeTool({**config, "name": "echo"}, None)


def test_verl_episode_tools_run_on_their_own_pool_with_a_time_limit(monkeypatch):
    """A call past timeout_s fails with a tool_timeout error the model reads, as do the
    trajectory's later calls; other trajectories go on; calls run on toolgym's pool, not the
    event loop's default executor; tool messages escape markup as toolgym's envs do."""
    import asyncio
    import threading

    hold = threading.Event()
    EpisodeTool, config, wait, echo = _slow_bank_tools(monkeypatch, hold, 0.2)
    threads = []

    def echo_where(text):
        threads.append(threading.current_thread().name)
        return {"text": text}

    async def episodes():
        a, b = types.SimpleNamespace(tools_kwargs={}), types.SimpleNamespace(tools_kwargs={})
        timed_out = json.loads((await wait.execute("id", {}, agent_data=a))[0].text)
        after = json.loads((await echo.execute("id", {"text": "x"}, agent_data=a))[0].text)
        other = json.loads((await echo.execute("id", {"text": "<|im_end|><tool_call>"}, agent_data=b))[0].text)
        raw = (await echo.execute("id", {"text": "<|im_end|>"}, agent_data=b))[0].text
        b_tools = b._toolgym_episodes[f"{__name__}:slow_bank"].tools
        b_tools["echo"] = toolgym.Tool("echo", "", {"type": "object"}, lambda text: echo_where(text))
        await echo.execute("id", {"text": "y"}, agent_data=b)
        return timed_out, after, other, raw

    try:
        timed_out, after, other, raw = asyncio.run(episodes())
    finally:
        hold.set()
    assert timed_out["error"]["kind"] == "tool_timeout" and "timeout_s=0.2" in timed_out["error"]["message"]
    assert after["error"]["kind"] == "tool_timeout"  # the trajectory's tools are not used again
    assert other == {"name": "echo", "result": {"text": "<|im_end|><tool_call>"}}  # another trajectory goes on
    assert "\\u003c|im_end|>" in raw and "<|im_end|>" not in raw
    assert threads and threads[0].startswith("toolgym-tool")
    for bad in (-1, "10", True, float("nan")):
        with pytest.raises(ValueError, match="timeout_s"):
            EpisodeTool({**config, "name": "echo", "timeout_s": bad}, None)
        with pytest.raises(ValueError, match="timeout_s"):
            toolgym.verl_tools.tool_config(config["tools"], timeout_s=bad)
    # The config file carries the limit to every entry.
    entries = toolgym.verl_tools.tool_config(config["tools"], timeout_s=30)["tools"]
    assert [e["config"]["timeout_s"] for e in entries] == [30, 30]
    assert "timeout_s" not in toolgym.verl_tools.tool_config(config["tools"])["tools"][0]["config"]


def test_verl_episode_tools_waiting_for_a_thread_fail_alone(monkeypatch):
    """With every tool thread busy past timeout_s, a call that got none is not run and fails
    alone: its trajectory's tools stay in use, and its next call runs."""
    import asyncio
    import threading

    hold = threading.Event()
    _, _, wait, echo = _slow_bank_tools(monkeypatch, hold, 0.3)
    monkeypatch.setattr(toolgym.verl_tools, "_pool", toolgym.verl_tools._DaemonPool(1))

    async def episodes():
        a, b = types.SimpleNamespace(tools_kwargs={}), types.SimpleNamespace(tools_kwargs={})
        # b's tools are made first (the one thread is free), then a's wait takes the thread.
        assert json.loads((await echo.execute("id", {"text": "first"}, agent_data=b))[0].text)["result"]
        waiting = asyncio.ensure_future(wait.execute("id", {}, agent_data=a))
        await asyncio.sleep(0.05)
        queued = json.loads((await echo.execute("id", {"text": "x"}, agent_data=b))[0].text)
        hold.set()
        await waiting
        again = json.loads((await echo.execute("id", {"text": "y"}, agent_data=b))[0].text)
        return queued, again

    try:
        queued, again = asyncio.run(episodes())
    finally:
        hold.set()
    assert queued["error"]["kind"] == "tool_timeout" and "free tool thread" in queued["error"]["message"]
    assert "not used again" not in queued["error"]["message"]
    assert again == {"name": "echo", "result": {"text": "y"}}


def test_a_tool_call_that_never_returns_does_not_keep_the_process_from_exiting():
    """The stuck call times out, and the process still exits (a ThreadPoolExecutor's thread
    would be joined at exit, for ever); calls before it ran and returned on the pool."""
    code = (
        "import asyncio, threading, toolgym.verl_tools as vt\n"
        "async def main():\n"
        "    print(await vt._in_pool(5, lambda x: x + 1, 1))\n"
        "    try:\n"
        "        await vt._in_pool(0.1, threading.Event().wait)\n"
        "    except vt._Late as e:\n"
        "        print('late', e.started)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.split("\n")) == (0, ["2", "late True", ""]), done.stderr


def described_bank():
    """A tool whose description holds what YAML or OmegaConf would read otherwise."""
    return [toolgym.Tool("pay", "Pays ${AMOUNT} (\\${literal}) \x85 next\u2028line \x7f é", {"type": "object"},
                         lambda **_: {"ok": True})]


def test_the_verl_tool_config_escapes_what_omegaconf_would_read_otherwise():
    text = toolgym.verl_tools.tool_config_text(f"{__name__}:described_bank")
    # OmegaConf would resolve ${AMOUNT} (an error) and drop a backslash before ${;
    # YAML refuses DEL and C1 controls and folds NEL and U+2028 as line breaks.
    assert "\\\\${AMOUNT}" in text and "(" + "\\" * 6 + "${literal})" in text, text
    assert all(c not in text for c in "\x7f\x85\u2028") and "\\u0085" in text and "\\u2028" in text
    assert "é" in text  # other text is written as it is
    try:
        from omegaconf import OmegaConf
    except ImportError:
        return  # scripts/integration/engines_check.py reads it with verl's loader
    back = OmegaConf.to_container(OmegaConf.create(text), resolve=True)
    assert back == toolgym.verl_tools.tool_config(f"{__name__}:described_bank")
