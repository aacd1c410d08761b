"""Retrieval quality on a question set: recall@1, recall@5 and query latency, with the misses named.

Two sets exist: ``tests/knowledge/retrieval_cases.yaml`` over the lab's own pages (answer = the right
document) and ``tests/knowledge/foreign/questions.yaml`` over installed packages' READMEs (answer = the
right document *and* a passage holding the fact). The tests assert on them; ``bench/knowledge.py`` prints them.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.embeddings import Embedder
from knowledge.retrieve import search_store
from knowledge.store import Hit, Mode, Store

__all__ = ["Question", "Recall", "load_foreign", "load_own", "measure"]


@dataclass(kw_only=True, frozen=True)
class Question:
    """A question, the document that answers it and (optionally) a fact its passage must hold."""

    q: str
    doc: str
    fact: str | None = None
    kind: str = "prose"

    def found_in(self, hit: Hit) -> bool:
        """Whether ``hit`` answers the question."""
        if hit.source != self.doc:
            return False
        return self.fact is None or _norm(self.fact) in _norm(hit.text)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass(kw_only=True)
class Recall:
    """What a question set measured."""

    n: int = 0
    at1: int = 0
    at5: int = 0
    times_ms: list[float] = field(default_factory=list)
    misses: list[tuple[str, str, list[str]]] = field(default_factory=list)

    @property
    def recall_at_1(self) -> float:
        """Share answered by the first hit."""
        return self.at1 / self.n if self.n else 0.0

    @property
    def recall_at_5(self) -> float:
        """Share answered within five hits."""
        return self.at5 / self.n if self.n else 0.0

    def latency(self) -> tuple[float, float]:
        """Median and p95 query time in ms (embedding the question included)."""
        ordered = sorted(self.times_ms)
        return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def load_own(path: Path) -> list[Question]:
    """The lab-docs set: ``[{q, doc}]``."""
    return [Question(q=c["q"], doc=c["doc"]) for c in yaml.safe_load(path.read_text())]


def load_foreign(path: Path, suffixes: dict[str, str]) -> tuple[dict[str, str], list[Question]]:
    """The package-README set: pinned ``sources`` and questions; ``suffixes`` maps a package to its file suffix."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    cases = [
        Question(q=c["q"], doc=f"{c['source']}{suffixes.get(c['source'], '.md')}", fact=str(c["fact"]), kind=c["kind"])
        for c in data["cases"]
    ]
    return {str(k): str(v) for k, v in data["sources"].items()}, cases


def measure(store: Store, embedder: Embedder, questions: list[Question], *, mode: Mode = "hybrid") -> Recall:
    """Ask every question of ``store`` and count where its answer came."""
    out = Recall()
    for question in questions:
        start = time.perf_counter()
        hits = search_store(store, embedder, question.q, k=5, mode=mode)
        out.times_ms.append((time.perf_counter() - start) * 1000)
        out.n += 1
        ranks = [i for i, hit in enumerate(hits) if question.found_in(hit)]
        out.at1 += bool(ranks) and ranks[0] == 0
        out.at5 += bool(ranks)
        if not ranks or ranks[0] != 0:
            out.misses.append((question.q, question.doc, [f"{h.source} § {h.section}" for h in hits[:3]]))
    return out
