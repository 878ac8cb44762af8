"""Shared by the integrations: task lists checked item by item, and the
warning for rows a reward function could not score."""

import threading
import warnings
from typing import Any, Iterable, Iterator, List, Optional, Tuple, Union

from toolgym import _toolgym


def checked(tasks: Iterable[_toolgym.Task]) -> Iterator[Tuple[int, _toolgym.Task]]:
    """``(index, task)`` pairs; a non-Task item raises ``TypeError`` naming
    its index."""
    for index, task in enumerate(tasks):
        if not isinstance(task, _toolgym.Task):
            raise TypeError(f"tasks[{index}] must be a toolgym.Task, not {type(task).__name__}")
        yield index, task


_unscored = {"rows": 0}
_unscored_lock = threading.Lock()


def row_label(extra_info: Any) -> str:
    """How a warning names one verl row: its ``extra_info`` ``index`` and
    ``id`` (what ``write_parquet`` stores), when it has them."""
    if isinstance(extra_info, dict):
        named = [f"{k} {extra_info[k]!r}" for k in ("index", "id") if extra_info.get(k) is not None]
        if named:
            return "row with " + ", ".join(named)
    return "row (no extra_info index or id)"


#: Per-row warnings (``compute_score``'s) beyond this many unscored rows
#: in a process are thinned to the 50th, 100th, 200th, 500th, 1000th… row.
EVERY_ROW_UP_TO = 20


def _milestone(n: int) -> bool:
    """Whether ``n`` is 1, 2 or 5 times a power of ten."""
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n in (1, 2, 5)


def warn_unscored(
    where: str,
    total: int,
    bad: List[Tuple[Union[int, str], str]],
    outcome: str,
    per_row: bool = False,
    stacklevel: int = 3,
) -> None:
    """Says which rows (``(row, problem)`` pairs: a batch position or a
    label) could not be scored and what they got instead (``outcome``): a
    bad row of data must not stop a training step, nor pass unnoticed. The
    process's running count is in the text, so no warning is swallowed as
    a repeat of an earlier one (Python shows a repeated text once). A
    ``per_row`` caller (one row a call) warns for the first
    ``EVERY_ROW_UP_TO`` unscored rows, then at the 50th, 100th, 200th,
    500th… (a mixed-source run would otherwise warn for every foreign
    row). ``stacklevel`` as ``warnings.warn``'s, counted from here: 3 (the
    default) is the caller's caller."""
    with _unscored_lock:  # engines score on several threads
        _unscored["rows"] += len(bad)
        so_far = _unscored["rows"]
    if per_row and so_far > EVERY_ROW_UP_TO and not _milestone(so_far):
        return
    thinned = f"; past {EVERY_ROW_UP_TO}, only the 50th, 100th, 200th, 500th… are warned about" if per_row else ""
    shown = "; ".join(
        f"row {row}: {detail}" if isinstance(row, int) else f"{row}: {detail}" for row, detail in bad[:3]
    )
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    warnings.warn(
        f"{where}: {len(bad)} of {total} rows could not be scored {outcome}: {shown}{more} "
        f"[{so_far} unscored rows in this process so far{thinned}]",
        stacklevel=stacklevel,
    )


def prompt_messages(task: _toolgym.Task, template: Optional[str]) -> List[dict]:
    """A task's prompt as chat messages: ``template``'s (a system message
    with its instructions and the task's tools first), or with ``None`` the
    task's own messages, for an engine that renders the tools itself
    through the model's chat template (TRL's ``tools=``, verl's tool
    config), which would otherwise list them a second time. With ``None``,
    an assistant message's ``tool_calls`` are written into its text as the
    ``qwen2.5`` template writes them (one ``<tool_call>`` block per call,
    as Qwen2.5's and Hermes-style chat templates render ``tool_calls``;
    a model whose template writes calls otherwise needs a template of
    its own): a dataset column
    of messages is one Arrow type, which would give every call's
    ``arguments`` every other row's keys (missing ones ``None``)."""
    if template is not None:
        return task.chat(template)
    return [_calls_as_text(m) for m in task.messages]


def _calls_as_text(message: dict) -> dict:
    calls = message.get("tool_calls")
    if message.get("role") != "assistant" or not calls:
        return message
    text = "\n".join(([message["content"]] if message.get("content") else []) + [_toolgym._call_blocks(calls)])
    return {k: v for k, v in message.items() if k != "tool_calls"} | {"content": text}
