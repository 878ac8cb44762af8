"""toolgym inside TRL: a reward function for ``GRPOTrainer`` and a dataset.

::

    import toolgym, toolgym.trl
    from trl import GRPOConfig, GRPOTrainer

    tasks = toolgym.load_tasks("data/train.jsonl")      # `toolgym prepare` output
    trainer = GRPOTrainer(
        model="Qwen/Qwen2.5-7B-Instruct",
        reward_funcs=[toolgym.trl.reward_function("binary")],
        train_dataset=toolgym.trl.to_dataset(tasks),
        args=GRPOConfig(num_generations=5, temperature=0.7, beta=1e-3, epsilon=0.2, ...),
    )

The dataset's ``prompt`` column holds chat messages (a system message with
the Tool-N1 instructions and the tools, then the conversation) and its
``ground_truth`` column the calls as JSON text; TRL passes that column to
the reward function. ``datasets`` is needed only by ``to_dataset``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional

from toolgym import _toolgym  # absolute: verl loads this file by path, outside its package
from toolgym._tasks import checked

__all__ = ["reward_function", "rows", "to_dataset"]


def reward_function(
    rule: str = "binary", column: str = "ground_truth", threads: Optional[int] = None
) -> Callable[..., List[float]]:
    """A reward function with TRL's contract, ``f(prompts, completions,
    **columns) -> list[float]``, that scores each completion with ``rule``
    against the dataset column ``column``.

    Completions may be plain text or conversational (a list of messages per
    completion: the last assistant message is scored, ``tool_calls``
    included). Scoring runs in parallel in Rust. The function's
    ``__name__`` (``toolgym_binary``, …) names TRL's logged metric
    (``rewards/toolgym_binary/mean``).
    """
    scorer = _toolgym.Rule(rule)

    def reward(prompts: Any = None, completions: Any = None, **kwargs: Any) -> List[float]:
        if completions is None:
            raise TypeError("the reward function needs completions=")
        if column not in kwargs:
            raise KeyError(
                f"the dataset has no {column!r} column (columns passed: {sorted(kwargs)}); "
                "build it with toolgym.trl.to_dataset or name the column with column="
            )
        return scorer.rewards(list(completions), list(kwargs[column]), threads=threads)

    reward.__name__ = "toolgym_" + rule.replace("-", "_")
    reward.__qualname__ = reward.__name__
    return reward


def rows(
    tasks: Iterable[_toolgym.Task], template: str = "tool-n1", conversational: bool = True
) -> List[dict]:
    """The dataset rows of ``to_dataset``, as dicts."""
    out = []
    for _, task in checked(tasks):
        out.append(
            {
                "prompt": task.chat(template) if conversational else task.prompt(template),
                "ground_truth": task.ground_truth_json(),
                "id": task.id,
                "source": task.source,
            }
        )
    return out


def to_dataset(
    tasks: Iterable[_toolgym.Task], template: str = "tool-n1", conversational: bool = True
):
    """A ``datasets.Dataset`` with columns ``prompt`` (chat messages, or the
    rendered prompt text with ``conversational=False``), ``ground_truth``
    (JSON text), ``id`` and ``source``. Needs ``datasets``."""
    try:
        from datasets import Dataset
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("toolgym.trl.to_dataset needs datasets: pip install datasets") from e
    return Dataset.from_list(rows(tasks, template, conversational))
