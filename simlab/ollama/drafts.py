"""Prompt-lookup drafts: guess the next tokens from the context, let the model check several at once.

An assistant answering from passages or tool output copies much of it ("the recovery point objective for
databases is under 4 hours (WAL archive, ...)"). When the last few tokens written also occur earlier in the
context, the tokens that followed them there are a likely continuation. They are evaluated together with the
token just sampled in one batch; the model then samples each position from its own logits and keeps the
drafted tokens only up to the first one it would not have chosen. What is written is what the model samples
at every position (greedy stays greedy), so nothing about the answer is guessed. On this 2-core machine
a batch of nine tokens takes about twice as long as one (about 235 ms against 105 ms after a 300-token
context), so a draft pays when two or more of its tokens are kept, and a context with no match drafts
nothing.

Measured on this machine, the bench's prompts replayed with drafts off and on in turn: the documentation
answers' generation time 35.3 s -> 29.4 s (eight tokens drafted after a match of three or more; the long
how-to answers gain most, 31 tokens 3.95 s -> 2.28 s), while JSON tool calls under a grammar got slower
(31.6 s -> 39.1 s: the prompt's tool definitions suggest wrong continuations), so the engine drafts for
free text only. The batched evaluation rounds differently from the one-token one, so a greedy answer can
differ from the undrafted one in wording after a near-tie (4 of 11 there); both are the model's own output.

llama-cpp-python runs the drafting loop itself (``Llama.generate`` with ``draft_model``), but asks for
logits at every position of every batch, prompt included (a ``n_ctx x n_vocab`` array, 5 GB here).
:class:`DraftingLlama` asks for them only in the short batches that verify drafts. It overrides
``Llama.eval`` and touches its internals (``_ctx``, ``_batch``, ``input_ids``, ``n_tokens``): the version is
pinned in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from llama_cpp import Llama
from llama_cpp.llama_speculative import LlamaDraftModel

__all__ = ["DraftingLlama", "PromptLookup"]


class PromptLookup(LlamaDraftModel):
    """Drafts the tokens that followed the latest earlier occurrence of the context's last ``min_match`` or more."""

    def __init__(self, *, tokens: int = 8, min_match: int = 3, max_match: int = 5) -> None:
        if tokens < 1 or min_match < 1 or max_match < min_match:
            raise ValueError("need tokens >= 1 and 1 <= min_match <= max_match")
        self.tokens = tokens
        self.min_match = min_match
        self.max_match = max_match

    def __call__(self, input_ids: npt.NDArray[np.intc], /, **kwargs: Any) -> npt.NDArray[np.intc]:
        """Up to ``tokens`` drafted tokens for the context ``input_ids`` (empty when nothing matches)."""
        n = len(input_ids)
        # A longer match is a surer guess; the latest occurrence is the nearest text (passages, tool output).
        for size in range(min(self.max_match, n - 1), self.min_match - 1, -1):
            windows = np.lib.stride_tricks.sliding_window_view(input_ids[:-1], size)
            hits = np.flatnonzero(np.all(windows == input_ids[-size:], axis=1))
            if len(hits):
                start = int(hits[-1]) + size
                return np.asarray(input_ids[start : min(start + self.tokens, n)], dtype=np.intc)
        return np.empty(0, dtype=np.intc)


class DraftingLlama(Llama):
    """A ``Llama`` whose short evaluations return logits at every position, so drafts can be verified.

    Long evaluations (the prompt) keep logits for their last position only, as ``Llama`` does without
    ``logits_all``. Set ``draft_model`` after construction (passing it to the constructor turns on
    ``logits_all`` for everything).
    """

    verify_batch = 32

    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluate ``tokens`` after the current ones; logits for all of them when there are few."""
        every = len(tokens) <= self.verify_batch
        self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
        for i in range(0, len(tokens), self.n_batch):
            batch = tokens[i : i + self.n_batch]
            n_past = self.n_tokens
            self._batch.set_batch(batch=batch, n_past=n_past, logits_all=every)
            self._ctx.decode(self._batch)
            self.input_ids[n_past : n_past + len(batch)] = batch
            self.n_tokens += len(batch)
            self._requires_eval = False
