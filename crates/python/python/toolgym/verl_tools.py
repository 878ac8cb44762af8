"""toolgym tools inside verl's tool agent loop, as verl function tools.

verl 0.9 loads function tools from a Python file named in its rollout
config; write one that registers toolgym tools::

    # my_tools.py
    import toolgym, toolgym.verl_tools

    toolgym.verl_tools.register([
        toolgym.Tool("find_account", "Finds a customer's account.", FIND_SCHEMA, find_account),
        toolgym.Tool("withdraw", "Withdraws money.", WITHDRAW_SCHEMA, withdraw),
    ])

::

    actor_rollout_ref.rollout.multi_turn.enable=true
    actor_rollout_ref.rollout.multi_turn.function_tool_path=my_tools.py

verl renders each tool from its JSON Schema (no signature inference), as
far as verl 0.9's schema model keeps it: a parameter's ``type``,
``description`` and ``enum``; the rest (array items, an object's
properties, bounds, defaults) is written into the description as JSON
Schema (:func:`verl_schema`). verl's schema model decides what it takes:
releases that type a parameter's ``type`` as one string and its ``enum``
as strings refuse, at ``register``, a nullable or union parameter (given
a list of types here) and number or ``null`` enum values;
``scripts/integration/engines_check.py`` checks single types and string
enums only. When the model calls one, toolgym checks the arguments
against the schema in Rust before the handler runs, and the model reads
toolgym's tool message, as in toolgym's own envs: the result, or the
problems listed, or the handler's exception as a tool error. verl's
function tools have no per-episode state (verl calls them as plain
functions, in a worker thread); the episode's reward comes from the
reward manager (``toolgym.verl_episode``), not from the tools.

**Tools with per-episode state** (a bank whose balances a withdrawal
changes, a file system, a booking): give a function that returns the
episode's tools, as ``toolgym.trl.environment`` takes one, and write verl
a tool config for it::

    # bank.py, importable by verl's workers
    def bank_tools(balance=100.0):
        state = {"balance": balance}         # one episode's state
        def withdraw(amount):
            state["balance"] -= amount
            return {"balance": state["balance"]}
        return [toolgym.Tool("withdraw", "Withdraws money.", WITHDRAW_SCHEMA, withdraw)]

    if __name__ == "__main__":  # once, not in every worker importing bank.py
        toolgym.verl_tools.write_tool_config("bank_tools.yaml", "bank:bank_tools")

::

    actor_rollout_ref.rollout.multi_turn.tool_config_path=bank_tools.yaml

Each entry of the file is an :class:`EpisodeTool` (a verl ``BaseTool``).
verl's tool agent loop hands each call the trajectory's ``agent_data``;
the first call of a trajectory calls the function there, and every later
call of that trajectory runs on the tools it returned (kept on that
``agent_data``, gone with it), so concurrent trajectories never share
state. A trajectory's calls run one at a time, in the order the reply
wrote them, each in a thread of toolgym's own pool
(``TOOLGYM_TOOL_THREADS`` threads, 64 by default; not the event loop's
default executor, where verl decodes and parses: a slow handler stalls
neither the other trajectories nor verl). A call (or the set-up below)
still running after the config's ``timeout_s`` (600 by default; ``0``: no
limit) fails with a ``tool_timeout`` error the model reads, and the
trajectory's later calls fail too (its tools may be in the middle of a
change; the stuck thread is left to finish: the pool's threads are
daemons, so one that never returns does not keep the process from
exiting, as a ``ThreadPoolExecutor``'s would). A call that waits that long for a free thread is
not run and fails alone. The function is called with the row's
``extra_info["tools_kwargs"]["toolgym"]["create_kwargs"]`` as keyword
arguments when the row has them (verl's per-row tool arguments), with
none otherwise, in a worker thread (a slow set-up stalls no other
trajectory); it is also called once per process with no arguments, when
verl loads the tools, to read their names and schemas (those tools are
not used: a function that starts a sandbox should start it lazily). A
function that raises, or whose tools lack the one called, fails that
call alone (a later call of the trajectory tries again): verl shows the
model the error and the run goes on. The names and schemas must stay the
same from episode to episode (the model is shown the first). Rows whose
``create_kwargs`` name different keys are written to parquet with the
missing keys as ``None`` (Arrow merges them), passed on as such: give
every row the same keys.

Where tasks show different tools, register them all and write the
dataset with ``write_parquet(tasks, path, template=None,
tool_selection=True)``: each row's ``extra_info["tool_selection"]`` lists
its task's tools, and verl's loop shows and runs only those.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import importlib
import importlib.util
import inspect
import os
import queue
import re
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from toolgym._tools import ANNOTATIONS, message_text, parameters_note, run, schema_note, tools_by_name

# EpisodeTool is made on first use (it needs verl): not in __all__, so a
# star import works without verl.
__all__ = ["register", "tool_config", "tool_config_text", "verl_schema", "write_tool_config"]

#: What verl 0.9's ``OpenAIFunctionPropertySchema`` keeps of a parameter.
KEPT = frozenset({"type", "description", "enum"})
_JSON_TYPES = ["string", "number", "integer", "boolean", "array", "object", "null"]


def _types(schema: Mapping[str, Any]) -> Any:
    """A parameter's ``type`` for verl (which requires one): its own, the
    types of its ``anyOf`` / ``oneOf`` branches or its ``enum`` values,
    else every JSON type."""
    kind = schema.get("type")
    if isinstance(kind, (str, list)):
        return kind
    found: List[str] = []
    for branch in schema.get("anyOf") or schema.get("oneOf") or []:
        sub = _types(branch) if isinstance(branch, Mapping) else _JSON_TYPES
        for t in [sub] if isinstance(sub, str) else sub:
            if t not in found:
                found.append(t)
    names = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null",
             list: "array", dict: "object"}
    for value in schema.get("enum") or []:
        t = names.get(type(value), "string")
        if t not in found:
            found.append(t)
    return (found[0] if len(found) == 1 else found) if found else list(_JSON_TYPES)


def verl_schema(spec: Mapping[str, Any]) -> Dict[str, Any]:
    """A tool's OpenAI spec (``Tool.to_openai()``) in the shape verl 0.9's
    ``OpenAIFunctionToolSchema`` keeps: each parameter's ``type``,
    ``description`` and ``enum``. What that drops (array items, an
    object's properties, bounds, patterns, defaults) is appended to the
    description as JSON Schema, so the model still reads it; toolgym
    checks calls against the whole schema either way."""
    function = spec["function"]
    params = function.get("parameters") or {}
    properties = {}
    for name, given in (params.get("properties") or {}).items():
        schema = given if isinstance(given, Mapping) else {}
        out: Dict[str, Any] = {"type": _types(schema)}
        description = str(schema.get("description") or "")
        if set(schema) - KEPT - ANNOTATIONS or "type" not in schema:
            description = f"{description} {schema_note(given)}".strip()
        if description:
            out["description"] = description
        if isinstance(schema.get("enum"), list):
            out["enum"] = schema["enum"]
        properties[name] = out
    parameters = {"type": "object", "properties": properties, "required": list(params.get("required") or [])}
    return {"type": "function",
            "function": {"name": function["name"],
                         "description": " ".join(filter(None, [function.get("description"), parameters_note(params)])),
                         "parameters": parameters}}


def _function(tool: Any) -> Callable[..., str]:
    """The function verl calls with a call's arguments: toolgym's tool
    message for them."""

    def call(**arguments: Any) -> str:
        return run(tool, arguments)[1]

    call.__name__ = call.__qualname__ = tool.name
    call.__doc__ = f"toolgym tool {tool.name!r}: arguments checked against its schema, then its handler."
    return call


def register(tools: Sequence[Any]) -> List[str]:
    """Registers ``toolgym.Tool``s (or dicts with a ``handler``) as verl
    function tools (``verl.tools.function_tool``), each with its schema
    as verl keeps it (:func:`verl_schema`); returns their names. Call it
    once, from the file verl's ``function_tool_path`` names: verl's loader
    takes the tools registered while it runs that file, so a tool
    registered before (the file, or a module calling this, imported
    earlier in the process) is refused rather than silently missing."""
    from verl.tools.function_tool import FUNCTION_TOOL_REGISTRY, function_tool

    listed = list(tools_by_name(tools).values())
    names = [t.name for t in listed]
    for name in names:
        if name in FUNCTION_TOOL_REGISTRY:
            entry = FUNCTION_TOOL_REGISTRY[name]
            raise ValueError(
                f"a verl function tool named {name!r} is registered already ({entry.fn.__module__}."
                f"{entry.fn.__qualname__}): verl's loader takes only the tools registered while it runs the "
                "function_tool_path file, so register each tool once, from that file, and do not import the "
                "file (or call register) elsewhere first"
            )
    for t in listed:
        function_tool(t.name, schema=verl_schema(t.to_openai()))(_function(t))
    return names


#: The ``tools_kwargs`` entry of a dataset row whose ``create_kwargs`` an
#: :class:`EpisodeTool`'s function is called with.
KWARGS_KEY = "toolgym"

_factories: Dict[str, Callable[..., Any]] = {}
#: Modules loaded from files, by real path: one file named two ways
#: (relative and absolute, through a link) is one module, one state.
_file_modules: Dict[str, Any] = {}


def _factory(ref: Any) -> Callable[..., Any]:
    """The function ``ref`` names: ``"package.module:function"`` (imported
    as any module), or ``"path/to/file.py:function"`` (loaded from that
    file once per process, as verl loads a ``function_tool_path``)."""
    if not isinstance(ref, str) or ref.count(":") < 1:
        raise ValueError(
            f"tools={ref!r}: expected 'package.module:function' or 'path/to/file.py:function', naming a "
            "function that returns the episode's toolgym tools"
        )
    if ref in _factories:
        return _factories[ref]
    where, name = ref.rsplit(":", 1)
    if where.endswith(".py"):
        path = os.path.realpath(where)
        if not os.path.isfile(path):
            raise ValueError(f"tools={ref!r}: {path} is not a file")
        module = _file_modules.get(path)
        if module is None:
            module_name = f"_toolgym_episode_tools_{len(_file_modules)}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            _file_modules[path] = module
    else:
        module = importlib.import_module(where)
    found = getattr(module, name, None)
    if not callable(found):
        raise ValueError(f"tools={ref!r}: {where} has no function {name!r}")
    _factories[ref] = found
    return found


def _episode_tools(factory: Callable[..., Any], kwargs: Mapping[str, Any], ref: str) -> Dict[str, Any]:
    """The tools ``factory(**kwargs)`` returns, by name."""
    made = factory(**kwargs)
    if inspect.isawaitable(made):
        close = getattr(made, "close", None)
        if close is not None:
            close()
        raise TypeError(f"{ref} returned an awaitable: it must return the tools (a list), not be async")
    try:
        return tools_by_name(made)
    except ValueError as e:
        raise ValueError(f"{ref}: {e}") from None


_probes: Dict[str, Dict[str, Any]] = {}


def _probe(ref: str) -> Dict[str, Any]:
    """The tools ``ref``'s function returns without arguments, made once
    per process (for the schemas and names: each tool entry of a config
    asks, in every worker that loads it)."""
    if ref not in _probes:
        _probes[ref] = _episode_tools(_factory(ref), {}, ref)
    return _probes[ref]


def tool_config(tools: str, timeout_s: Optional[float] = None) -> Dict[str, Any]:
    """verl's tool config (``rollout.multi_turn.tool_config_path``'s
    content) for the episode tools the function ``tools`` names
    (``"package.module:function"`` or ``"path/to/file.py:function"``):
    one :class:`EpisodeTool` entry per tool it returns (called here once,
    without arguments), with its schema as verl keeps it
    (:func:`verl_schema`), and ``timeout_s`` in each entry's config when
    given (else the default, 600 s; ``0``: no limit). A file path is
    written as given; verl's workers resolve it from their own working
    directory."""
    listed = _probe(tools)
    if not listed:
        raise ValueError(f"{tools} returned no tools")
    config: Dict[str, Any] = {"type": "native", "tools": tools}
    if timeout_s is not None:
        _timeout_of({"timeout_s": timeout_s})  # refused here, not in verl's workers
        config["timeout_s"] = timeout_s
    return {
        "tools": [
            {
                "class_name": "toolgym.verl_tools.EpisodeTool",
                "config": {**config, "name": name},
                "tool_schema": verl_schema(t.to_openai()),
            }
            for name, t in listed.items()
        ]
    }


#: Characters YAML does not take as they are (C1 controls, DEL) or reads
#: as line breaks (NEL, the Unicode line and paragraph separators), and the
#: byte-order mark: written as JSON escapes, which YAML reads back.
_YAML_ESCAPED = re.compile("[\x7f-\x9f\u2028\u2029\ufeff]")
#: An OmegaConf interpolation's opening, with the backslashes before it.
_INTERPOLATION = re.compile(r"(\\*)\$\{")


def _omegaconf_text(value: Any) -> Any:
    r"""``value`` with every string's ``${`` escaped as OmegaConf reads it
    back as written (``\${``, the backslashes before it doubled): verl
    resolves interpolations in its tool config."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", value)
    if isinstance(value, list):
        return [_omegaconf_text(v) for v in value]
    if isinstance(value, dict):
        # Keys are read as written (OmegaConf interpolates values only).
        return {k: _omegaconf_text(v) for k, v in value.items()}
    return value


def tool_config_text(tools: str, timeout_s: Optional[float] = None) -> str:
    """:func:`tool_config` as the text of the YAML file verl reads (with
    ``OmegaConf.load`` and ``to_container(resolve=True)``): JSON, YAML's
    subset, with what YAML or OmegaConf would read otherwise escaped (``${``
    in a description, control characters, line separators), so verl reads
    back exactly the config (checked when omegaconf is installed)."""
    import json

    config = tool_config(tools, timeout_s)
    text = json.dumps(_omegaconf_text(config), indent=2, ensure_ascii=False) + "\n"
    text = _YAML_ESCAPED.sub(lambda m: "\\u%04x" % ord(m.group()), text)
    try:
        from omegaconf import OmegaConf
    except ImportError:
        return text
    read = OmegaConf.to_container(OmegaConf.create(text), resolve=True)
    if read != config:
        raise ValueError(f"{tools}: the tool config would not read back as written (verl's OmegaConf reads it)")
    return text


def write_tool_config(path: str, tools: str, timeout_s: Optional[float] = None) -> List[str]:
    """Writes :func:`tool_config_text` to ``path``, the file
    ``rollout.multi_turn.tool_config_path`` names; returns the tools'
    names."""
    text = tool_config_text(tools, timeout_s)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return list(_probe(tools))


class _Episode:
    """One trajectory's tools (made by its first call), the lock its
    calls take turns on, in the order they came, and why its tools are no
    longer used (a call that timed out), if they are not."""

    def __init__(self) -> None:
        self.tools: Optional[Dict[str, Any]] = None
        self.lock = asyncio.Lock()
        self.broken: Optional[str] = None


#: Threads of the pool tool calls and set-ups run on (``TOOLGYM_TOOL_THREADS``).
DEFAULT_TOOL_THREADS = 64
#: A call's (or set-up's) time limit when the config gives no ``timeout_s``.
DEFAULT_TIMEOUT_S = 600.0


class _DaemonPool:
    """A pool of at most ``threads`` daemon threads, started as calls
    need them, each running submitted calls one after another. Unlike a
    ``ThreadPoolExecutor``, whose threads the interpreter joins at exit,
    a handler that never returns (a tool stuck on a socket) does not keep
    the process from exiting once verl or the training script is done."""

    def __init__(self, threads: int, name: str = "toolgym-tool") -> None:
        self._threads = threads
        self._name = name
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._started = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> "concurrent.futures.Future[Any]":
        """``fn(*args)`` on a thread of the pool; its future (cancelled
        before it starts, it never runs)."""
        future: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
        self._queue.put((future, fn, args))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._started < self._threads:
                    # Counted once started: a thread that could not start
                    # (RuntimeError) takes no slot.
                    threading.Thread(target=self._work, name=f"{self._name}_{self._started}",
                                     daemon=True).start()
                    self._started += 1
        return future

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            self._run(*job)
            # Nothing of the finished call is held while the thread waits.
            del job
            self._idle.release()

    @staticmethod
    def _run(future: "concurrent.futures.Future[Any]", fn: Callable[..., Any], args: Any) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args)
        except BaseException as e:  # the caller's to read, as an executor's future holds it
            future.set_exception(e)
        else:
            future.set_result(result)


_pool: Optional[_DaemonPool] = None
_pool_lock = threading.Lock()


def _tool_pool() -> _DaemonPool:
    """toolgym's own thread pool for tool calls, made on first use (one per
    process: a forked child makes its own)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            raw = os.environ.get("TOOLGYM_TOOL_THREADS", "")
            try:
                threads = int(raw) if raw else DEFAULT_TOOL_THREADS
            except ValueError:
                threads = 0
            if threads < 1:
                raise ValueError(f"TOOLGYM_TOOL_THREADS={raw!r}: expected a whole number of threads, at least 1")
            _pool = _DaemonPool(threads)
        return _pool


def _forget_pool() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _timeout_of(config: Mapping[str, Any]) -> Optional[float]:
    """The config's ``timeout_s`` (``None``: the default; ``0``: no limit)."""
    value = config.get("timeout_s", DEFAULT_TIMEOUT_S)
    if value is None:
        value = DEFAULT_TIMEOUT_S
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise ValueError(f"toolgym.verl_tools.EpisodeTool: timeout_s={value!r}: expected seconds, >= 0 (0: no limit)")
    return float(value) or None


class _Late(Exception):
    """A call the time limit stopped: ``started`` says whether a thread had
    begun running it (then it may still be changing the episode's tools),
    or it waited past the limit for a free thread (then it never runs)."""

    def __init__(self, started: bool) -> None:
        super().__init__("started" if started else "queued")
        self.started = started


async def _in_pool(timeout: Optional[float], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on toolgym's pool, in the caller's context variables
    (as ``asyncio.to_thread`` runs it). With a ``timeout``, waiting for a
    free thread and running each get that long: :class:`_Late` when either
    runs out (a call still waiting is cancelled and never runs; one that
    runs is left to finish). Exceptions of ``fn`` are raised as they are."""
    began: List[float] = []

    def work() -> Any:
        began.append(time.monotonic())
        return fn(*args)

    submitted = _tool_pool().submit(contextvars.copy_context().run, work)
    future = asyncio.wrap_future(submitted)
    if timeout is None:
        return await future
    done, _ = await asyncio.wait({future}, timeout=timeout)
    if not done and submitted.cancel():
        raise _Late(started=False)
    if not done:
        start = began[0] if began else time.monotonic()
        done, _ = await asyncio.wait({future}, timeout=max(start + timeout - time.monotonic(), 0.0))
    if not done:
        # Its outcome, when it comes, is nobody's: not reported as unread.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        raise _Late(started=True)
    return future.result()


def _episode_of(agent_data: Any, ref: str) -> _Episode:
    """The trajectory's episode for ``ref``'s tools (kept on ``agent_data``
    itself, not in its ``extra_fields``, which verl copies into the batch).
    Made before any await, so the parallel calls of one reply find it and
    queue on its lock in their order."""
    episodes = getattr(agent_data, "_toolgym_episodes", None)
    if episodes is None:
        episodes = {}
        agent_data._toolgym_episodes = episodes
    if ref not in episodes:
        episodes[ref] = _Episode()
    return episodes[ref]


def _create_kwargs(agent_data: Any, ref: str) -> Dict[str, Any]:
    """The row's ``tools_kwargs["toolgym"]["create_kwargs"]`` (none when
    it has none)."""
    tools_kwargs = getattr(agent_data, "tools_kwargs", None) or {}
    entry = tools_kwargs.get(KWARGS_KEY) if isinstance(tools_kwargs, Mapping) else None
    kwargs = entry.get("create_kwargs") if isinstance(entry, Mapping) else None
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise TypeError(
            f"tools_kwargs[{KWARGS_KEY!r}]['create_kwargs'] must be a mapping of {ref}'s keyword arguments, "
            f"not {type(kwargs).__name__}"
        )
    return dict(kwargs or {})


def _timeout_text(name: str, why: str, retired: bool = True) -> str:
    """The tool message of a call the time limit stopped (or of a later
    call of its trajectory, when the episode's tools are ``retired``): a
    ``tool_timeout`` error, as toolgym's envs write tool errors."""
    if retired:
        why += "; this episode's tools are not used again (they may be mid-change)"
    return message_text({"name": name, "error": {"kind": "tool_timeout", "message": why}})


def _episode_tool_class() -> type:
    """:class:`EpisodeTool`, made on first use (it subclasses verl's
    ``BaseTool``: toolgym imports nothing of verl until then)."""
    from verl.tools.base_tool import BaseTool
    from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

    class EpisodeTool(BaseTool):
        """One tool of an episode-tools function, as a verl ``BaseTool``
        (see the module docs). Config: ``tools``, the function
        (``"package.module:function"`` or ``"path/to/file.py:function"``);
        ``name``, the tool's name (else the schema's). Without a
        ``tool_schema`` in the config, the schema is the tool's as verl keeps
        it (:func:`verl_schema`)."""

        def __init__(self, config: Dict[str, Any], tool_schema: Optional[Any] = None):
            config = dict(config or {})
            ref = config.get("tools")
            factory = _factory(ref)
            probe = _probe(ref)
            name = config.get("name")
            if name is None and tool_schema is not None:
                name = tool_schema.function.name
            if name is None:
                raise ValueError(f"toolgym.verl_tools.EpisodeTool for {ref}: the config names no tool ('name')")
            if tool_schema is not None and tool_schema.function.name != name:
                raise ValueError(
                    f"toolgym.verl_tools.EpisodeTool: config name {name!r} but tool_schema names "
                    f"{tool_schema.function.name!r}"
                )
            if name not in probe:
                raise ValueError(f"{ref} returns no tool named {name!r} (it returns {sorted(probe)})")
            if tool_schema is None:
                tool_schema = OpenAIFunctionToolSchema.model_validate(verl_schema(probe[name].to_openai()))
            self._timeout = _timeout_of(config)
            super().__init__(config, tool_schema)
            self._ref = ref
            self._factory = factory

        async def execute(self, instance_id: str, parameters: Dict[str, Any], **kwargs: Any):
            agent_data = kwargs.get("agent_data")
            if agent_data is None:
                raise RuntimeError(
                    f"toolgym.verl_tools.EpisodeTool {self.name!r} was called without agent_data: its "
                    "per-episode state lives on the trajectory verl's tool agent loop passes"
                )
            episode = _episode_of(agent_data, self._ref)
            async with episode.lock:
                if episode.broken is not None:
                    return ToolResponse(text=_timeout_text(self.name, episode.broken)), 0.0, {}
                try:
                    if episode.tools is None:
                        # On toolgym's pool: a slow set-up (a sandbox
                        # started) does not stall the other trajectories.
                        kwargs = _create_kwargs(agent_data, self._ref)
                        episode.tools = await _in_pool(
                            self._timeout, _episode_tools, self._factory, kwargs, self._ref)
                    tool = episode.tools.get(self.name)
                    if tool is None:
                        raise ValueError(f"{self._ref} returned no tool named {self.name!r} for this episode")
                    # Arguments that are not an object (verl passes what
                    # the call's JSON held) are refused by the schema
                    # check, as toolgym's envs refuse them.
                    arguments = dict(parameters) if isinstance(parameters, Mapping) else parameters
                    _, text, _ = await _in_pool(self._timeout, run, tool, arguments)
                except _Late as late:
                    what = "setting up the episode's tools" if episode.tools is None else f"the call of {self.name}"
                    if not late.started:
                        # Nothing ran: this call fails alone (a set-up is
                        # tried again by the trajectory's next call).
                        why = (f"{what} waited past timeout_s={self._timeout:g} for a free tool thread "
                               "(all busy: TOOLGYM_TOOL_THREADS sets how many)")
                        return ToolResponse(text=_timeout_text(self.name, why, retired=False)), 0.0, {}
                    episode.broken = f"{what} ran past timeout_s={self._timeout:g}"
                    return ToolResponse(text=_timeout_text(self.name, episode.broken)), 0.0, {}
            return ToolResponse(text=text), 0.0, {}

    EpisodeTool.__module__ = __name__
    EpisodeTool.__qualname__ = "EpisodeTool"
    return EpisodeTool


def __getattr__(name: str) -> Any:
    if name == "EpisodeTool":
        cls = _episode_tool_class()
        globals()["EpisodeTool"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
