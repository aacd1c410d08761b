"""Late-interaction re-ranking with the embedder's own token states (MaxSim, as ColBERT scores).

The bi-encoder averages a chunk's token states into one vector, so a fact held by two words of a long
README row ("Milvus 2.2.x | 2.2.15") is averaged away. Keeping each chunk's token states lets the top
candidates be re-scored by how well *every* query word finds its best match in the chunk, weighted by
how rare that word is in the corpus (IDF over chunks). Measured in ``bench/knowledge.py`` on both
question sets; the store decides how much it counts (``knowledge.store.RERANK_WEIGHT``).

Storage: a chunk's token states (384 dimensions each) are quantised to 4 bits with one float16 scale per
dimension and stored base64 in one Milvus VARCHAR (Milvus Lite has no multi-vector field). 4-bit with
per-dimension scales gave the same recall as float32 on both sets; per-token scales and int8 with 2-token
pooling lost 2-4 points. The VARCHAR limit (65 535) holds :data:`MAX_STATES` tokens: a chunk filling the
embedder's whole window (254 tokens) keeps the states of its first 250 only (base85 would fit them all,
but Python decodes it ~50x slower than base64, which alone would cost ~4 ms per candidate).
"""

from __future__ import annotations

import base64
import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ChunkStates",
    "StateCache",
    "TokenStates",
    "idf_weights",
    "maxsim",
    "maxsim_each",
    "pack_ids",
    "pack_states",
    "unpack_ids",
    "unpack_states",
]

_LEVELS = 7  # 4-bit signed: -8..7; scales map each dimension's largest magnitude in the chunk to 7
MAX_STATES = 250  # tokens whose states fit one VARCHAR: ceil((250 * 192 + 768) / 3) * 4 = 65 024 ≤ 65 535


@dataclass(kw_only=True, frozen=True)
class TokenStates:
    """One text's token ids and unit-length token vectors, special tokens removed."""

    ids: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32]


def pack_states(vectors: npt.NDArray[np.float32]) -> str:
    """Token vectors as text: float16 scales per dimension, then 4-bit codes two to a byte, base64."""
    if not len(vectors):
        return ""
    vectors = vectors[:MAX_STATES]
    scales = (np.abs(vectors).max(axis=0) / _LEVELS).astype(np.float16)
    safe = np.where(scales > 0, scales.astype(np.float32), 1.0)
    codes = (np.clip(np.round(vectors / safe), -_LEVELS - 1, _LEVELS) + _LEVELS + 1).astype(np.uint8)
    flat = codes.reshape(-1)
    if len(flat) % 2:
        flat = np.append(flat, np.uint8(0))
    nibbles = (flat[0::2] << 4) | flat[1::2]
    return base64.b64encode(scales.tobytes() + nibbles.astype(np.uint8).tobytes()).decode("ascii")


@dataclass(kw_only=True, frozen=True)
class ChunkStates:
    """A chunk's stored token states: 4-bit codes (as int8, -8..7) and one scale per dimension.

    ``codes`` holds one *column* per token (dimensions x tokens, C order): widened to float32 it is already
    the right operand of the query's matrix product, which measured ~4x faster per candidate than
    transposing a token-per-row copy at every search.
    """

    codes: npt.NDArray[np.int8]
    scales: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.codes.shape[1])

    @property
    def nbytes(self) -> int:
        """Memory held."""
        return int(self.codes.nbytes + self.scales.nbytes)

    def vectors(self) -> npt.NDArray[np.float32]:
        """The dequantised token vectors."""
        return self.codes.T.astype(np.float32) * self.scales


def unpack_states(text: str, dim: int) -> ChunkStates:
    """The token states :func:`pack_states` wrote (no tokens when nothing was stored)."""
    if not text:
        return ChunkStates(codes=np.zeros((dim, 0), dtype=np.int8), scales=np.ones(dim, dtype=np.float32))
    raw = base64.b64decode(text)
    scales = np.frombuffer(raw[: dim * 2], dtype=np.float16).astype(np.float32)
    packed = np.frombuffer(raw[dim * 2 :], dtype=np.uint8)
    codes = np.empty(len(packed) * 2, dtype=np.int8)
    codes[0::2] = packed >> 4
    codes[1::2] = packed & 0x0F
    rows = len(codes) // dim
    codes = codes[: rows * dim] - np.int8(_LEVELS + 1)
    return ChunkStates(codes=np.ascontiguousarray(codes.reshape(rows, dim).T), scales=scales)


def pack_ids(ids: npt.NDArray[np.int64]) -> str:
    """Token ids as space-separated decimals (for the corpus's document frequencies)."""
    return " ".join(str(int(i)) for i in ids)


def unpack_ids(text: str) -> list[int]:
    """The ids :func:`pack_ids` wrote."""
    return [int(t) for t in text.split()]


def idf_weights(query_ids: npt.NDArray[np.int64], df: Mapping[int, int], chunks: int) -> npt.NDArray[np.float32]:
    """One weight per query token: log(1 + N / (1 + df)), so "the" counts little and "2.2" a lot."""
    return np.array([math.log(1 + chunks / (1 + df.get(int(i), 0))) for i in query_ids], dtype=np.float32)


def maxsim(query: TokenStates, weights: npt.NDArray[np.float32], doc: ChunkStates) -> float:
    """Weighted mean over query tokens of their best cosine with any of the chunk's tokens (0 for no tokens)."""
    if not len(doc) or not len(query.vectors) or float(weights.sum()) <= 0:
        return 0.0
    # The scales go onto the query (12 rows), so the codes need only a cheap int8 -> float32 widening.
    best = ((query.vectors * doc.scales) @ doc.codes.astype(np.float32)).max(axis=1)
    return float((best * weights).sum() / weights.sum())


def maxsim_each(query: TokenStates, weights: npt.NDArray[np.float32], docs: Sequence[ChunkStates]) -> list[float]:
    """:func:`maxsim` of every chunk in ``docs``, with BLAS held to one thread.

    Each product is small (~12 x 384 x 200). OpenBLAS would split it over both cores, and its idle workers
    then spin for a while after every call, competing with the next question's embedding: measured ~2.5 ms
    per re-ranked search here, more than the whole MaxSim (~1.3 ms for 31 candidates).
    """
    with _one_blas_thread():
        return [maxsim(query, weights, doc) for doc in docs]


def _one_blas_thread() -> AbstractContextManager[Any]:
    limited: AbstractContextManager[Any] = _blas().limit(limits=1, user_api="blas")
    return limited


@functools.cache
def _blas() -> Any:
    """The threadpoolctl controller, made on first use (it inspects the libraries loaded by then)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class StateCache:
    """Unpacked token states by chunk id, least recently used dropped first, bounded in bytes.

    A chunk id hashes everything that was embedded (knowledge.chunking), so a cached entry never goes
    stale: a changed chunk is a new id. Entries stay 4-bit codes in int8 (a quarter of float32).
    """

    def __init__(self, *, max_bytes: int = 64 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], ChunkStates] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> ChunkStates | None:
        """The states under ``key``, or None."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, str], small: ChunkStates) -> None:
        """Remember ``small`` under ``key``."""
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes -= old.nbytes if old is not None else 0
            self._items[key] = small
            self._bytes += small.nbytes
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.nbytes
