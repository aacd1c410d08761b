"""Ingest throughput, query latency and recall@1/@5 (dense, BM25, hybrid) on the shipped corpus.

Run by hand (uses a temporary Milvus Lite directory)::

    .venv/bin/python -m bench.knowledge
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from core.config import load_settings
from knowledge.embeddings import OnnxEmbedder
from knowledge.ingest import ingest_paths
from knowledge.store import Store

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "knowledge" / "docs"
CASES = ROOT / "tests" / "knowledge" / "retrieval_cases.yaml"


def main() -> int:
    """Entry point."""
    cases = yaml.safe_load(CASES.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, lab_dir=Path(tmp))
        embedder = OnnxEmbedder()
        report = ingest_paths(settings, [DOCS], embedder=embedder)
        print(
            f"ingest: {len(report.added)} documents, {report.chunks} chunks in {report.seconds:.2f} s "
            f"= {report.chunks / report.seconds:.1f} chunks/s (embedding included)"
        )
        store = Store(settings, dim=embedder.dim)
        try:
            for mode in ("dense", "bm25", "hybrid"):
                times, at1, at5 = [], 0, 0
                for case in cases:
                    start = time.perf_counter()
                    vector = embedder.embed([case["q"]])[0]
                    hits = store.search(case["q"], vector, k=5, mode=mode)
                    times.append((time.perf_counter() - start) * 1000)
                    sources = [h.source for h in hits]
                    at1 += bool(sources) and sources[0] == case["doc"]
                    at5 += case["doc"] in sources
                times.sort()
                p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
                print(
                    f"{mode:7} recall@1 {at1 / len(cases):.3f}  recall@5 {at5 / len(cases):.3f}  "
                    f"query median {statistics.median(times):.1f} ms  p95 {p95:.1f} ms  (n={len(cases)})"
                )
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
