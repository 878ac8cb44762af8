"""Tools given to an engine bridge (``toolgym.trl_env``,
``toolgym.verl_tools``): reading the list, running one call."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from toolgym import _toolgym


def tool(item: Any, index: int) -> Any:
    """A ``toolgym.Tool``, or one made from a dict with a ``handler`` (the
    spec plain or in OpenAI's ``{"type": "function", "function": …}``), by
    the rules and messages ``MultiTurnEnv`` reads its tools with."""
    return _toolgym._tool_of(item, index)


def tool_list(tools: Any) -> List[Any]:
    """``tools`` as a list of ``toolgym.Tool``; a ``TypeError`` naming the
    item that is not one."""
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise TypeError(f"tools must be a list of toolgym.Tool (or a function returning one), not {type(tools).__name__}")
    return [tool(t, i) for i, t in enumerate(tools)]


def tools_by_name(tools: Any) -> Dict[str, Any]:
    """:func:`tool_list` by name, in order; a ``ValueError`` naming a name
    two tools share."""
    out: Dict[str, Any] = {}
    for t in tool_list(tools):
        if t.name in out:
            raise ValueError(f"two tools are named {t.name!r}")
        out[t.name] = t
    return out


def run(tool: Any, arguments: Dict[str, Any]) -> Tuple[Dict[str, Any], str, Optional[str]]:
    """Runs one call of ``tool`` as toolgym's envs do (``Tool.call``: the
    schema first, then the handler): the result with ``ok``, the tool
    message the model reads (the result's JSON without ``ok``, written as
    toolgym's envs write it: the ``<`` of markup-like text such as
    ``<|im_end|>`` or ``<tool_call>`` as ``\u003c``, so a tool's output
    cannot end a turn or fake a call), and why the arguments are not JSON
    (NaN, a set…; no handler ran) or ``None``."""
    unreadable = None
    try:
        result = tool.call(arguments)
    except (TypeError, ValueError) as e:
        unreadable = str(e)
        result = {"name": tool.name, "error": {"kind": "invalid_arguments", "message": unreadable}, "ok": False}
    return result, message_text(result), unreadable


def message_text(result: Dict[str, Any]) -> str:
    """The tool message of ``result`` (``{"name", "result"}`` or ``{"name",
    "error"}``, an ``ok`` left out) as toolgym's envs write it: JSON with
    the ``<`` of markup-like text as ``\u003c``."""
    return _toolgym._escape_markup(json.dumps({k: v for k, v in result.items() if k != "ok"}, ensure_ascii=False))


#: Schema keywords that only annotate (no engine needs to render them).
ANNOTATIONS = frozenset({"description", "title", "$comment"})
#: What the engines render of a tool's parameters object.
RENDERED = frozenset({"type", "properties", "required"})


def schema_note(schema: Any) -> str:
    """``JSON Schema: {…}`` of a parameter's schema less its description:
    what an engine whose tool rendering cannot carry the whole schema
    appends to the parameter's description, so the model still reads it."""
    rest = {k: v for k, v in schema.items() if k != "description"} if isinstance(schema, Mapping) else schema
    return "JSON Schema: " + json.dumps(rest, ensure_ascii=False, separators=(",", ":"))


def parameters_note(parameters: Mapping[str, Any]) -> str:
    """``Parameters JSON Schema: {…}`` of what the engines do not render of
    a tool's parameters object (``$defs`` a property's ``$ref`` points
    into, a top-level ``oneOf``, ``additionalProperties``, required names
    that are not among its properties, …), for the tool's description;
    ``""`` when they render it all."""
    rest = {k: v for k, v in parameters.items() if k not in RENDERED | ANNOTATIONS}
    properties = parameters.get("properties") or {}
    unlisted = [r for r in parameters.get("required") or [] if r not in properties]
    if unlisted:
        rest["required"] = unlisted
    if not rest:
        return ""
    return "Parameters JSON Schema: " + json.dumps(rest, ensure_ascii=False, separators=(",", ":"))
