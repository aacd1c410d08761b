"""Fusing the dense and the BM25 result lists the way Milvus's hybrid search does, on the client side.

Searching the two lists from here lets the BM25 search (which needs no vector) run while the question is
being embedded, and gives ``--explain`` each hit's rank in both lists without searching again. The scores
are Milvus's own: a weighted ranker with ``norm_score`` maps a cosine ``d`` to ``(1 + d) / 2`` and a BM25
score ``s`` to ``2 * atan(s) / pi`` (Milvus Lite reports BM25 negated, hence ``abs``); RRF scores
``1 / (k + rank)``. ``tests/knowledge/test_fusion.py`` checks the scores against Milvus Lite's
``hybrid_search`` (to five decimals, order equal except between exact ties).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Ranker", "Rrf", "Weighted", "fuse"]


@dataclass(kw_only=True, frozen=True)
class Weighted:
    """Milvus's ``WeightedRanker(dense, sparse)`` with its default ``norm_score``."""

    dense: float
    sparse: float


@dataclass(kw_only=True, frozen=True)
class Rrf:
    """Milvus's ``RRFRanker(k)``: reciprocal-rank fusion."""

    k: float = 60.0


Ranker = Weighted | Rrf  # not pymilvus's ranker classes: a read-only search does not import pymilvus


def fuse(dense: list[dict[str, Any]], sparse: list[dict[str, Any]], ranker: Ranker) -> list[dict[str, Any]]:
    """Both lists' items in one list, best first: ``{"id", "distance", "entity", "dense_rank", "bm25_rank"}``.

    ``distance`` is the fused score; a rank is None where the item was not in that list.
    """
    scores = (_scorer(ranker, dense=True), _scorer(ranker, dense=False))
    fused: dict[str, dict[str, Any]] = {}
    for which, items, score in (("dense_rank", dense, scores[0]), ("bm25_rank", sparse, scores[1])):
        for rank, item in enumerate(items, start=1):
            key = str(item.get("id"))
            entry = fused.setdefault(
                key,
                {"id": key, "distance": 0.0, "entity": item.get("entity", {}), "dense_rank": None, "bm25_rank": None},
            )
            entry[which] = rank
            entry["distance"] += score(rank, float(item["distance"]))
    return sorted(fused.values(), key=lambda e: -e["distance"])


def _scorer(ranker: Ranker, *, dense: bool) -> Callable[[int, float], float]:
    """One list's contribution to the fused score, from its rank and its distance."""
    if isinstance(ranker, Rrf):
        k = ranker.k
        return lambda rank, _distance: 1.0 / (k + rank)
    if dense:
        weight = ranker.dense
        return lambda _rank, distance: weight * (1.0 + distance) / 2.0
    weight = ranker.sparse
    return lambda _rank, distance: weight * 2.0 * math.atan(abs(distance)) / math.pi
