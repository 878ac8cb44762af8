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

Where tasks show different tools, register them all and write the
dataset with ``write_parquet(tasks, path, template=None,
tool_selection=True)``: each row's ``extra_info["tool_selection"]`` lists
its task's tools, and verl's loop shows and runs only those.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Sequence

from toolgym._tools import ANNOTATIONS, parameters_note, run, schema_note, tool_list

__all__ = ["register", "verl_schema"]

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

    listed = tool_list(tools)
    names = [t.name for t in listed]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"two tools are named {name!r}")
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
