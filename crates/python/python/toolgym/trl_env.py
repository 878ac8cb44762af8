"""toolgym tools as a TRL environment: ``GRPOTrainer(environment_factory=...)``.

::

    import toolgym, toolgym.trl

    def find_account(owner):
        return {"account": BANK[owner]}

    Bank = toolgym.trl.environment([
        toolgym.Tool("find_account", "Finds a customer's account.",
                     {"type": "object", "properties": {"owner": {"type": "string"}},
                      "required": ["owner"]},
                     find_account),
        # ... the bank's other tools
    ], name="Bank")  # the name it is bound to: the class then pickles (TRL's async trainer does)
    trainer = GRPOTrainer(model=..., environment_factory=Bank, train_dataset=...,
                          reward_funcs=[toolgym.trl.reward_function("binary", turn="all")])

TRL keeps a pool of instances (one per rollout in flight), calls
``reset(**row)`` before each rollout, and
exposes the class's public methods to the model as tools: here one method
per toolgym tool. A call's arguments are checked against the tool's JSON
Schema in Rust before its handler runs, exactly as toolgym's envs check
them, and the model reads the same tool message (the result, or the
problems). ``get_reward()`` is 1.0 when the episode's calls, as the tools
received them, match the row's ground truth order-free (the multi-turn
envs' ``calls-match``), else 0.0.

TRL renders a method's tool schema for the chat template from its Python
signature and docstring (``transformers.utils.get_json_schema``). Each
method gets a signature and a Google-style docstring built from the tool's
JSON Schema; what type hints cannot say (an object's properties, bounds,
patterns, defaults) is written into the parameter's description as JSON
Schema, so the model still reads it.
"""

from __future__ import annotations

import inspect
import keyword
import re
import sys
import threading
import warnings
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

from toolgym import _toolgym
from toolgym._tools import ANNOTATIONS, parameters_note, run, schema_note, tool_list

__all__ = ["ToolEnvironment", "environment"]

#: Method names TRL gives a meaning (``reset``, ``get_reward``) or that the
#: environment's own attributes use: no tool may take them.
RESERVED = frozenset({"reset", "get_reward", "calls", "results", "verdict", "ground_truth"})

#: An argument's description when its schema has none (transformers'
#: docstring parser needs one for every argument).
NO_DESCRIPTION = "No description given."

_SIMPLE = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None)}
_LITERALS = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
# What transformers' docstring parser reads as a section header anywhere
# in the text (``Returns:`` even inside ``totalReturns:``; its regexes are
# case-sensitive), or as an enum (a trailing ``(choices: …)``, parsed as
# JSON; case-insensitive).
_PARSED = re.compile(r"(Args|Returns|Raises|(?i:\(choices)):")
# A parameter line is `name: text`: a name ending so ends the Args block.
_ENDS_ARGS = ("Returns", "Raises")


def _hint(schema: Any) -> Tuple[Any, bool]:
    """The Python type hint for a JSON Schema and whether it says all the
    schema says (its annotations aside: description, title, comment)."""
    if not isinstance(schema, Mapping):
        return Any, schema is True
    rest = set(schema) - ANNOTATIONS
    enum = schema.get("enum")
    kind = schema.get("type")
    if isinstance(enum, list) and enum and all(type(v) in _LITERALS for v in enum):
        # transformers renders the type Literal's values have: exact only
        # where that is the declared type.
        inferred = {_LITERALS[type(v)] for v in enum}
        same = kind is None or inferred == ({kind} if isinstance(kind, str) else set(kind))
        return Literal[tuple(enum)], rest <= {"enum", "type"} and same
    if isinstance(kind, list) and kind:
        hints = [_hint({"type": k}) for k in kind]
        return Union[tuple(h for h, _ in hints)], rest == {"type"} and all(e for _, e in hints)
    if kind in _SIMPLE:
        return _SIMPLE[kind], rest == {"type"}
    if kind == "array":
        # A bare `list` would render as an object.
        item, exact = _hint(schema["items"]) if "items" in schema else (Any, True)
        return List[item], exact and rest <= {"type", "items"}
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and "properties" not in schema:
            value, exact = _hint(extra)
            return Dict[str, value], exact and rest == {"type", "additionalProperties"}
        return dict, rest == {"type"}
    if "anyOf" in schema and isinstance(schema["anyOf"], list) and schema["anyOf"]:
        hints = [_hint(s) for s in schema["anyOf"]]
        return Union[tuple(h for h, _ in hints)], rest == {"anyOf"} and all(e for _, e in hints)
    return Any, not rest


def _one_line(text: Any) -> str:
    """Free text on one line, with nothing transformers' docstring parser
    would read as a section header or an enum."""
    text = " ".join(str(text or "").split())
    return _PARSED.sub(lambda m: f"{m.group(1)} :", text)


def _json_note(note: str) -> str:
    """A JSON Schema note made safe from the docstring parser without
    changing the schema it reads as: the colon after a header word is
    written ``\\u003a`` (such words occur only inside JSON strings, where
    the escape means the same), and nothing else is touched."""
    return _PARSED.sub(lambda m: f"{m.group(1)}\\u003a", note)


def _method(tool: str, spec: Mapping[str, Any]) -> Callable[..., str]:
    """The method TRL exposes for one tool: it hands its keyword arguments
    to :meth:`ToolEnvironment._call`, and carries a signature and a
    docstring made from the tool's schema."""
    params = spec.get("parameters") or {}
    properties = params.get("properties") or {}
    required = set(params.get("required") or [])
    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: Dict[str, Any] = {}
    lines = []
    for name, schema in properties.items():
        if not name.isidentifier() or keyword.iskeyword(name) or name == "self":
            raise ValueError(
                f"tool {tool!r}: parameter {name!r} is not a Python identifier (or is self); TRL renders a "
                "tool from a Python signature, which cannot name it (use toolgym's own trainer or verl for "
                "this tool)"
            )
        if name.endswith(_ENDS_ARGS):
            raise ValueError(
                f"tool {tool!r}: parameter {name!r} ends in a word transformers' docstring parser reads as a "
                "section header, so TRL cannot render it (use toolgym's own trainer or verl for this tool)"
            )
        hint, exact = _hint(schema)
        annotations[name] = hint
        default = inspect.Parameter.empty if name in required else None
        signature.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint))
        text = _one_line(schema.get("description") if isinstance(schema, Mapping) else "")
        if not exact:
            text = f"{text} {_json_note(schema_note(schema))}".strip()
        # transformers needs a description for every argument.
        lines.append(f"    {name}: {text or NO_DESCRIPTION}")
    doc = " ".join(filter(None, [_one_line(spec.get("description")), _json_note(parameters_note(params))])) or tool
    if lines:
        doc += "\n\nArgs:\n" + "\n".join(lines)

    # `self` positional-only: a model's argument named "self" reaches the
    # schema check (and is refused there or passed on) instead of raising.
    def method(self: "ToolEnvironment", /, **arguments: Any) -> str:
        return self._call(tool, arguments)

    method.__name__ = method.__qualname__ = tool
    method.__doc__ = doc
    # No return annotation: transformers would render it as the tool's "return".
    method.__annotations__ = annotations
    method.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    return method


def _specs(tools: List[Any]) -> List[Dict[str, Any]]:
    return [t.to_openai()["function"] for t in tools]


class ToolEnvironment:
    """The base of the classes :func:`environment` makes: TRL pools
    instances and resets one before each rollout. Its public methods are the tools (TRL
    exposes every public function of the class); what it records is read
    through properties, which TRL does not expose.

    - ``calls``: the episode's calls as the tools received them
      (``{"name", "arguments"}``), invalid ones included;
    - ``results``: each call's result as toolgym's envs report it
      (``{"name", "result", "ok"}`` or ``{"name", "error", "ok"}``);
    - ``verdict``: the episode's calls against the row's ground truth (a
      ``toolgym.Verdict``), or ``None`` when the row has none.
    """

    _source: Any = None  # the tools, or a function returning fresh ones
    _specs: List[Dict[str, Any]] = []
    _column = "ground_truth"
    _tolerance: Dict[str, Optional[float]] = {}

    def __init__(self) -> None:
        self._tools: Dict[str, Any] = {}
        self._calls: List[Dict[str, Any]] = []
        self._results: List[Dict[str, Any]] = []
        self._truth: Any = None
        self._unreadable: Optional[str] = None
        # No episode before the first reset: TRL's tool discovery
        # (`inspect.getmembers` on a fresh instance) reads every property,
        # `verdict` included, which must not warn then.
        self._started = False
        self._load_tools()

    def _load_tools(self) -> None:
        source = type(self)._source
        if callable(source):
            tools = tool_list(source())
            # Names and parameters decide what a call may be; a description
            # that changes (a date, a count) is only not shown anew.
            shapes = [(f["name"], f["parameters"]) for f in _specs(tools)]
            if shapes != [(f["name"], f["parameters"]) for f in type(self)._specs]:
                raise ValueError(
                    f"{type(self).__name__}: the tool function returned other tools than at first "
                    "(names or parameter schemas changed); TRL renders the tools once, so they must "
                    "stay the same"
                )
        else:
            tools = source
        self._tools = {t.name: t for t in tools}

    def reset(self, **row: Any) -> None:
        """Starts an episode for a dataset row (TRL passes its columns):
        the calls are cleared, tools made by a function are made afresh,
        and the ground truth is read from the row's column. Returns
        ``None``: nothing is added to the prompt."""
        if callable(type(self)._source):
            self._load_tools()
        self._calls, self._results, self._unreadable = [], [], None
        self._truth = row.get(type(self)._column)
        self._started = True
        return None

    def _call(self, tool: str, arguments: Dict[str, Any]) -> str:
        """Runs one call the model made and records it; the text returned
        is the tool message TRL gives the model."""
        self._calls.append({"name": tool, "arguments": arguments})
        result, text, unreadable = run(self._tools[tool], arguments)
        if unreadable is not None:
            self._unreadable = self._unreadable or f"{tool}: {unreadable}"
        self._results.append(result)
        return text

    @property
    def calls(self) -> List[Dict[str, Any]]:
        """The episode's calls so far."""
        return list(self._calls)

    @property
    def results(self) -> List[Dict[str, Any]]:
        """Each call's result, with ``ok``."""
        return list(self._results)

    @property
    def ground_truth(self) -> Any:
        """The row's ground truth, as TRL passed it."""
        return self._truth

    @property
    def verdict(self) -> Optional[Any]:
        """The episode's calls against the ground truth, or ``None`` when
        the row has none or it cannot be read (said in a warning)."""
        if self._truth is None:
            if not self._started:
                return None  # no episode yet (TRL reading the instance's members)
            _warn("no ground truth", f"{type(self).__name__}: the row has no {type(self)._column!r} column "
                  "value; the episode is not scored (None, which TRL sums as 0)")
            return None
        # With unreadable arguments the calls cannot match; the ground
        # truth is still read, so a row that has none readable gives None.
        calls = [] if self._unreadable else self._calls
        try:
            verdict = _toolgym.match_calls(calls, self._truth, **type(self)._tolerance)
        except (TypeError, ValueError) as e:
            _warn("unreadable ground truth",
                  f"{type(self).__name__}: the ground truth cannot be read ({e}); the episode is not scored")
            return None
        if self._unreadable is not None:
            return _toolgym.Verdict(0.0, "wrong_args", f"a call's arguments are not JSON: {self._unreadable}")
        return verdict


def _get_reward(self: ToolEnvironment) -> Optional[float]:
    """1.0 when the episode's calls match the row's ground truth
    (order-free), else 0.0; ``None`` when the row has no readable ground
    truth (TRL leaves it out)."""
    verdict = self.verdict
    return None if verdict is None else verdict.reward


_warned: Dict[str, int] = {}
_warned_lock = threading.Lock()


def _warn(kind: str, text: str) -> None:
    """Warns about an episode of a ``kind`` of problem with a running
    count of that kind in the text (so Python's filter does not swallow
    the repeats as one), for the first 10 and then every 100th. Counted
    under a lock: engines score episodes on several threads."""
    with _warned_lock:
        n = _warned[kind] = _warned.get(kind, 0) + 1
    if n <= 10 or n % 100 == 0:
        warnings.warn(f"{text} ({kind}: {n} episodes so far)", RuntimeWarning, stacklevel=3)


def environment(
    tools: Union[Sequence[Any], Callable[[], Sequence[Any]]],
    *,
    reward: bool = True,
    column: str = "ground_truth",
    abs_tol: Optional[float] = None,
    rel_tol: Optional[float] = None,
    name: str = "ToolgymEnvironment",
    module: Optional[str] = None,
) -> type:
    """A :class:`ToolEnvironment` class for ``GRPOTrainer(environment_factory=...)``.

    ``tools``: ``toolgym.Tool``s (or dicts with a ``handler``, as
    ``MultiTurnEnv`` takes), or a function returning them, called for each
    instance and at every ``reset`` so handlers can keep per-episode state
    in a closure (the names and parameter schemas must stay the same; descriptions
    may change, but TRL shows the first). ``reward``:
    define ``get_reward`` (TRL then logs it under ``name`` as a reward with
    weight 1; TRL reserves that name from huggingface/trl pull request
    6238 on, and an older TRL would list it to the model as a tool: pass
    ``False`` there); with ``False`` only ``reward_funcs`` score. ``column``: the
    dataset column holding the ground truth (calls as JSON text, as
    ``to_dataset`` writes them). ``abs_tol`` / ``rel_tol``: compare numbers
    with tolerance (else as written: ``1`` is not ``1.0``).

    The class belongs to the caller's module (``module``, as
    ``collections.namedtuple`` takes it, for a caller elsewhere): assigned
    there at module level under ``name`` (``Bank = environment(...,
    name="Bank")``), the class pickles, as TRL's ``AsyncGRPOTrainer``
    needs to send it to its rollout process (instances pickle where their
    tools' handlers do: module-level functions, not closures).

    Calls TRL cannot route to a method never reach the environment: a call
    to a tool it does not have, arguments that are not a dict, a block TRL's
    parser cannot read. ``get_reward`` compares only the calls that ran;
    ``reward_function("binary", turn="all")`` reads the whole completion
    (every reply well formed, the calls right): use it alone
    (``reward=False``) or beside this reward (TRL adds the two).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name={name!r} must be a Python identifier (TRL logs the reward under it)")
    _toolgym.match_calls([], [], abs_tol=abs_tol, rel_tol=rel_tol)  # refuses a bad tolerance here
    if not isinstance(column, str):
        raise TypeError(f"column={column!r}: expected the name of a dataset column")
    probe = tool_list(tools() if callable(tools) else tools)
    namespace: Dict[str, Any] = {
        "__doc__": ToolEnvironment.__doc__,
        "_source": tools if callable(tools) else probe,
        "_specs": _specs(probe),
        "_column": column,
        "_tolerance": {"abs_tol": abs_tol, "rel_tol": rel_tol},
    }
    seen = set()
    for spec in namespace["_specs"]:
        tool = spec["name"]
        if tool in seen:
            raise ValueError(f"two tools are named {tool!r}")
        seen.add(tool)
        if tool in RESERVED or tool.startswith("_"):
            raise ValueError(
                f"tool {tool!r}: TRL gives methods named reset or get_reward, or starting with '_', "
                f"their own meaning, and the environment uses {sorted(RESERVED - {'reset', 'get_reward'})}"
            )
        namespace[tool] = _method(tool, spec)
    if reward:
        namespace["get_reward"] = _get_reward
    if module is None:
        try:
            module = sys._getframe(1).f_globals.get("__name__", "__main__")
        except (AttributeError, ValueError):  # no frames (another Python): stays toolgym's
            module = None
    if module is not None:
        namespace["__module__"] = module
    namespace["__qualname__"] = name
    return type(name, (ToolEnvironment,), namespace)
