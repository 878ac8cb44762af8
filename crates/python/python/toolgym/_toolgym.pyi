"""Type stubs of toolgym's native module (the API is re-exported by
``toolgym``)."""

from os import PathLike
from typing import Any, Callable, ClassVar, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

__version__: str

JSON = Any
Completion = Union[str, bytes, Mapping[str, Any], Sequence[Mapping[str, Any]]]
"""Raw text, UTF-8 bytes, an OpenAI-style assistant message (``content``,
``reasoning_content``, ``tool_calls``) or a list of chat messages (the last
assistant message is scored)."""
GroundTruth = Union[str, Sequence[Mapping[str, Any]], Mapping[str, Any]]
"""A list of ``{"name", "arguments"}`` dicts (or one), or its JSON text; for
the ``bfcl-*`` rules a BFCL case dict (``functions``, ``possible_answer``,
``category`` or ``id``) or its JSON text."""
Observation = Dict[str, Any]
"""``{"prompt": str, "messages": list[dict], "tools": list[dict]}``."""
StepResult = Tuple[Observation, float, bool, bool, Dict[str, Any]]
"""``(observation, reward, terminated, truncated, info)``; ``info`` holds
``turn``, ``reason``, ``detail``, ``end``, ``verdicts``, ``calls`` and
``results``."""

class Verdict:
    """A rule's judgement: ``reward``, ``reason`` (``ok``, ``format_error``,
    ``json_error``, ``schema_error``, ``wrong_name``, ``wrong_args``,
    ``missing_call``, ``extra_call``, ``input_error``, …) and ``detail``."""

    reward: float
    reason: str
    detail: str
    def __init__(self, reward: float, reason: str, detail: str = "") -> None: ...
    @property
    def ok(self) -> bool:
        """True when the reason is ``ok``."""
    def to_dict(self) -> Dict[str, Any]:
        """``{"reward", "reason", "detail"}``."""
    def __float__(self) -> float: ...
    def __eq__(self, other: object) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]  # equal by value, not hashable

class Rule:
    """A reward rule by name (see ``rules()``): ``Rule("binary")`` is the
    paper's reward, ``Rule("tool-n1")`` the released script bit for bit.

    Options of the ``binary`` and ``fine-grained`` families: ``think``,
    ``free_text``, ``no_call_without_block`` (bool), ``abs_tol``,
    ``rel_tol`` (float). A wrong type raises ``TypeError`` / ``ValueError``
    naming the argument; a bad completion is a verdict, never an exception.
    Rules with the same name and options are equal (and hash alike).
    """

    def __init__(
        self,
        name: str = "binary",
        *,
        think: bool = ...,
        free_text: bool = ...,
        no_call_without_block: bool = ...,
        abs_tol: float = ...,
        rel_tol: float = ...,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def scores_episodes(self) -> bool:
        """Whether ``episode=True`` is accepted (the ``binary`` and
        ``fine-grained`` families; not ``tool-n1*`` or ``bfcl-*``)."""
    def score(
        self, completion: Completion, ground_truth: GroundTruth, episode: bool = False, reply: bool = False
    ) -> Verdict:
        """Scores one completion. ``episode=True``: a list of messages is one
        multi-step episode (every assistant message a reply, the calls of all
        of them against the ground truth, the last reply may answer without a
        call). ``reply=True``: the completion is a model's reply alone (what
        verl and TRL pass): for the binary and fine-grained families an
        assistant turn header in it is text (a format error), not where the
        answer starts; without it, text is read from its last assistant
        header on (a prompt and its completion together). The ``tool-n1*``
        and ``bfcl-*`` rules read a completion the same way either way.
        Not both."""
    def score_batch(
        self,
        completions: Sequence[Completion],
        ground_truths: Sequence[GroundTruth],
        threads: Optional[int] = None,
        errors: Literal["raise", "verdict"] = "raise",
        episode: bool = False,
        reply: bool = False,
    ) -> List[Verdict]:
        """Scores pairs in parallel without the GIL; verdicts in input order.
        ``threads``: at most 1024. ``errors="verdict"``: an item that cannot be
        read gets an ``input_error`` verdict instead of raising. ``episode``,
        ``reply``: as for ``score``."""
    def rewards(
        self,
        completions: Sequence[Completion],
        ground_truths: Sequence[GroundTruth],
        threads: Optional[int] = None,
        errors: Literal["raise", "verdict"] = "raise",
        episode: bool = False,
        reply: bool = False,
    ) -> List[float]:
        """``score_batch``, the rewards only. With ``errors="verdict"`` an
        item that cannot be read scores 0, and one ``UserWarning`` per call
        says how many did and why the first (``score_batch`` gives each
        one's reason)."""

def rules() -> List[Tuple[str, str]]:
    """The built-in rules: ``(name, description)`` pairs."""

def match_calls(
    calls: GroundTruth, ground_truth: GroundTruth, abs_tol: Optional[float] = None, rel_tol: Optional[float] = None
) -> Verdict:
    """Whether the calls match the ground truth order-free (the envs'
    ``calls-match``): reason ``ok``, ``missing_call``, ``extra_call``,
    ``wrong_name`` or ``wrong_args``. Calls may be in OpenAI's
    ``{"type": "function", "function": {...}}`` form (arguments as JSON
    text), as TRL's parser gives them."""

def chatml_turns(text: str) -> List[Tuple[Optional[str], str]]:
    """The turns of a ChatML text with its special tokens kept: ``(role,
    text)`` pairs, ``role`` ``None`` for the text before the first header.
    A header is ``<|im_start|>ROLE\\n`` at the start of the text or right
    after an end token (``<|im_end|>``, ``<|endoftext|>``)."""

class Task:
    """One task (``toolgym prepare``'s JSONL form).

    ``messages`` is the user's text, or a list of message dicts
    (``role``, ``content``, an assistant's ``tool_calls`` as
    ``{"name", "arguments"}`` or in OpenAI's ``{"type": "function",
    "function": {"name", "arguments": <JSON text>}}`` form; ``content``
    may be ``None``). A message that cannot be read is named by its place
    (``messages[2]``)."""

    def __init__(
        self,
        messages: Union[str, Sequence[Mapping[str, Any]]],
        ground_truth: Optional[GroundTruth] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        id: str = "task",
        source: str = "python",
    ) -> None: ...
    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "Task": ...
    @staticmethod
    def from_json(line: str) -> "Task": ...
    @property
    def id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def tools(self) -> List[Dict[str, Any]]: ...
    @property
    def messages(self) -> List[Dict[str, Any]]: ...
    @property
    def ground_truth(self) -> List[Dict[str, Any]]: ...
    @property
    def meta(self) -> Dict[str, Any]: ...
    @property
    def query(self) -> Optional[str]: ...
    def ground_truth_json(self) -> str:
        """The expected calls as JSON text."""
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def prompt(self, template: str = "tool-n1") -> str:
        """The prompt text for generation."""
    def chat(self, template: str = "tool-n1") -> List[Dict[str, str]]:
        """The prompt as ``{"role", "content"}`` messages (system message
        with the instructions and tools first)."""
    def target(self, template: str = "tool-n1") -> str:
        """The reference reply, without the end-of-turn token."""
    def __eq__(self, other: object) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]  # equal by value, not hashable

def load_tasks(path: Union[str, PathLike[str]], strict: bool = False) -> List[Task]:
    """Tasks from JSONL; bad lines are skipped with one warning (or raise
    ``ValueError`` with ``strict=True``)."""

def write_tasks(tasks: Sequence[Task], path: Union[str, PathLike[str]]) -> int: ...
def synthetic_tasks(
    n: int = 100, split: str = "train", seed: int = 0, difficulty: str = "standard"
) -> List[Task]:
    """Tasks of the built-in synthetic environment (deterministic)."""

def load_bfcl(path: Union[str, PathLike[str]]) -> List[Task]:
    """BFCL cases (a ``BFCL_v*_<category>.json`` file or a folder) as tasks."""

def templates() -> List[Tuple[str, str]]:
    """The prompt templates: ``(name, description)`` pairs."""

class SingleTurnEnv:
    """One task, one completion, one reward (the paper's setting)."""

    def __init__(self, task: Task, rule: str = "binary", template: str = "tool-n1") -> None: ...
    def reset(self, seed: Optional[int] = None) -> Tuple[Observation, Dict[str, Any]]: ...
    def step(self, action: Completion, cut: bool = False) -> StepResult:
        """``cut=True``: a length limit cut the completion off (scored as written)."""
    def demonstration(self) -> Optional[str]: ...

class Tool:
    """A Python tool: JSON-Schema ``parameters`` (checked in Rust; read
    strictly: a malformed keyword or an unknown type name is a
    ``ValueError`` naming it by JSON pointer, where task files' tools are
    read leniently) and a
    ``handler(**arguments)`` whose exceptions (``Exception`` subclasses)
    become tool-error results; any other ``BaseException``
    (``KeyboardInterrupt``, ``SystemExit``, ``asyncio.CancelledError``,
    ``GeneratorExit``) is raised again after the call."""

    def __init__(
        self, name: str, description: str, parameters: Mapping[str, Any], handler: Callable[..., JSON]
    ) -> None: ...
    @property
    def name(self) -> str: ...
    def to_openai(self) -> Dict[str, Any]: ...
    def call(self, arguments: Dict[str, Any]) -> Dict[str, Any]:
        """Runs the tool as an env runs a call (schema first, then the
        handler): ``{"name", "result", "ok": True}`` or ``{"name", "error",
        "ok": False}``."""

class MultiTurnEnv:
    """A multi-turn episode with Python tools; reward 1 at the end when the
    episode's calls match the task's ground truth (``reward="calls-match"``),
    or, with ``reward="binary"``, when every reply is also well formed (the
    paper's rule over the episode; the think block as the template asks).
    Every tool the task lists must be among ``tools`` with the same
    parameters (else ``ValueError``)."""

    def __init__(
        self,
        task: Task,
        tools: Sequence[Union[Tool, Mapping[str, Any]]],
        template: str = "tool-n1-multi-turn",
        max_turns: int = 8,
        reward: str = "calls-match",
    ) -> None: ...
    def reset(self, seed: Optional[int] = None) -> Tuple[Observation, Dict[str, Any]]: ...
    def step(self, action: Completion, cut: bool = False) -> StepResult:
        """``cut=True``: a length limit cut the reply off; where it would have
        ended the episode, the episode is truncated as ``token_limit``."""
    @property
    def messages(self) -> List[Dict[str, Any]]: ...
