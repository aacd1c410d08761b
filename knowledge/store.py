"""The Milvus collection of one corpus: dense MiniLM vectors, Milvus's built-in BM25, and token states for re-ranking.

The schema version is part of the collection's name (``<milvus.collection>__v1``), so a new schema
starts a new collection instead of misreading an old one; a collection whose vectors have another
dimension (another embedding model) is refused with the fix (re-ingest with ``--rebuild``). Filter
fields are plain VARCHARs (JSON-path filters are slow in Milvus Lite).

Hybrid search fuses the dense and BM25 lists, then re-ranks the fused candidates by late interaction
(:mod:`knowledge.late`) when the embedder gave the query's token states. The IDF weights that re-ranking
needs live in a side collection (:mod:`knowledge.frequencies`), recounted by each ingest.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from core.config import Settings
from core.endpoints import milvus_endpoint
from core.errors import BackendUnavailable, KnowledgeError
from knowledge.frequencies import TokenFrequencies
from knowledge.fusion import Ranker, Weighted, fuse
from knowledge.late import (
    ChunkStates,
    StateCache,
    TokenStates,
    idf_weights,
    maxsim_each,
    pack_ids,
    pack_states,
    unpack_states,
)
from knowledge.milvus_errors import translating
from knowledge.reads import LiteReads, Reads, client_options, in_process, is_lite_path, open_engine, reads_for

if TYPE_CHECKING:  # the chunker pulls in the loaders and ftfy (~50 ms), which a search does not need
    from pymilvus import MilvusClient

    from knowledge.chunking import Chunk

__all__ = ["SCHEMA_VERSION", "Hit", "Store", "quoted"]

SCHEMA_VERSION = "v3"  # v3: token states for re-ranking; v2: BM25 over heading path and text; v1: text alone
Mode = Literal["hybrid", "dense", "bm25"]
# Score fusion of dense and BM25 results, chosen on the lab-docs set (tests/knowledge/retrieval_cases.yaml):
# weighted 0.7/0.3 recall@1 0.79 / @5 0.94, RRF(k=60) 0.72 / 0.94, 0.5/0.5 0.77 / 0.89. The package-README
# set (kept out of the choice) would prefer more BM25 (0.4/0.6: 0.73 / 0.93); see bench/knowledge.py.
FUSION: Ranker = Weighted(dense=0.7, sparse=0.3)
# At most this many hits from one section in a result (0: no limit). Rows of one table are chunks of their own;
# without a cap a question near a table gets five rows of it and nothing else (the eval's "how many nodes does
# the Kubernetes cluster have" got three rows of the node table, not the Kubernetes page).
PER_SECTION = 2
# Re-rank the fused candidates by late interaction (off: the fused order stands; bench/knowledge.py compares).
RERANK = True
# How much the late-interaction score counts next to the fused score (0..1). Chosen on the lab-docs set:
# weight 2 -> recall@1 0.81, 5 -> 0.87, 10 -> 0.85, all @5 0.96-0.98; the README set was only reported.
RERANK_WEIGHT = 5.0
# Each first-stage list is at least this long, whatever k: the agent asks for k=3, and k*4 handed the re-ranker 12
# candidates per list, so "how do I reach the lab's databases from my laptop?" lost access.md § Getting in from
# outside, which the re-ranker ranks second once it sees it. Measured at k=3 (2026-12-05, own pages / READMEs):
# floor 0 (12): @1 0.85 @3 0.91 / 0.81 0.96; 20: 0.83 0.96 / 0.81 0.96; 24: 0.81 0.96; 32 or 64: 0.79 0.96 /
# 0.82 0.96. 20 is what k=5, on which the fusion and re-rank weights were chosen, already fetched.
CANDIDATES = 20
# Token states already read, shared by every Store of this process (a long-running server re-ranks from memory).
_STATES = StateCache()
_HIT_FIELDS = ("text", "source", "section", "title")  # what a hit carries besides its id and score
# Bytes of rows per upsert call: gRPC caps a message (Milvus Lite at 256 MB, a Milvus server's proxy by its
# configuration), and a 10 000-chunk page (Node.js's all.html) is ~700 MB of rows with its token states.
UPSERT_BYTES = 16 * 2**20
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="labops-bm25")  # the BM25 half of hybrid searches


@dataclass(kw_only=True, frozen=True)
class Hit:
    """A retrieved chunk."""

    text: str
    source: str
    section: str
    title: str
    score: float  # the fused dense/BM25 score (0..1 with the weighted fusion): how relevant, not where it ranks
    id: str = ""
    # Where the hit stood in each ranking before fusion (``labops search --explain``); None: not in that top list.
    dense_rank: int | None = None
    bm25_rank: int | None = None
    # The late-interaction score the re-ranking added (None: not re-ranked).
    late_score: float | None = None

    @property
    def rank_score(self) -> float:
        """What the hits are ordered by: the fused score plus the re-ranking's weighted word-match score."""
        return self.score + RERANK_WEIGHT * (self.late_score or 0.0)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``labops search --json``)."""
        return {**self.__dict__, "rank_score": round(self.rank_score, 4)}


class Store:
    """One corpus collection.

    ``read_only`` (a search and nothing else, e.g. ``labops search``): a Milvus Lite directory is then read
    through its engine alone, without importing pymilvus or starting its gRPC server (a fresh ``labops
    search``: median 1.17 s against 1.33 s); an empty directory stays empty (:attr:`empty`) instead of
    getting a collection.
    """

    def __init__(self, settings: Settings, *, dim: int, read_only: bool = False) -> None:
        uri, token = milvus_endpoint(settings)
        if is_lite_path(uri):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)  # Milvus Lite creates the .db, not its folder
        self.collection = f"{settings.milvus.collection}__{SCHEMA_VERSION}"
        self.dim = dim
        self.empty = False  # read-only and nothing was ever ingested: every search finds nothing
        self._engine: Any = None  # a Milvus Lite engine this store opened itself (closed with it)
        self.client: MilvusClient | None = None
        self._writes: MilvusClient | None = None  # the client, its failures translated (None: read-only)
        self.reads: Reads
        if read_only and in_process(uri):
            db, owned = open_engine(uri)
            self._engine = db if owned else None
            self.reads = LiteReads(db, uri)
            self.df = TokenFrequencies(None, self.collection, reads=self.reads)
            self._open_lite(db)
            return
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        try:
            with _lite_start_errors() as why:
                self.client = MilvusClient(uri=uri, token=token or "", **client_options(uri))
        except (MilvusException, OSError, RuntimeError) as exc:
            if not why:
                raise BackendUnavailable("Milvus", f"cannot open {uri}: {exc}", setting="milvus.uri") from exc
            # pymilvus says only "Open local milvus failed"; Milvus Lite's own reason is the one to show.
            fix = (
                "; Milvus Lite lets one process at a time open a directory: wait for the other process or stop it, "
                "run `labops lab up` so that one Milvus server serves the directory to every process, or point "
                "milvus.uri at a Milvus server"
                if "lock" in why[0]
                else ""
            )
            raise BackendUnavailable("Milvus Lite", f"cannot open {uri}: {why[0]}{fix}", setting="milvus.uri") from exc
        self._writes = translating(self.client, uri)  # failures arrive as KnowledgeError / BackendUnavailable
        self.reads = reads_for(self.client, uri)  # query-time reads; in-process when this process serves Milvus Lite
        self.df = TokenFrequencies(self._writes, self.collection, reads=self.reads)
        self._ensure(self._writes)

    def _open_lite(self, db: Any) -> None:
        """Check and load the collections through the Milvus Lite engine (the read-only path)."""
        if not db.has_collection(self.collection):
            self.empty = True
            return
        chunks = db.get_collection(self.collection)
        dim = next((int(f.dim or 0) for f in chunks.schema.fields if f.name == "dense"), 0)
        self._check_dim(dim)
        chunks.load()
        if db.has_collection(self.df.name):
            db.get_collection(self.df.name).load()

    def _check_dim(self, dim: int) -> None:
        if dim != self.dim:
            raise KnowledgeError(
                f"collection {self.collection!r} holds {dim}-dimensional vectors, the embedder makes {self.dim}: "
                "re-ingest with `labops ingest --rebuild PATH` (or set milvus.collection)"
            )

    def _writer(self) -> MilvusClient:
        if self._writes is None:
            raise KnowledgeError("this store was opened read-only: open it without read_only for anything but a search")
        return self._writes

    def _ensure(self, c: MilvusClient) -> None:
        from pymilvus import DataType, Function, FunctionType

        if c.has_collection(self.collection):
            fields = {f["name"]: f.get("params") or {} for f in c.describe_collection(self.collection)["fields"]}
            self._check_dim(int(fields.get("dense", {}).get("dim", 0)))
            c.load_collection(self.collection)
            self.df.ensure()
            return
        schema = c.create_schema(auto_id=False, description=SCHEMA_VERSION)
        schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
        schema.add_field("source", DataType.VARCHAR, max_length=512)
        schema.add_field("title", DataType.VARCHAR, max_length=512)
        schema.add_field("section", DataType.VARCHAR, max_length=1024)
        schema.add_field("text", DataType.VARCHAR, max_length=16384)
        # What BM25 reads: the title and heading path, then the text (a README's name is rarely in its rows).
        schema.add_field("passage", DataType.VARCHAR, max_length=17408, enable_analyzer=True)
        schema.add_field("chunk_index", DataType.INT64)
        # Token states (knowledge.late.pack_states) and token ids; empty when the embedder has none (Ollama).
        schema.add_field("tokens", DataType.VARCHAR, max_length=65535)
        schema.add_field("token_ids", DataType.VARCHAR, max_length=4096)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["passage"],
                output_field_names=["sparse"],
            )
        )
        index = c.prepare_index_params()
        index.add_index(field_name="dense", index_type="AUTOINDEX", metric_type="COSINE")
        index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        c.create_collection(self.collection, schema=schema, index_params=index)
        c.load_collection(self.collection)
        self.df.ensure()

    def drop(self) -> None:
        """Remove the collection (``--rebuild``)."""
        client = self._writer()
        for name in (self.collection, self.df.name):
            if client.has_collection(name):
                client.drop_collection(name)
        self._ensure(client)

    def rows(
        self, chunks: list[Chunk], vectors: np.ndarray[Any, Any], tokens: list[TokenStates] | None = None
    ) -> list[dict[str, Any]]:
        """Chunks as the collection's rows: dense vectors, packed token states (BM25 vectors are Milvus's work).

        Packing right after embedding keeps a big document's states at ~65 kB a chunk instead of the
        ~390 kB of float32 the embedder returns.
        """
        states = tokens if tokens is not None else [None] * len(chunks)
        return [
            {
                "id": c.id,
                "source": c.source,
                "title": c.title[:500],
                "section": c.section[:1000],
                "text": c.text[:16000],
                "passage": c.embed_text[:17000],
                "chunk_index": c.index,
                "tokens": pack_states(t.vectors) if t is not None else "",
                "token_ids": pack_ids(t.ids) if t is not None else "",
                "dense": v.tolist(),
            }
            for c, v, t in zip(chunks, vectors, states, strict=True)
        ]

    def upsert(self, rows: list[dict[str, Any]]) -> None:
        """Write rows in calls of at most :data:`UPSERT_BYTES` (one call for a big document overflowed gRPC)."""
        batch: list[dict[str, Any]] = []
        size = 0
        for row in rows:
            row_size = _row_bytes(row)
            if batch and size + row_size > UPSERT_BYTES:
                self._writer().upsert(self.collection, batch)
                batch, size = [], 0
            batch.append(row)
            size += row_size
        if batch:
            self._writer().upsert(self.collection, batch)

    def ids_of(self, source: str) -> set[str]:
        """The ids of one document's chunks."""
        # Without a limit a query returns every match: Milvus Lite does; a Milvus server is documented to cap
        # only queries that set one (16 384). A document of more chunks than that is a guess left untested.
        rows = self._writer().query(self.collection, filter=f"source == {quoted(source)}", output_fields=["id"])
        return {str(r["id"]) for r in rows}

    def delete_ids(self, ids: list[str]) -> None:
        """Remove chunks by id, a thousand per call."""
        for start in range(0, len(ids), 1000):
            self._writer().delete(self.collection, ids=ids[start : start + 1000])

    def delete_source(self, source: str) -> None:
        """Remove every chunk of one document."""
        self._writer().delete(self.collection, filter=f"source == {quoted(source)}")

    def flush(self) -> None:
        """Make inserts durable and visible."""
        self._writer().flush(self.collection)

    def query(self, filter_expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """Rows matching a Milvus filter expression, with ``fields`` (every match: see :meth:`ids_of`)."""
        return list(self._writer().query(self.collection, filter=filter_expr, output_fields=fields))

    def count(self) -> int:
        """Chunks stored."""
        rows = self._writer().query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def start_bm25(self, query: str, *, k: int, source_prefix: str | None = None) -> Future[list[dict[str, Any]]]:
        """Begin the BM25 half of a hybrid search (it needs no vector: it runs while the question is embedded)."""
        return _POOL.submit(self._list, query, "sparse", _pool(k), _prefix_filter(source_prefix))

    def search(
        self,
        query: str,
        vector: np.ndarray[Any, Any],
        *,
        k: int,
        mode: Mode = "hybrid",
        source_prefix: str | None = None,
        explain: bool = False,
        tokens: TokenStates | None = None,
        bm25: Future[list[dict[str, Any]]] | None = None,
    ) -> list[Hit]:
        """Top ``k`` chunks: dense, BM25, or both fused (:data:`FUSION`) and re-ranked by the query's ``tokens``.

        ``explain`` adds each hit's rank in the dense and the BM25 list; ``bm25`` is :meth:`start_bm25`'s result.
        """
        expr = _prefix_filter(source_prefix)
        rerank = RERANK and mode == "hybrid" and tokens is not None and len(tokens.ids) > 0
        # More than k are fetched so that one section's many small chunks (a table's rows) cannot fill the list;
        # a re-ranked search takes every fused candidate (both lists whole).
        wide = 2 * _pool(k) if rerank else k * 3 if PER_SECTION else k
        if mode == "hybrid":
            pending = bm25 or self.start_bm25(query, k=k, source_prefix=source_prefix)
            dense = self._list(vector.tolist(), "dense", _pool(k), expr)
            items = self._scored(fuse(dense, pending.result(), FUSION), vector)[:wide]
            # Fusing gave each hit's rank in both lists; ``--explain`` shows them.
            hits = [
                replace(_hit(i), dense_rank=i["dense_rank"], bm25_rank=i["bm25_rank"]) if explain else _hit(i)
                for i in items
            ]
        else:
            data: Any = vector.tolist() if mode == "dense" else query
            hits = [_hit(item) for item in self._list(data, "dense" if mode == "dense" else "sparse", wide, expr)]
        if rerank and tokens is not None:
            # Read after the lists, not beside them: Milvus Lite serves requests in threads of this process, so
            # a third request in flight only contends for the GIL (measured: ~1 ms slower, not faster).
            hits = self._rerank(hits, tokens, *self.df.lookup(tokens.ids))
        hits = _diverse(hits, k)
        if explain and hits and mode != "hybrid":
            hits = self._explain(hits, query, vector, _pool(k), expr)
        return hits

    def _scored(self, items: list[dict[str, Any]], vector: np.ndarray[Any, Any]) -> list[dict[str, Any]]:
        """The fused items, those that BM25 alone found given the dense score they have, best first again.

        A chunk under the dense list's cut-off still has a cosine with the question; counting it as 0 took ~0.45
        off its fused score, so a chunk sharing the question's rarest words ("laptop": BM25 rank 2, dense rank
        40) fell below chunks that merely made both lists, and never reached the re-ranker's top.
        """
        if not isinstance(FUSION, Weighted):
            return items  # reciprocal-rank fusion scores ranks, and a chunk under the cut-off has none
        missing = [str(i["id"]) for i in items if i["dense_rank"] is None]
        if not missing:
            return items
        query = vector / max(float(np.linalg.norm(vector)), 1e-12)
        cosines: dict[str, float] = {}
        for row in self.reads.get(self.collection, missing, ["dense"]):
            stored = np.asarray(row["dense"], dtype=np.float32)
            cosines[str(row["id"])] = float(stored @ query) / max(float(np.linalg.norm(stored)), 1e-12)
        completed = [
            {**i, "distance": i["distance"] + FUSION.dense * (1.0 + cosines[i["id"]]) / 2.0}
            if i["dense_rank"] is None and i["id"] in cosines
            else i
            for i in items
        ]
        return sorted(completed, key=lambda e: -e["distance"])

    def _list(self, data: Any, field: Literal["dense", "sparse"], limit: int, expr: str) -> list[dict[str, Any]]:
        """One ranked list: the dense vectors by cosine, or BM25 over the passage text."""
        metric: Literal["COSINE", "BM25"] = "COSINE" if field == "dense" else "BM25"
        return self.reads.search(
            self.collection, data, field=field, metric=metric, limit=limit, expr=expr, output=list(_HIT_FIELDS)
        )

    def _states(self, ids: list[str]) -> dict[str, ChunkStates]:
        """Token states of chunks ``ids``: from memory, the rest in one read."""
        found = {i: s for i in ids if (s := _STATES.get((self.collection, i))) is not None}
        missing = [i for i in ids if i not in found]
        if missing:
            for row in self.reads.get(self.collection, missing, ["tokens"]):
                states = unpack_states(row["tokens"], self.dim)
                _STATES.put((self.collection, str(row["id"])), states)
                found[str(row["id"])] = states
        return found

    def _rerank(self, hits: list[Hit], query: TokenStates, df: dict[int, int], chunks: int) -> list[Hit]:
        """Ordered by fused score plus :data:`RERANK_WEIGHT` times the IDF-weighted MaxSim, best first.

        ``score`` stays the fused score: callers judge relevance by it (the agent's passage floor was measured
        on it), and a word-match score is high for any chunk sharing common words with the question.
        """
        weights = idf_weights(query.ids, df, max(chunks, 1))
        states = self._states([h.id for h in hits])
        empty = unpack_states("", self.dim)
        late = maxsim_each(query, weights, [states.get(h.id, empty) for h in hits])
        scored = [replace(h, late_score=round(score, 4)) for h, score in zip(hits, late, strict=True)]
        return sorted(scored, key=lambda h: -h.rank_score)

    def _explain(self, hits: list[Hit], query: str, vector: np.ndarray[Any, Any], limit: int, expr: str) -> list[Hit]:
        """The hits with their rank in the dense and the BM25 list (1-based, within each list's limit)."""
        lists: list[tuple[Any, Literal["dense", "sparse"]]] = [(vector.tolist(), "dense"), (query, "sparse")]
        ranks = [
            {_hit(item).id: i for i, item in enumerate(self._list(data, field, limit, expr), start=1)}
            for data, field in lists
        ]
        return [replace(h, dense_rank=ranks[0].get(h.id), bm25_rank=ranks[1].get(h.id)) for h in hits]

    def close(self) -> None:
        """Release the client or the engine (Milvus Lite allows one process per directory)."""
        if self.client is not None:
            self.client.close()
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _lite_start_errors() -> Iterator[list[str]]:
    """Collect, instead of printing, why Milvus Lite could not start a server for pymilvus.

    milvus-lite logs the failure with its traceback (a directory another process holds, most often) and
    pymilvus then raises a bare "Open local milvus failed"; the caller reports the logged reason once.
    """
    reasons: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            error = record.exc_info[1] if record.exc_info else None
            reasons.append(str(error) if error is not None else record.getMessage())

    logger = logging.getLogger("milvus_lite.server_manager")
    handler, propagate = _Collect(level=logging.ERROR), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield reasons
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _diverse(hits: list[Hit], k: int) -> list[Hit]:
    """The best ``k`` hits with at most :data:`PER_SECTION` from one section (the rest fill in if too few)."""
    if not PER_SECTION:
        return hits[:k]
    kept: list[Hit] = []
    later: list[Hit] = []
    seen: dict[tuple[str, str], int] = {}
    for hit in hits:
        key = (hit.source, hit.section)
        if seen.get(key, 0) < PER_SECTION:
            seen[key] = seen.get(key, 0) + 1
            kept.append(hit)
        else:
            later.append(hit)
    return (kept + later)[:k]


def _hit(item: dict[str, Any]) -> Hit:
    entity = item.get("entity", item)
    return Hit(
        text=entity["text"],
        source=entity["source"],
        section=entity["section"],
        title=entity["title"],
        score=abs(float(item["distance"])),
        id=str(item.get("id", entity.get("id", ""))),
    )


def _row_bytes(row: dict[str, Any]) -> int:
    """About what a row weighs in a request: its strings, its vector as float32, and some framing."""
    return sum(len(v) for v in row.values() if isinstance(v, str)) + 4 * len(row["dense"]) + 256


def _pool(k: int) -> int:
    """How many hits each first-stage list (dense, BM25) hands on for ``k`` results."""
    return max(k * 4, CANDIDATES)


def _prefix_filter(source_prefix: str | None) -> str:
    return f"source like {quoted(source_prefix + '%')}" if source_prefix else ""


def quoted(value: str) -> str:
    """A string as a Milvus filter literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
