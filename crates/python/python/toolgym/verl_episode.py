"""A verl reward-loop manager for multi-turn episodes: verl's own
``NaiveRewardManager``, but responses are decoded with their special tokens
kept, so that ``toolgym.verl.compute_score(..., episode=True)`` can split a
tool agent loop's response at its ChatML turn headers (the model's replies,
the tool results between them) and score the episode as one.

verl's managers decode with ``skip_special_tokens=True``, which erases
``<|im_start|>`` and ``<|im_end|>``: a response's replies and tool results
then run together, and no rule can tell them apart. Configure (verl 0.9;
checked against verl 0.9.1 by ``scripts/integration/engines_check.py``)::

    reward.reward_manager.source=importlib
    reward.reward_manager.module.path=pkg://toolgym.verl_episode   # or this file's path
    reward.reward_manager.name=EpisodeRewardManager
    reward.custom_reward_function.path=pkg://toolgym.verl
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.episode=true

This module imports verl (it is loaded by verl's worker); the rest of
toolgym does not.
"""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np
from toolgym.verl import check_chatml, source_names
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

__all__ = ["EpisodeRewardManager"]


class _SpecialTokensKept:
    """A tokenizer whose ``decode`` keeps special tokens; everything else is
    the wrapped tokenizer's."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    def decode(self, token_ids: Any, skip_special_tokens: bool = False, **kwargs: Any) -> str:
        # The padding after a response is cut by verl (attention mask) before decoding.
        return self._tokenizer.decode(token_ids, skip_special_tokens=False, **kwargs)

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False, **kwargs: Any) -> list:
        return self._tokenizer.batch_decode(sequences, skip_special_tokens=False, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Only for names the proxy lacks; never for its own field or dunders, so a
        # copy or an unpickling (which look them up before __init__ ran) does not recurse.
        if name == "_tokenizer" or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(name)
        return getattr(self.__dict__["_tokenizer"], name)


def _sources_of(config: Any) -> Optional[List[str]]:
    """``reward.custom_reward_function.reward_kwargs.sources`` as
    ``toolgym.verl.source_names`` reads it (``None`` when unset)."""
    try:
        sources = config.reward.custom_reward_function.reward_kwargs.get("sources")
    except AttributeError:
        return None
    return source_names(sources)


class EpisodeRewardManager(NaiveRewardManager):
    """verl's ``NaiveRewardManager`` (one ``compute_score`` call per
    response, with ``data_source``, ``ground_truth`` and ``extra_info``),
    the response decoded with its special tokens kept. Use it with
    ``toolgym.verl.compute_score`` and ``reward_kwargs.episode=true``."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any, *args: Any, **kwargs: Any) -> None:
        check_chatml(tokenizer)  # another template's episodes would all score 0
        super().__init__(config, _SpecialTokensKept(tokenizer), compute_score, *args, **kwargs)
        # Rows of other data sources (reward_kwargs.sources) are decoded as
        # verl decodes them, for verl's own scorers: a kept <|im_end|> would
        # be part of a math answer.
        self._sources = _sources_of(config)
        self._plain = NaiveRewardManager(config, tokenizer, compute_score, *args, **kwargs)

    async def run_single(self, data: Any) -> dict:
        # verl's run_single writes the response's turn count into the row's
        # extra_info, then awaits the decode, then scores: the n samples of
        # a prompt share one extra_info dict (DataProto.repeat), and scored
        # concurrently one would read a sibling's count. Each gets its own.
        data = data[-1:]
        if self._sources is not None:
            source = data.non_tensor_batch["data_source"][0]
            if source not in self._sources:
                return await self._plain.run_single(data)
        infos = data.non_tensor_batch.get("extra_info")
        if infos is not None:
            own = np.empty(len(infos), dtype=object)
            for k, info in enumerate(infos):
                own[k] = dict(info) if isinstance(info, dict) else info
            data.non_tensor_batch["extra_info"] = own
        return await super().run_single(data)
