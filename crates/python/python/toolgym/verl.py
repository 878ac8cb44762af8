"""toolgym inside verl: the reward function and the RL dataset.

Reward -- name it in verl's trainer config (verl 0.9 reads
``reward.custom_reward_function``; checked against verl 0.9.1 by
``scripts/integration/engines_check.py``)::

    reward.custom_reward_function.path=pkg://toolgym.verl       # (by file, verl's wrapper cannot be pickled)
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.rule=binary    # or tool-n1

``compute_score_batch`` has the contract of verl's ``BatchRewardManager``
(``verl.workers.reward_manager.BatchRewardManager``; the reward-loop
registry of verl 0.9 has no ``batch`` manager).

Multi-turn episodes (verl's tool agent loop, a ground truth holding every
step's calls): score them as one with ``episode=true`` and the reward
manager of ``toolgym.verl_episode``, which decodes responses with their
ChatML turn headers kept::

    reward.reward_manager.source=importlib
    reward.reward_manager.module.path=pkg://toolgym.verl_episode
    reward.reward_manager.name=EpisodeRewardManager
    +reward.custom_reward_function.reward_kwargs.episode=true

verl's tool parsers read one JSON object per ``<tool_call>`` block, not
the Tool-N1 list: for its tool loop write the dataset with
``template="qwen2.5"`` and score with ``binary-no-think`` (that template
does not ask for ``<think>``)
(or with ``template=None``, the tasks' own messages, where verl's chat
template renders the tools of its tool config). A rollout of the tool loop
that called a tool holds the tool round and the later replies, which a
one-reply rule reads as stray text (reward 0, said once): score the tool
loop with ``episode=true`` and ``EpisodeRewardManager`` (above), which
also scores single-step ground truths.

Dataset -- write verl's RL parquet from prepared tasks::

    import toolgym, toolgym.verl
    tasks = toolgym.load_tasks("data/train.jsonl")     # `toolgym prepare` output
    toolgym.verl.write_parquet(tasks, "data/train.parquet")

Each row holds ``data_source``, ``prompt`` (chat messages whose system
message carries the Tool-N1 instructions and the tools), ``ability``,
``reward_model = {"style": "rule", "ground_truth": <calls as JSON text>}``
and ``extra_info = {"index", "id", "source", "split"}`` (with
``tool_selection=True`` also ``"tool_selection"``: the task's tool names).
``pyarrow`` is needed only by the writer (``pip install toolgym[verl]``).

Tools -- ``toolgym.verl_tools.register`` makes toolgym tools verl function
tools for its tool agent loop.
"""

from __future__ import annotations

import json
import threading
import warnings
from functools import lru_cache
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from toolgym import _toolgym  # absolute: verl loads this file by path, outside its package
from toolgym._tasks import checked, prompt_messages, row_label, warn_unscored

__all__ = ["check_chatml", "compute_score", "compute_score_batch", "rows", "write_parquet"]


#: ``Rule`` options a ``reward_kwargs`` entry may set (passed on to ``Rule``).
RULE_OPTIONS = ("think", "free_text", "no_call_without_block", "abs_tol", "rel_tol")
#: Keyword arguments verl's reward loop passes besides ``reward_kwargs``:
#: accepted and not used.
ENGINE_KWARGS = ("reward_router_address", "reward_model_tokenizer", "return_dict", "strict_box_verify",
                 # verl's default_compute_score's, for rows of other sources (``sources``)
                 "sandbox_fusion_url", "concurrent_semaphore", "memory_limit_mb")
_warned: set = set()
# verl's reward loop runs compute_score on an executor's threads.
_warned_lock = threading.Lock()


def _rule(name: str, options: Tuple[Tuple[str, Any], ...] = ()) -> _toolgym.Rule:
    """Rule ``name`` with ``options``, made once per name and options. The
    cache key holds each value's type: ``True == 1`` in Python, so without
    it a cached ``abs_tol=1`` rule would answer ``abs_tol=True``, which
    ``Rule`` refuses."""
    return _typed_rule(name, tuple((k, type(v), v) for k, v in options))


@lru_cache(maxsize=None)
def _typed_rule(name: str, typed: Tuple[Tuple[str, type, Any], ...]) -> _toolgym.Rule:
    return _toolgym.Rule(name, **{k: v for k, _, v in typed})


def _options(kwargs: Dict[str, Any]) -> Tuple[Tuple[str, Any], ...]:
    """The ``Rule`` options among ``kwargs``; warns once about any keyword
    that is neither an option nor one verl passes (a misspelt option would
    otherwise train on another reward without a word)."""
    for key in kwargs:
        if key not in RULE_OPTIONS and key not in ENGINE_KWARGS and _first_time(key):
            warnings.warn(
                f"toolgym.verl: ignoring the unknown keyword {key!r} (reward options: rule, "
                f"{', '.join(RULE_OPTIONS)})",
                stacklevel=3,
            )
    return tuple(sorted((k, v) for k, v in kwargs.items() if k in RULE_OPTIONS))


def _rule_for(name: str, rule: str, options: Tuple[Tuple[str, Any], ...]) -> _toolgym.Rule:
    """Rule ``name``: with ``options`` when it is the ``rule`` keyword's
    own, without them when a row named another."""
    options = options if name == rule else ()
    try:
        hash(options)
    except TypeError:  # an unhashable option value: Rule names what is wrong with it
        return _toolgym.Rule(name, **dict(options))
    return _rule(name, options)


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
    episode: bool = False,
    sources: Any = None,
    **kwargs: Any,
) -> float:
    """verl's reward-function contract: the reward of one response.

    ``solution_str`` is the decoded response (or an assistant message);
    ``ground_truth`` the calls, as JSON text (what ``write_parquet``
    stores) or a list of ``{"name", "arguments"}`` dicts. ``rule``
    (``binary`` by default; ``tool-n1`` is the released Tool-N1 script bit
    for bit) and the ``Rule`` options (``think``, ``free_text``,
    ``no_call_without_block``, ``abs_tol``, ``rel_tol``) come from
    ``custom_reward_function.reward_kwargs``; any other keyword is ignored
    with a warning (once), except those verl's reward loop passes; an
    unknown ``rule`` or a bad option raises (the configuration is wrong for
    every row). A row's ``extra_info["reward_rule"]`` overrides the rule
    (without the options, which are the ``rule`` keyword's). A malformed
    response (any text) scores 0, never raises. A row that cannot be
    scored (a ground truth that is not a list of calls, ``None``, a
    response that is not text or messages, an unknown
    ``extra_info["reward_rule"]``) scores 0 with a warning naming the row
    (``extra_info``'s ``index`` and ``id``, as ``write_parquet`` stores
    them, and the ``data_source``) and the problem: one bad row of data
    does not stop a training step. Each warning holds the process's count
    of unscored rows, so none is taken for a repeat and hidden; past 20
    such rows, only the 50th, 100th, 200th, 500th… are warned about. Keep
    ground truths JSON text: a parquet column of call dicts is stored by
    Arrow with every row's ``arguments`` keys merged (missing ones
    ``None``), and right answers then score 0. ``tool-n1`` equals the
    released script on every ground truth serde_json reads exactly:
    integers beyond 64 bits become floats there, where the script keeps
    them exact.

    ``episode=True`` (``reward_kwargs.episode=true``) scores a multi-turn
    response of verl's tool agent loop as one episode against a ground
    truth holding the calls of every step: the response, decoded with its
    special tokens kept, is split at its ChatML turn headers
    (``toolgym.chatml_turns``), every assistant turn is a reply, and the
    calls of all the replies together must match (``Rule.score(…,
    episode=True)``). verl's own reward managers decode without special
    tokens, which erases the turn headers; use
    ``toolgym.verl_episode.EpisodeRewardManager``, which keeps them. A
    response whose headers disagree with verl's ``num_turns`` (a reply that
    wrote a header itself, or one decoded without special tokens) scores
    0, said once. The rule must score episodes (the ``binary`` and
    ``fine-grained`` families); ``tool-n1`` raises, and so does an
    ``episode`` that is not a bool.

    ``sources`` (``reward_kwargs.sources``: a data source name or a list
    of them) mixes toolgym's rows with other data: a row whose
    ``data_source`` is not among them is scored by verl's own
    ``default_compute_score``, as verl scores it without a custom reward
    function (a math row by its gsm8k or MATH scorer), with the keywords
    verl passes, as a float (a scorer's dict gives its ``score``). verl
    passes a custom reward function no code sandbox: code rows
    (codecontests, apps, …) run in the reward worker unless
    ``reward_kwargs.sandbox_fusion_url`` names one. A row verl's scorer
    fails on scores 0 with a warning naming it; what would fail every such
    row raises (a data source verl has no scorer for, a scorer's missing
    dependency, a keyword it does not take). Unset, every row is
    toolgym's (a row of other data then scores 0, warned about as a ground
    truth that is not a list of calls).
    """
    options = _options(kwargs)
    names = source_names(sources)
    if names is not None and data_source not in names:
        return _verl_default(data_source, solution_str, ground_truth, extra_info, kwargs, names)
    name = _rule_name(rule, extra_info)

    def unscored(problem: str) -> float:
        where = f"{row_label(extra_info)}, data_source {data_source!r}"
        # Attributed to compute_score's caller (verl's reward loop).
        warn_unscored(
            "toolgym.verl.compute_score", 1, [(where, problem)], "and score 0", per_row=True, stacklevel=4
        )
        return 0.0

    rule_of = _configured(rule, options, episode)  # the configuration's: its errors raise
    episode = bool(episode)
    if name != rule:
        try:
            rule_of = _rule_for(name, rule, options)
        except ValueError as e:  # a row's own rule
            return unscored(f"extra_info['reward_rule']: {e}")
    if episode and not _turns_agree(solution_str, extra_info):
        return 0.0
    if not episode:
        _warn_if_multi_turn(solution_str, extra_info)
    try:
        # verl passes the response alone: read as a reply, a header the
        # model wrote in it is text, not where its answer starts.
        return rule_of.score(solution_str, ground_truth, episode=episode, reply=not episode).reward
    except (TypeError, ValueError) as e:  # the row's data, not the configuration
        return unscored(str(e))


def source_names(sources: Any) -> Optional[List[str]]:
    """``reward_kwargs.sources`` (a data source name or a list of them,
    an OmegaConf list included) as a list of names; ``None`` when unset
    (every row is toolgym's). A ``TypeError`` for ``sources`` that name
    none: the configuration, wrong for every row."""
    if sources is None:
        return None
    names = [sources] if isinstance(sources, str) else sources
    try:
        names = list(names)
    except TypeError:
        names = None
    if not names or not all(isinstance(n, str) for n in names):
        raise TypeError(
            f"toolgym.verl: sources={sources!r}: expected a data source name or a list of them "
            "(the rows toolgym scores; verl's default scorer takes the rest)"
        )
    return names


def _verl_default(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any,
                  kwargs: Dict[str, Any], sources: List[str]) -> float:
    """verl's ``default_compute_score`` of a row of other data, with the
    keywords verl passed (its own scorers take them; toolgym's options
    are toolgym's), as a float: the scorers that give a dict (math_dapo,
    aime) have their ``score``, since verl's reward loop takes the extra
    keys of a batch from its first row, and toolgym's rows give none.

    A data source verl has no scorer for raises (the configuration: every
    such row would fail), as do a scorer's missing dependency
    (``ImportError``) and keywords it does not take. Any other error of
    verl's scorer on this row (a parser's, a sandbox call's) scores it 0
    with a warning naming the row and the error: one row of other data
    must not stop a training step."""
    from verl.utils.reward_score import default_compute_score

    # What verl passes (its scorers take those); toolgym's options are
    # toolgym's, and an unknown keyword was warned about as ignored.
    passed = {k: v for k, v in kwargs.items() if k in ENGINE_KWARGS}
    try:
        result = default_compute_score(data_source, solution_str, ground_truth, extra_info, **passed)
        if isinstance(result, dict):
            result = result.get("score", 0.0)
        return float(result)
    except NotImplementedError as e:
        raise NotImplementedError(
            f"{e} (toolgym.verl: data_source {data_source!r} is not among sources={sources!r}, so verl's "
            "own scorer was asked; add it to sources if the row is toolgym's)"
        ) from e
    except ImportError:
        raise  # a scorer's missing dependency: every such row would fail
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise  # keywords the scorer does not take: the configuration's
        return _unscored_foreign(data_source, extra_info, e)
    except Exception as e:  # noqa: BLE001 - one row's failure, reported
        return _unscored_foreign(data_source, extra_info, e)


def _unscored_foreign(data_source: Any, extra_info: Any, e: BaseException) -> float:
    """0 for a row of other data that verl's scorer failed on, warned with
    the row and the error."""
    where = f"{row_label(extra_info)}, data_source {data_source!r}"
    warn_unscored("toolgym.verl: verl's default_compute_score", 1,
                  [(where, f"{type(e).__name__}: {e}")], "and score 0", per_row=True, stacklevel=5)
    return 0.0


def _configured(rule: str, options: Tuple[Tuple[str, Any], ...], episode: Any) -> _toolgym.Rule:
    """The ``rule`` keyword's rule, with a ``ValueError`` when it is unknown,
    an option is bad, or ``episode`` asks for episodes it cannot score (a
    ``TypeError`` when ``episode`` is not a bool: ``"false"`` is truthy)."""
    numpy_bool = type(episode).__module__ == "numpy" and type(episode).__name__ in ("bool_", "bool")
    if not (isinstance(episode, bool) or numpy_bool):
        raise TypeError(f"toolgym.verl: episode must be true or false, not {episode!r}")
    out = _rule_for(rule, rule, options)
    if episode and not out.scores_episodes:
        raise ValueError(
            f"toolgym.verl: episode=True needs a rule that scores episodes (the binary or "
            f"fine-grained family); {rule!r} scores one reply"
        )
    return out


def _turns_agree(response: Any, extra_info: Any) -> bool:
    """Whether a response's ChatML turn headers agree with verl's own count
    of its turns (``extra_info["num_turns"]``: the prompt, then each reply
    and each tool round, so a response of n turns has n - 2 headers, its
    first reply's being the prompt's). A reply can write a header itself
    (decoded text cannot tell a special token from the same characters
    written as plain tokens), which would split it into turns and, say,
    hide text or calls in a made-up tool turn: such a response has more
    headers than verl counted and scores 0 (said once). A response with no
    header where verl counted tool rounds was decoded without its special
    tokens (verl's own reward managers): it cannot be split, so it scores
    0, and the fix is said once (``EpisodeRewardManager``). Without a
    count (not verl's agent loop), the headers are taken as they are."""
    count = extra_info.get("num_turns") if isinstance(extra_info, dict) else None
    if not isinstance(response, str) or isinstance(count, bool):
        return True
    if count is None and "<tool_response>" in response and "<|im_start|>" not in response:
        # No count, and tool results but no header: a multi-turn response
        # decoded without its special tokens by a manager that reports no
        # turns (verl's dapo and gdpo). It cannot be split; the rule scores
        # it as one reply (0).
        _warn_once(
            "no-count-no-headers",
            "toolgym.verl: episode=True, but a response holds tool results and no ChatML turn "
            "headers, and extra_info has no num_turns: the reward manager decoded it without its "
            "special tokens (verl's dapo and gdpo managers do, and report no turns), so its replies "
            "cannot be told apart and it scores 0; set reward.reward_manager.source=importlib, "
            "module.path=pkg://toolgym.verl_episode and name=EpisodeRewardManager (said once)",
        )
        return True
    try:
        expected = int(count) - 2  # numpy integers too
    except (TypeError, ValueError, OverflowError):  # not a count (inf, "x"): none given
        return True
    try:
        turns = _toolgym.chatml_turns(response)
    except UnicodeEncodeError:  # a lone surrogate: not text the rule reads; it scores it 0
        return True
    headers = sum(role is not None for role, _ in turns)
    if headers > expected:
        _warn_once(
            "forged-headers",
            f"toolgym.verl: a response has {headers} ChatML turn headers where verl counted "
            f"{expected + 2} turns ({expected} headers): a reply wrote turn headers itself; such "
            "responses score 0 (said once)",
        )
        return False
    if headers == 0 and expected > 0:
        _warn_once(
            "no-headers",
            "toolgym.verl: episode=True, but a multi-turn response has no ChatML turn headers: it "
            "was decoded without its special tokens (verl's own reward managers do that); set "
            "reward.reward_manager.source=importlib, module.path=pkg://toolgym.verl_episode and "
            "name=EpisodeRewardManager. Such responses score 0 (said once)",
        )
        return False
    return True


def _first_time(key: str) -> bool:
    """Whether ``key`` is seen here for the first time (then noted)."""
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
        return True


def check_chatml(tokenizer: Any) -> None:
    """Raises ``ValueError`` when ``tokenizer``'s chat template does not
    write the ChatML turn headers ``episode=True`` splits a response at
    (``<|im_start|>assistant`` and a newline): with another template
    (Llama 3's ``<|start_header_id|>``, Mistral's ``[INST]``, Gemma's
    ``<start_of_turn>``, Phi-4's ``<|im_sep|>`` after the role) every
    multi-turn episode would score 0. The template renders a probe
    conversation (``apply_chat_template``), in which ``chatml_turns`` must
    find an assistant turn; where it cannot render, its text must hold
    ``<|im_start|>`` (a dict of named templates: one of them). A tokenizer
    without a template passes: nothing to tell from."""
    template = getattr(tokenizer, "chat_template", None)
    if template is None:
        return
    render = getattr(tokenizer, "apply_chat_template", None)
    try:
        probe = render([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                       tokenize=False) if callable(render) else None
    except Exception:  # a template that needs more (tools, a system message): read its text
        probe = None
    if isinstance(probe, str):
        ok = any(role == "assistant" for role, _ in _toolgym.chatml_turns(probe))
    else:
        texts = list(template.values()) if isinstance(template, dict) else [template]
        ok = any("<|im_start|>" in t for t in texts if isinstance(t, str)) or not any(
            isinstance(t, str) for t in texts)
    if not ok:
        raise ValueError(
            "toolgym.verl: episode scoring reads a response's ChatML turn headers "
            "(<|im_start|>), and this tokenizer's chat template writes none: every multi-turn "
            "episode would score 0. Use a ChatML model (Qwen2.5, Hermes-style templates) or score "
            "one reply (episode=false)"
        )


def _warn_once(key: str, message: str) -> None:
    if _first_time(key):
        warnings.warn(message, stacklevel=4)


def _warn_if_multi_turn(response: Any, extra_info: Any) -> bool:
    """Warns (once) when a response scored as one reply comes from a loop
    that ran tools: verl's tool agent loop counts more than the prompt and
    one reply in ``extra_info["num_turns"]``, or the decoded response holds
    tool results. Its text after the first reply (the results, the later
    replies) then fails the format, so every such rollout scores 0 and the
    step learns nothing; such responses are scored with ``episode=true``.
    Returns whether it looked like one."""
    count = extra_info.get("num_turns") if isinstance(extra_info, dict) else None
    try:
        turns = None if isinstance(count, bool) else int(count)
    except (TypeError, ValueError, OverflowError):
        turns = None
    multi = (turns is not None and turns > 2) or (isinstance(response, str) and "<tool_response>" in response)
    if multi:
        _warn_once(
            "multi-turn-not-episode",
            "toolgym.verl: a response of verl's tool agent loop (tools ran: "
            + (f"num_turns {turns}" if turns is not None else "it holds tool results")
            + ") is scored as one reply (episode=false), so the tool results and later replies in it fail "
            "the format and it scores 0; score such rollouts as episodes: "
            "+reward.custom_reward_function.reward_kwargs.episode=true with "
            "reward.reward_manager.source=importlib, module.path=pkg://toolgym.verl_episode and "
            "name=EpisodeRewardManager, which also scores single-step ground truths (said once)",
        )
    return multi


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[Any],
    ground_truths: Sequence[Any],
    extra_infos: Optional[Sequence[Any]] = None,
    rule: str = "binary",
    threads: Optional[int] = None,
    episode: bool = False,
    sources: Any = None,
    **kwargs: Any,
) -> List[float]:
    """verl's batch reward-function contract, that of its legacy
    ``BatchRewardManager`` (``reward_model.reward_manager=batch`` in the
    verl versions that have it; verl 0.9's reward loop has no batch
    manager and calls ``compute_score`` per row): the rewards of many
    responses, scored in parallel in Rust.
    Rows whose ``extra_info`` names another ``reward_rule`` are scored with
    it (a row naming an unknown one scores 0, named in the warning; an
    unknown ``rule`` keyword raises); options and ``episode`` as for
    ``compute_score``. A row that cannot be scored scores 0, and one
    warning per call names how many and the first three (row and problem).
    The sequences must have one item per response (``ValueError`` naming
    them otherwise). ``sources`` as for ``compute_score``: rows of other
    data sources are scored one by one by verl's ``default_compute_score``."""
    n = len(solution_strs)
    lengths = {"data_sources": len(data_sources), "ground_truths": len(ground_truths)}
    if extra_infos is not None:
        lengths["extra_infos"] = len(extra_infos)
    wrong = {k: v for k, v in lengths.items() if v != n}
    if wrong:
        raise ValueError(
            f"compute_score_batch: {n} solution_strs but "
            + ", ".join(f"{v} {k}" for k, v in wrong.items())
        )
    options = _options(kwargs)
    infos = list(extra_infos) if extra_infos is not None else [None] * n
    names = [_rule_name(rule, info) for info in infos]
    out = [0.0] * n
    _configured(rule, options, episode)  # the configuration's rule and options: their errors raise
    named = source_names(sources)
    ours = [named is None or data_sources[i] in named for i in range(n)]
    for i in range(n):
        if not ours[i]:
            out[i] = _verl_default(data_sources[i], solution_strs[i], ground_truths[i], infos[i], kwargs, named)
            names[i] = None  # not toolgym's to score
    bad: List[Tuple[int, str]] = []
    episode = bool(episode)
    if not episode:
        for i in range(n):
            if ours[i] and _warn_if_multi_turn(solution_strs[i], infos[i]):
                break
    if episode:
        # Responses whose turn headers disagree with verl's count score 0.
        agree = [not ours[i] or _turns_agree(solution_strs[i], infos[i]) for i in range(n)]
        names = [m if ok else None for m, ok in zip(names, agree)]
    for name in sorted(set(m for m in names if m is not None)):
        idx = [i for i, m in enumerate(names) if m == name]
        try:
            scorer = _rule_for(name, rule, options)
        except ValueError as e:  # a row's own rule: those rows score 0
            bad.extend((i, f"extra_infos[{i}]['reward_rule']: {e}") for i in idx)
            continue
        if episode and not scorer.scores_episodes:  # a row's own rule, not the configuration's
            bad.extend((i, f"extra_infos[{i}]['reward_rule']: {name!r} scores one reply, not an episode") for i in idx)
            continue
        verdicts = scorer.score_batch(
            [solution_strs[i] for i in idx],
            [ground_truths[i] for i in idx],
            threads=threads,
            errors="verdict",
            episode=episode,
            reply=not episode,
        )
        for i, v in zip(idx, verdicts):
            out[i] = v.reward
            if v.reason == "input_error":
                bad.append((i, v.detail))
    if bad:
        # Named by position in the call and by what verl can trace back to
        # a parquet row (extra_info index and id, data source).
        labelled = [
            (f"row {i} [{row_label(infos[i])}, data_source {data_sources[i]!r}]", detail)
            for i, detail in sorted(bad)
        ]
        warn_unscored("toolgym.verl.compute_score_batch", n, labelled, "and score 0")
    return out


def rows(
    tasks: Iterable[_toolgym.Task],
    template: Optional[str] = "tool-n1",
    data_source: str = "toolgym",
    ability: str = "tool_call",
    split: str = "train",
    tool_selection: bool = False,
    agent_name: Optional[str] = None,
) -> List[dict]:
    """The parquet rows of ``write_parquet``, as dicts."""
    if agent_name is not None and not isinstance(agent_name, str):
        raise TypeError(f"agent_name={agent_name!r}: expected the name of a verl agent loop, such as 'tool_agent'")
    out = []
    toolless: List[str] = []
    for index, task in checked(tasks):
        extra_info = {"index": index, "id": task.id, "source": task.source, "split": split}
        if tool_selection:
            extra_info["tool_selection"] = [tool["name"] for tool in task.tools]
            if not task.tools:
                toolless.append(f"tasks[{index}] (id {task.id!r})")
        row = {
            "data_source": data_source,
            "prompt": prompt_messages(task, template),
            "ability": ability,
            "reward_model": {"style": "rule", "ground_truth": task.ground_truth_json()},
            "extra_info": extra_info,
        }
        if agent_name is not None:
            row["agent_name"] = agent_name
        out.append(row)
    if toolless:
        # verl's tool agent loop filters by tool_selection only when it is
        # non-empty: such a row would be shown, and could run, every tool.
        more = f" and {len(toolless) - 3} more" if len(toolless) > 3 else ""
        raise ValueError(
            f"tool_selection=True: {len(toolless)} task(s) list no tools ({', '.join(toolless[:3])}{more}); "
            "verl's tool agent loop reads an empty tool_selection as all of its tools; leave such tasks "
            "out or write without tool_selection"
        )
    return out


def write_parquet(
    tasks: Iterable[_toolgym.Task],
    path: str,
    template: Optional[str] = "tool-n1",
    data_source: str = "toolgym",
    ability: str = "tool_call",
    split: str = "train",
    tool_selection: bool = False,
    agent_name: Optional[str] = None,
) -> int:
    """Writes tasks as verl's RL parquet (see the module docs); returns the
    number of rows. Needs ``pyarrow``. ``tool_selection=True`` adds each
    task's tool names as ``extra_info["tool_selection"]``: verl's tool
    agent loop then shows and runs only those of its tools
    (``toolgym.verl_tools``); a task that lists no tools is then a
    ``ValueError`` (verl reads an empty selection as every tool). ``agent_name`` (``"tool_agent"`` for verl's
    tool agent loop) is written as each row's ``agent_name`` column, which
    picks the row's agent loop in verl 0.9; without it every row runs
    ``rollout.agent.default_agent_loop`` (``single_turn_agent`` unless set:
    no tools shown, none run, whatever ``multi_turn.enable`` says)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("toolgym.verl.write_parquet needs pyarrow: pip install pyarrow") from e
    table = pa.Table.from_pylist(rows(tasks, template, data_source, ability, split, tool_selection, agent_name))
    pq.write_table(table, path)
    return table.num_rows

