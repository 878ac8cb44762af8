"""toolgym inside verl: the reward function and the RL dataset.

Reward -- name it in verl's trainer config (verl 0.9 reads
``reward.custom_reward_function``; checked against verl 0.9.1 by
``scripts/integration/engines_check.py``)::

    reward.custom_reward_function.path=pkg://toolgym.verl       # or the file: toolgym.verl.__file__
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.rule=binary    # or tool-n1

``compute_score_batch`` has the contract of verl's ``BatchRewardManager``
(``verl.workers.reward_manager.BatchRewardManager``; the reward-loop
registry of verl 0.9 has no ``batch`` manager).

Dataset -- write verl's RL parquet from prepared tasks::

    import toolgym, toolgym.verl
    tasks = toolgym.load_tasks("data/train.jsonl")     # `toolgym prepare` output
    toolgym.verl.write_parquet(tasks, "data/train.parquet")

Each row holds ``data_source``, ``prompt`` (chat messages whose system
message carries the Tool-N1 instructions and the tools), ``ability``,
``reward_model = {"style": "rule", "ground_truth": <calls as JSON text>}``
and ``extra_info = {"index", "id", "source", "split"}``. ``pyarrow`` is
needed only by the writer (``pip install toolgym[verl]``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterable, List, Optional, Sequence

from toolgym import _toolgym  # absolute: verl loads this file by path, outside its package
from toolgym._tasks import checked

__all__ = ["compute_score", "compute_score_batch", "rows", "write_parquet"]


@lru_cache(maxsize=None)
def _rule(name: str) -> _toolgym.Rule:
    return _toolgym.Rule(name)


def _rule_name(rule: str, extra_info: Any) -> str:
    if isinstance(extra_info, dict) and extra_info.get("reward_rule"):
        return str(extra_info["reward_rule"])
    return rule


def compute_score(
    data_source: Any = None,
    solution_str: Any = None,
    ground_truth: Any = None,
    extra_info: Any = None,
    rule: str = "binary",
    **kwargs: Any,
) -> float:
    """verl's reward-function contract: the reward of one response.

    ``solution_str`` is the decoded response (or an assistant message);
    ``ground_truth`` the calls, as JSON text (what ``write_parquet``
    stores) or a list of ``{"name", "arguments"}`` dicts. ``rule``
    (``binary`` by default; ``tool-n1`` is the released Tool-N1 script bit
    for bit) comes from ``custom_reward_function.reward_kwargs``; a row's
    ``extra_info["reward_rule"]`` overrides it. A malformed response (any
    text) scores 0, never raises; a ground truth that is not a list of
    calls raises ``ValueError``. ``tool-n1`` equals the released script on
    every ground truth serde_json reads exactly: integers beyond 64 bits
    become floats there, where the script keeps them exact.
    """
    return _rule(_rule_name(rule, extra_info)).score(solution_str, ground_truth).reward


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[Any],
    ground_truths: Sequence[Any],
    extra_infos: Optional[Sequence[Any]] = None,
    rule: str = "binary",
    threads: Optional[int] = None,
    **kwargs: Any,
) -> List[float]:
    """verl's batch reward-function contract (``reward_model.reward_manager:
    batch``): the rewards of many responses, scored in parallel in Rust.
    Rows whose ``extra_info`` names another ``reward_rule`` are scored with
    it."""
    n = len(solution_strs)
    infos = list(extra_infos) if extra_infos is not None else [None] * n
    names = [_rule_name(rule, info) for info in infos]
    out = [0.0] * n
    for name in sorted(set(names)):
        idx = [i for i, m in enumerate(names) if m == name]
        rewards = _rule(name).rewards(
            [solution_strs[i] for i in idx], [ground_truths[i] for i in idx], threads=threads
        )
        for i, r in zip(idx, rewards):
            out[i] = r
    return out


def rows(
    tasks: Iterable[_toolgym.Task],
    template: str = "tool-n1",
    data_source: str = "toolgym",
    ability: str = "tool_call",
    split: str = "train",
) -> List[dict]:
    """The parquet rows of ``write_parquet``, as dicts."""
    out = []
    for index, task in checked(tasks):
        out.append(
            {
                "data_source": data_source,
                "prompt": task.chat(template),
                "ability": ability,
                "reward_model": {"style": "rule", "ground_truth": task.ground_truth_json()},
                "extra_info": {
                    "index": index,
                    "id": task.id,
                    "source": task.source,
                    "split": split,
                },
            }
        )
    return out


def write_parquet(
    tasks: Iterable[_toolgym.Task],
    path: str,
    template: str = "tool-n1",
    data_source: str = "toolgym",
    ability: str = "tool_call",
    split: str = "train",
) -> int:
    """Writes tasks as verl's RL parquet (see the module docs); returns the
    number of rows. Needs ``pyarrow``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("toolgym.verl.write_parquet needs pyarrow: pip install pyarrow") from e
    table = pa.Table.from_pylist(rows(tasks, template, data_source, ability, split))
    pq.write_table(table, path)
    return table.num_rows

