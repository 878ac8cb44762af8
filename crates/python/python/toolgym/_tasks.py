"""Shared by the integrations: task lists checked item by item, and the
warning for rows a reward function could not score."""

import warnings
from typing import Iterable, Iterator, List, Tuple

from toolgym import _toolgym


def checked(tasks: Iterable[_toolgym.Task]) -> Iterator[Tuple[int, _toolgym.Task]]:
    """``(index, task)`` pairs; a non-Task item raises ``TypeError`` naming
    its index."""
    for index, task in enumerate(tasks):
        if not isinstance(task, _toolgym.Task):
            raise TypeError(f"tasks[{index}] must be a toolgym.Task, not {type(task).__name__}")
        yield index, task


def warn_unscored(where: str, total: int, bad: List[Tuple[int, str]], outcome: str) -> None:
    """Says which rows (``(row, problem)`` pairs) could not be scored and
    what they got instead (``outcome``): a bad row of data must not stop a
    training step, nor pass unnoticed. For the caller's caller."""
    shown = "; ".join(f"row {i}: {detail}" for i, detail in bad[:3])
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    warnings.warn(
        f"{where}: {len(bad)} of {total} rows could not be scored {outcome}: {shown}{more}",
        stacklevel=3,
    )
