"""Shared by the integrations: task lists checked item by item, and the
warning for rows a reward function could not score."""

import warnings
from typing import Any, Iterable, Iterator, List, Tuple, Union

from toolgym import _toolgym


def checked(tasks: Iterable[_toolgym.Task]) -> Iterator[Tuple[int, _toolgym.Task]]:
    """``(index, task)`` pairs; a non-Task item raises ``TypeError`` naming
    its index."""
    for index, task in enumerate(tasks):
        if not isinstance(task, _toolgym.Task):
            raise TypeError(f"tasks[{index}] must be a toolgym.Task, not {type(task).__name__}")
        yield index, task


_unscored = {"rows": 0}


def row_label(extra_info: Any) -> str:
    """How a warning names one verl row: its ``extra_info`` ``index`` and
    ``id`` (what ``write_parquet`` stores), when it has them."""
    if isinstance(extra_info, dict):
        named = [f"{k} {extra_info[k]!r}" for k in ("index", "id") if extra_info.get(k) is not None]
        if named:
            return "row with " + ", ".join(named)
    return "row (no extra_info index or id)"


def warn_unscored(where: str, total: int, bad: List[Tuple[Union[int, str], str]], outcome: str) -> None:
    """Says which rows (``(row, problem)`` pairs: a batch position or a
    label) could not be scored and what they got instead (``outcome``): a
    bad row of data must not stop a training step, nor pass unnoticed. The
    process's running count is in the text, so no warning is swallowed as
    a repeat of an earlier one (Python shows a repeated text once). For
    the caller's caller."""
    _unscored["rows"] += len(bad)
    so_far = _unscored["rows"]
    shown = "; ".join(
        f"row {row}: {detail}" if isinstance(row, int) else f"{row}: {detail}" for row, detail in bad[:3]
    )
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    warnings.warn(
        f"{where}: {len(bad)} of {total} rows could not be scored {outcome}: {shown}{more} "
        f"[{so_far} unscored rows in this process so far]",
        stacklevel=3,
    )
