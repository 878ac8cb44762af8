"""toolgym inside TRL: a reward function for ``GRPOTrainer``, a dataset, and
toolgym tools as an ``environment_factory`` (:func:`environment`, from
``toolgym.trl_env``).

::

    import toolgym, toolgym.trl
    from trl import GRPOConfig, GRPOTrainer

    tasks = toolgym.load_tasks("data/train.jsonl")      # `toolgym prepare` output
    trainer = GRPOTrainer(
        model="Qwen/Qwen2.5-7B-Instruct",
        reward_funcs=[toolgym.trl.reward_function("binary")],
        train_dataset=toolgym.trl.to_dataset(tasks),
        args=GRPOConfig(num_generations=5, per_device_train_batch_size=10,  # G divides the batch
                        temperature=0.7, beta=1e-3, epsilon=0.2),
    )

The dataset's ``prompt`` column holds chat messages (a system message with
the Tool-N1 instructions and the tools, then the conversation) and its
``ground_truth`` column the calls as JSON text; TRL passes that column to
the reward function. ``datasets`` is needed only by ``to_dataset``.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Iterable, List, Optional

from toolgym import _toolgym  # absolute: verl loads this file by path, outside its package
from toolgym._tasks import checked, prompt_messages, warn_unscored
from toolgym.trl_env import ToolEnvironment, environment

__all__ = ["RewardFunction", "TURNS", "ToolEnvironment", "environment", "reward_function", "rows", "to_dataset"]

#: What ``turn=`` may be: which assistant messages of a conversational
#: completion are scored (see :func:`reward_function`).
TURNS = ("first", "last", "all")


class RewardFunction:
    """TRL's reward-function contract, ``f(prompts, completions, **columns)
    -> list[float | None]``: scores each completion with a ``Rule`` against
    the dataset column ``column``. Made by :func:`reward_function`; a
    module-level class, so it pickles (``pickle`` and ``cloudpickle``)."""

    def __init__(
        self,
        rule: str = "binary",
        column: str = "ground_truth",
        threads: Optional[int] = None,
        turn: str = "first",
        **options: Any,
    ) -> None:
        if turn not in TURNS:
            raise ValueError(f"turn={turn!r}: expected one of {', '.join(map(repr, TURNS))}")
        self.rule = rule
        self.column = column
        self.threads = threads
        self.turn = turn
        self.options = dict(options)
        self._scorer = _toolgym.Rule(rule, **options)
        self._scorer.rewards([], [], threads=threads)  # a bad threads= raises here (no pool is made)
        if not isinstance(column, str):
            raise TypeError(f"column={column!r}: expected the name of a dataset column")
        if turn == "all" and not self._scorer.scores_episodes:
            raise ValueError(
                f"turn='all' scores a multi-step episode, which rule {rule!r} cannot: the "
                "released script's rules (tool-n1*) and BFCL's score one reply; use a rule of the "
                "binary or fine-grained family"
            )
        self._warned_tools = False
        self._warned_unreadable = False
        # TRL names the logged metric after it (rewards/toolgym_binary/mean).
        self.__name__ = "toolgym_" + rule.replace("-", "_")

    def __getstate__(self) -> dict:
        return {
            "rule": self.rule,
            "column": self.column,
            "threads": self.threads,
            "turn": self.turn,
            "options": self.options,
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["rule"], state["column"], state["threads"], state["turn"], **state["options"])

    def __call__(self, prompts: Any = None, completions: Any = None, **kwargs: Any) -> List[Optional[float]]:
        if completions is None:
            raise TypeError("the reward function needs completions=")
        if self.column not in kwargs:
            raise KeyError(
                f"the dataset has no {self.column!r} column (columns passed: {sorted(kwargs)}); "
                "build it with toolgym.trl.to_dataset or name the column with column="
            )
        completions = list(completions)
        if self.turn == "first":
            completions = [_first_assistant_turn(c) for c in completions]
        elif self.turn == "last" and not self._warned_tools and any(_has_tool_results(c) for c in completions):
            self._warned_tools = True
            warnings.warn(
                "toolgym.trl: completions hold tool results (TRL's tool loop) and turn='last' "
                "scores each one's final assistant message, so a right call before the answer "
                "scores nothing; turn='first' scores the turn that made the calls",
                stacklevel=2,
            )
        truths = list(kwargs[self.column])
        episode = self.turn == "all"
        # TRL passes the generated text alone: each is read as a reply (a
        # header the model wrote in it is text, not where its answer starts).
        verdicts = self._scorer.score_batch(
            completions, truths, threads=self.threads, errors="verdict", episode=episode, reply=not episode
        )
        out: List[Optional[float]] = []
        bad = []
        unreadable = []
        # Whether each distinct ground truth that met an input error reads
        # at all (GRPO repeats a prompt's for its G completions; datasets
        # hand each row its own string, so text is the key where it is one).
        truth_reads: Dict[Any, bool] = {}
        for i, v in enumerate(verdicts):
            if v.reason != "input_error":
                out.append(v.reward)
                continue
            key = truths[i] if isinstance(truths[i], str) else id(truths[i])
            if key not in truth_reads:
                probe = self._scorer.score_batch([""], [truths[i]], threads=1, errors="verdict", episode=episode)
                truth_reads[key] = probe[0].reason != "input_error"
            if truth_reads[key]:
                # The completion could not be read (TRL's parser took a
                # NaN, an infinity or a lone surrogate into its tool_calls):
                # the model's output, scored 0 as unreadable text is (TRL
                # would sum a None as 0 too, but say nothing).
                unreadable.append((i, v.detail))
                out.append(0.0)
            else:
                bad.append((i, v.detail))
                out.append(None)
        if bad:
            warn_unscored("toolgym.trl", len(verdicts), bad, "(reward None, which TRL sums as 0)")
        # Said once; every time when no completion of a call could be read,
        # which is a changed completion format more likely than the model.
        everyone = len(unreadable) == len(verdicts)
        if unreadable and (everyone or not self._warned_unreadable):
            self._warned_unreadable = True
            row, detail = unreadable[0]
            said = "check the completions' format" if everyone else "said once"
            warnings.warn(
                f"toolgym.trl: {len(unreadable)} of {len(verdicts)} completions could not be read "
                f"(completion {row}: {detail}); such completions score 0 ({said})",
                stacklevel=2,
            )
        return out


def _is_assistant(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role", "assistant") in ("assistant", None)


def _first_assistant_turn(completion: Any) -> Any:
    """A conversational completion cut after its first assistant message
    (what a Tool-N1 task asks for: the calls of this step); other
    completions as they are."""
    if isinstance(completion, list):
        for message in completion:
            if _is_assistant(message):
                return [message]
    return completion


def _has_tool_results(completion: Any) -> bool:
    return isinstance(completion, list) and any(
        isinstance(m, dict) and m.get("role") == "tool" for m in completion
    )


def reward_function(
    rule: str = "binary",
    column: str = "ground_truth",
    threads: Optional[int] = None,
    turn: str = "first",
    **options: Any,
) -> RewardFunction:
    """A reward function with TRL's contract, ``f(prompts, completions,
    **columns) -> list[float | None]``, that scores each completion with
    ``rule`` (and the ``Rule`` options: ``think``, ``free_text``,
    ``no_call_without_block``, ``abs_tol``, ``rel_tol``) against the
    dataset column ``column``.

    Completions may be plain text or conversational (a list of messages per
    completion, ``tool_calls`` included). Of a conversational completion:

    - ``turn="first"`` (default) scores the first assistant message: under
      TRL's tool loop (``GRPOTrainer(tools=…)``) that is the turn that made
      the step's calls, which a Tool-N1 task's ground truth holds (one task
      per step, as ``toolgym prepare`` writes them), while the tool results
      and the answer after it are not scored;
    - ``turn="last"`` scores the last assistant message instead (and warns
      when completions hold tool results);
    - ``turn="all"`` scores the whole episode, for a ground truth that
      holds the calls of every step (find the account, then withdraw):
      every assistant message is a reply, each reply that calls must be
      well formed, the last may answer in words, and the calls of all the
      replies together must match the ground truth, order-free
      (``Rule.score(…, episode=True)``; the multi-turn envs' ``CallsMatch``
      and ``EveryReply``). The ``binary`` and ``fine-grained`` rules score
      episodes; the ``tool-n1`` rules (the released script scores one
      reply) raise ``ValueError``. An episode of one reply is scored as
      that reply is (read whole: an assistant turn header in it is
      text), so a lone answer in words is a "no call" reply: pass
      ``no_call_without_block=True`` where an episode may rightly make no
      call. Calls are compared as a multiset: nothing checks that an id
      was read from an earlier tool result rather than known beforehand.

    Without tools all three score the one message.

    TRL's tool loop runs a tool only where its response parser reads the
    model's calls; TRL 1.16's Qwen schema reads one JSON object per
    ``<tool_call>`` block, not the Tool-N1 form (a list in one block), so
    with ``GRPOTrainer(tools=…)`` prompt with the ``qwen2.5`` template and
    score with ``binary-no-think``.

    Scoring runs in parallel in Rust (``threads``: default, one per core or
    ``RAYON_NUM_THREADS``; set it where several processes share a node). A
    row that cannot be scored (its ground truth is not a list of calls)
    gets ``None`` (TRL adds nothing for it to the sum of the reward
    functions, so it counts as 0 in its group), with a warning naming
    the row: one bad row does not stop the step. A completion that cannot
    be read (TRL's response parser, Python's ``json``, lets ``NaN``,
    ``Infinity`` or a lone surrogate into its ``tool_calls``; JSON has
    none of them) is the model's output and scores 0, as the same reply
    given as text does (said once), never ``None``, which would blame the
    data for the model's output. The function's
    ``__name__`` (``toolgym_binary``, …) names TRL's logged metric
    (``rewards/toolgym_binary/mean``).
    """
    return RewardFunction(rule, column, threads, turn, **options)


def rows(
    tasks: Iterable[_toolgym.Task], template: Optional[str] = "tool-n1", conversational: bool = True
) -> List[dict]:
    """The dataset rows of ``to_dataset``, as dicts."""
    if template is None and not conversational:
        raise ValueError("template=None keeps the task's own messages: it needs conversational=True")
    out = []
    for _, task in checked(tasks):
        out.append(
            {
                "prompt": prompt_messages(task, template) if conversational else task.prompt(template),
                "ground_truth": task.ground_truth_json(),
                "id": task.id,
                "source": task.source,
            }
        )
    return out


def to_dataset(
    tasks: Iterable[_toolgym.Task], template: Optional[str] = "tool-n1", conversational: bool = True
):
    """A ``datasets.Dataset`` with columns ``prompt`` (chat messages, or the
    rendered prompt text with ``conversational=False``), ``ground_truth``
    (JSON text), ``id`` and ``source``. ``template=None`` keeps each task's
    own messages, without a system message listing the tools: for
    ``GRPOTrainer(tools=…)``, which renders its tools through the model's
    chat template (a template's tool list would be a second one). Needs
    ``datasets``."""
    try:
        from datasets import Dataset
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("toolgym.trl.to_dataset needs datasets: pip install datasets") from e
    return Dataset.from_list(rows(tasks, template, conversational))
