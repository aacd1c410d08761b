"""Retrieval over the shipped corpus: recall@5 >= 0.9 on questions phrased the way lab members ask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_settings
from knowledge.embeddings import OnnxEmbedder
from knowledge.ingest import ingest_paths
from knowledge.retrieve import retrieve

DOCS = Path(__file__).resolve().parents[2] / "knowledge" / "docs"
CASES = yaml.safe_load((Path(__file__).parent / "retrieval_cases.yaml").read_text())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxEmbedder) -> tuple[Any, OnnxEmbedder]:
    settings = load_settings(None, lab_dir=tmp_path_factory.mktemp("klab"))
    report = ingest_paths(settings, [DOCS], embedder=embedder)
    assert len(report.added) >= 20
    return settings, embedder


def test_the_corpus_and_the_cases_are_big_enough() -> None:
    assert len(list(DOCS.glob("*.md"))) >= 20
    assert len(CASES) >= 40
    assert {c["doc"] for c in CASES} <= {p.name for p in DOCS.glob("*.md")}


def test_hybrid_recall_at_5(corpus: tuple[Any, OnnxEmbedder]) -> None:
    settings, embedder = corpus
    misses = []
    for case in CASES:
        hits = retrieve(settings, case["q"], k=5, embedder=embedder)
        if case["doc"] not in [h.source for h in hits]:
            misses.append((case["q"], case["doc"], [h.source for h in hits]))
    recall = 1 - len(misses) / len(CASES)
    assert recall >= 0.9, misses
