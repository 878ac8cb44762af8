"""toolgym: the exact Tool-N1 rewards, tasks and tool-calling environments.

Rewards (``Rule``) score a model's completion -- raw text, UTF-8 bytes, an
OpenAI-style assistant message or a chat transcript -- against ground-truth
calls, in Rust, in parallel and without the GIL for batches::

    import toolgym
    rule = toolgym.Rule("binary")              # the paper's reward
    v = rule.score('<think>...</think><tool_call>[{"name": "f", "arguments": {}}]</tool_call>',
                   [{"name": "f", "arguments": {}}])
    v.reward, v.reason                         # (1.0, 'ok')

Tasks (``load_tasks``, ``synthetic_tasks``, ``load_bfcl``) and environments
(``SingleTurnEnv``, ``MultiTurnEnv`` with Python tools) have the Gymnasium
shape. ``toolgym.verl`` and ``toolgym.trl`` plug the rewards and tasks into
those engines; they import nothing heavy until used.
"""

from ._toolgym import (
    MultiTurnEnv,
    Rule,
    SingleTurnEnv,
    Task,
    Tool,
    Verdict,
    __version__,
    chatml_turns,
    load_bfcl,
    load_tasks,
    match_calls,
    rules,
    synthetic_tasks,
    templates,
    write_tasks,
)

__all__ = [
    "MultiTurnEnv",
    "Rule",
    "SingleTurnEnv",
    "Task",
    "Tool",
    "Verdict",
    "__version__",
    "chatml_turns",
    "load_bfcl",
    "load_tasks",
    "match_calls",
    "rules",
    "synthetic_tasks",
    "templates",
    "write_tasks",
]
