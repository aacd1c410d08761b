"""The search fuses its two lists itself; the scores must be the ones Milvus's own hybrid search gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

from core.config import Settings
from knowledge.embeddings import OnnxEmbedder
from knowledge.fusion import Ranker, Rrf, Weighted, fuse
from knowledge.store import Store

CASES = yaml.safe_load((Path(__file__).parent / "retrieval_cases.yaml").read_text())
PAIRS: list[tuple[Ranker, WeightedRanker | RRFRanker]] = [
    (Weighted(dense=0.7, sparse=0.3), WeightedRanker(0.7, 0.3)),
    (Weighted(dense=0.4, sparse=0.6), WeightedRanker(0.4, 0.6)),
    (Rrf(k=60), RRFRanker(60)),
]


@pytest.mark.parametrize(("ours", "milvus"), PAIRS, ids=["weighted-0.7", "weighted-0.4", "rrf-60"])
def test_fused_scores_equal_milvus_hybrid_search(
    docs_corpus: Settings, embedder: OnnxEmbedder, ours: Ranker, milvus: WeightedRanker | RRFRanker
) -> None:
    with Store(docs_corpus, dim=embedder.dim) as store:
        assert store.client is not None
        for case in CASES[::3]:
            vector = embedder.encode_queries([case["q"]]).vectors[0].tolist()
            whole = fuse(store._list(vector, "dense", 20, ""), store._list(case["q"], "sparse", 20, ""), ours)
            fused = whole[:10]
            requests = [
                AnnSearchRequest([vector], "dense", {"metric_type": "COSINE"}, limit=20),
                AnnSearchRequest([case["q"]], "sparse", {"metric_type": "BM25"}, limit=20),
            ]
            theirs = store.client.hybrid_search(store.collection, requests, milvus, limit=10)[0]
            assert [h["distance"] for h in fused] == pytest.approx([h["distance"] for h in theirs], abs=1e-5)
            # Exact ties (RRF: rank n in one list only, on either side) may fall in another order; the rest may not.
            scores = [round(h["distance"], 5) for h in whole]  # a tie may be with an item just past the cut
            untied = [i for i in range(len(fused)) if scores.count(scores[i]) == 1]
            assert [fused[i]["id"] for i in untied] == [str(theirs[i]["id"]) for i in untied], case["q"]
