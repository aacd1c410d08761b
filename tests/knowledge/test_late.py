"""Late-interaction re-ranking: packing of token states, the score, the IDF table an ingest keeps, the cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import knowledge.store as store_module
from core.config import Settings, load_settings
from knowledge.embeddings import OnnxEmbedder
from knowledge.ingest import ingest_paths
from knowledge.late import (
    MAX_STATES,
    ChunkStates,
    StateCache,
    TokenStates,
    idf_weights,
    maxsim,
    maxsim_each,
    pack_states,
    unpack_states,
)
from knowledge.retrieve import retrieve
from knowledge.store import Hit, Store

DIM = 384


def _unit(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_packed_states_keep_each_token_s_direction() -> None:
    vectors = _unit(120, 1)
    back = unpack_states(pack_states(vectors), DIM).vectors()
    cosines = (back * vectors).sum(axis=1) / np.linalg.norm(back, axis=1)
    assert back.shape == vectors.shape and cosines.min() > 0.95


def test_a_full_window_fits_one_milvus_varchar() -> None:
    # 254 tokens is the most a chunk can have (256-token window minus [CLS] and [SEP]).
    text = pack_states(_unit(254, 2))
    assert len(text) <= 65_535
    assert len(unpack_states(text, DIM)) == MAX_STATES


def test_no_states_pack_to_nothing_and_score_zero() -> None:
    empty = unpack_states("", DIM)
    query = TokenStates(ids=np.array([5, 6]), vectors=_unit(2, 3))
    assert pack_states(np.zeros((0, DIM), dtype=np.float32)) == "" and len(empty) == 0
    assert maxsim(query, np.ones(2, dtype=np.float32), empty) == 0.0


def test_maxsim_is_the_weighted_mean_of_each_query_token_s_best_match() -> None:
    doc = _unit(6, 4)
    query = TokenStates(ids=np.array([1, 2]), vectors=np.vstack([doc[2], -doc[5]]))
    states = unpack_states(pack_states(doc), DIM)
    best = (query.vectors @ states.vectors().T).max(axis=1)
    assert maxsim(query, np.array([1.0, 0.0], dtype=np.float32), states) == pytest.approx(best[0], abs=1e-5)
    assert maxsim(query, np.array([1.0, 3.0], dtype=np.float32), states) == pytest.approx(
        (best[0] + 3 * best[1]) / 4, abs=1e-5
    )
    assert best[0] > 0.95  # a token matches itself


def test_scoring_many_chunks_leaves_the_process_s_blas_threads_as_they_were() -> None:
    from threadpoolctl import threadpool_info

    docs = [unpack_states(pack_states(_unit(n, 10 + n)), DIM) for n in (1, 7, 40)] + [unpack_states("", DIM)]
    query = TokenStates(ids=np.array([1, 2, 3]), vectors=_unit(3, 9))
    weights = np.array([1.0, 2.0, 0.5], dtype=np.float32)
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert maxsim_each(query, weights, docs) == [maxsim(query, weights, d) for d in docs]
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


def test_rare_tokens_weigh_more() -> None:
    weights = idf_weights(np.array([10, 20, 30]), {10: 90, 20: 3}, 100)
    assert weights[0] < weights[1] < weights[2]


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    one = unpack_states(pack_states(_unit(10, 5)), DIM)
    cache = StateCache(max_bytes=one.nbytes * 2)
    cache.put(("c", "a"), one)
    cache.put(("c", "b"), one)
    assert cache.get(("c", "a")) is not None  # "a" is now the most recent
    cache.put(("c", "c"), one)
    assert cache.get(("c", "b")) is None and cache.get(("c", "a")) is not None and cache.get(("c", "c")) is not None


TABLE = """# Compatibility

Which client release goes with which server release.

| Server release | Recommended client release |
|---|---|
| 1.0.x | 1.0.1 |
| 1.1.x | 1.1.2 |
| 2.0.x | 2.0.2 |
| 2.1.x | 2.1.3 |
| 2.2.x | 2.2.15 |
| 2.3.x | 2.3.7 |
| 2.4.x | 2.4.9 |

## Upgrading

Upgrade the server first, then the clients, one minor release at a time.
"""


@pytest.fixture()
def compat(tmp_path: Path, embedder: OnnxEmbedder) -> tuple[Settings, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "compat.md").write_text(TABLE)
    (docs / "other.md").write_text("# Other\n\nThe GPU node is booked through the calendar.\n")
    settings = load_settings(None, lab_dir=tmp_path / "lab")
    ingest_paths(settings, [docs], embedder=embedder)
    return settings, docs


def test_reranking_lifts_the_passage_that_matches_every_word(
    compat: tuple[Settings, Path], embedder: OnnxEmbedder
) -> None:
    settings, _ = compat
    texts = {
        "loki": "Loki keeps the logs on node04 and listens on port 3100.",
        "grafana": "Grafana shows the dashboards on node03 and listens on port 3000.",
    }
    encoded = embedder.encode(list(texts.values()))
    assert encoded.tokens is not None
    with Store(settings, dim=DIM) as store:
        for key, states in zip(texts, encoded.tokens, strict=True):
            store_module._STATES.put((store.collection, key), unpack_states(pack_states(states.vectors), DIM))
        # The fused order put Grafana first; only the query's rarest word, "loki", tells the two apart.
        hits = [
            Hit(text=texts["grafana"], source="s.md", section="", title="", score=0.55, id="grafana"),
            Hit(text=texts["loki"], source="s.md", section="", title="", score=0.50, id="loki"),
        ]
        query = embedder.encode(["which port does loki listen on"]).tokens
        assert query is not None
        ranked = store._rerank(hits, query[0], {}, 100)
    assert [h.id for h in ranked] == ["loki", "grafana"]
    assert ranked[0].late_score is not None and ranked[1].late_score is not None
    assert ranked[0].late_score > ranked[1].late_score


def test_search_reports_the_reranking_score(compat: tuple[Settings, Path], embedder: OnnxEmbedder) -> None:
    settings, _ = compat
    hits = retrieve(settings, "recommended client release for a 2.2 server", k=3, embedder=embedder)
    assert hits[0].source == "compat.md"
    assert all(h.late_score is not None for h in hits)
    ranked = [h.score + store_module.RERANK_WEIGHT * (h.late_score or 0.0) for h in hits]
    assert ranked == sorted(ranked, reverse=True)
    assert all(0.0 <= h.score <= 1.0 for h in hits)  # still the fused score relevance floors are measured on


def test_without_token_states_the_fused_order_stands(
    compat: tuple[Settings, Path], embedder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _ = compat
    monkeypatch.setattr(store_module, "RERANK", False)
    hits = retrieve(settings, "recommended client release for a 2.2 server", k=3, embedder=embedder)
    assert hits and all(h.late_score is None for h in hits)


def test_ingest_keeps_the_token_counts_current(compat: tuple[Settings, Path], embedder: OnnxEmbedder) -> None:
    settings, docs = compat
    gpu = embedder.tokenizer.encode("calendar").ids[1]  # only other.md has the word
    with Store(settings, dim=DIM) as store:
        df, chunks = store.df.lookup(np.array([gpu]))
        assert chunks == store.count() and df.get(gpu, 0) >= 1
    (docs / "other.md").unlink()
    ingest_paths(settings, [docs], embedder=embedder)
    with Store(settings, dim=DIM) as store:
        df, chunks = store.df.lookup(np.array([gpu]))
        assert chunks == store.count() and df.get(gpu, 0) == 0


def _counts_deleted(store: Store) -> None:  # killed between the chunks and the first count
    assert store.client is not None
    store.client.delete(store.df.name, filter="token >= -1")
    store.client.flush(store.df.name)


def _marked_stale(store: Store) -> None:  # killed after it began changing chunks (ingest marks first)
    store.df.mark_stale()


@pytest.mark.parametrize("killed", [_counts_deleted, _marked_stale])
def test_an_ingest_killed_before_counting_is_recounted_by_the_next(
    compat: tuple[Settings, Path], embedder: OnnxEmbedder, killed: Callable[[Store], None]
) -> None:
    settings, docs = compat
    with Store(settings, dim=DIM) as store:
        killed(store)
        assert not store.df.current()
    report = ingest_paths(settings, [docs], embedder=embedder)
    assert not report.added and not report.updated  # nothing to re-embed, only the counts to redo
    with Store(settings, dim=DIM) as store:
        assert store.df.current()


def test_chunk_states_widen_to_the_vectors_they_came_from() -> None:
    vectors = _unit(3, 6)
    states = unpack_states(pack_states(vectors), DIM)
    assert isinstance(states, ChunkStates) and states.codes.dtype == np.int8
    assert np.allclose(states.vectors(), vectors, atol=0.08)
