"""Shared by the integrations: task lists checked item by item."""

from typing import Iterable, Iterator, Tuple

from toolgym import _toolgym


def checked(tasks: Iterable[_toolgym.Task]) -> Iterator[Tuple[int, _toolgym.Task]]:
    """``(index, task)`` pairs; a non-Task item raises ``TypeError`` naming
    its index."""
    for index, task in enumerate(tasks):
        if not isinstance(task, _toolgym.Task):
            raise TypeError(f"tasks[{index}] must be a toolgym.Task, not {type(task).__name__}")
        yield index, task
