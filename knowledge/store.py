"""The Milvus collection of one corpus: dense MiniLM vectors plus Milvus's built-in BM25 on the text.

The schema version is part of the collection's name (``<milvus.collection>__v1``), so a new schema
starts a new collection instead of misreading an old one; a collection whose vectors have another
dimension (another embedding model) is refused with the fix (re-ingest with ``--rebuild``). Filter
fields are plain VARCHARs (JSON-path filters are slow in Milvus Lite).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, WeightedRanker
from pymilvus.exceptions import MilvusException

from core.config import Settings
from core.endpoints import milvus_endpoint
from core.errors import BackendUnavailable, KnowledgeError
from knowledge.chunking import Chunk

__all__ = ["SCHEMA_VERSION", "Hit", "Store"]

SCHEMA_VERSION = "v2"  # v2: BM25 over the heading path and the text (v1: the text alone)
Mode = Literal["hybrid", "dense", "bm25"]
# Score fusion of dense and BM25 results, chosen on the lab-docs set (tests/knowledge/retrieval_cases.yaml):
# weighted 0.7/0.3 recall@1 0.79 / @5 0.94, RRF(k=60) 0.72 / 0.94, 0.5/0.5 0.77 / 0.89. The package-README
# set (kept out of the choice) would prefer more BM25 (0.4/0.6: 0.73 / 0.93); see bench/knowledge.py.
FUSION = WeightedRanker(0.7, 0.3)
# At most this many hits from one section in a result (0: no limit). Rows of one table are chunks of their own;
# without a cap a question near a table gets five rows of it and nothing else (the eval's "how many nodes does
# the Kubernetes cluster have" got three rows of the node table, not the Kubernetes page).
PER_SECTION = 2


@dataclass(kw_only=True, frozen=True)
class Hit:
    """A retrieved chunk."""

    text: str
    source: str
    section: str
    title: str
    score: float
    id: str = ""
    # Where the hit stood in each ranking before fusion (``labops search --explain``); None: not in that top list.
    dense_rank: int | None = None
    bm25_rank: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``labops search --json``)."""
        return dict(self.__dict__)


class Store:
    """One corpus collection."""

    def __init__(self, settings: Settings, *, dim: int) -> None:
        uri, token = milvus_endpoint(settings)
        if not uri.startswith(("http://", "https://", "tcp://", "unix:")):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)  # Milvus Lite creates the .db, not its folder
        self.collection = f"{settings.milvus.collection}__{SCHEMA_VERSION}"
        self.dim = dim
        try:
            self.client = MilvusClient(uri=uri, token=token or "")
        except (MilvusException, OSError, RuntimeError) as exc:
            raise BackendUnavailable("Milvus", f"cannot open {uri}: {exc}", setting="milvus.uri") from exc
        self._ensure()

    def _ensure(self) -> None:
        c = self.client
        if c.has_collection(self.collection):
            fields = {f["name"]: f.get("params") or {} for f in c.describe_collection(self.collection)["fields"]}
            dim = int(fields.get("dense", {}).get("dim", 0))
            if dim != self.dim:
                raise KnowledgeError(
                    f"collection {self.collection!r} holds {dim}-dimensional vectors, the embedder makes {self.dim}: "
                    "re-ingest with `labops ingest --rebuild PATH` (or set milvus.collection)"
                )
            c.load_collection(self.collection)
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

    def drop(self) -> None:
        """Remove the collection (``--rebuild``)."""
        if self.client.has_collection(self.collection):
            self.client.drop_collection(self.collection)
        self._ensure()

    def insert(self, chunks: list[Chunk], vectors: np.ndarray[Any, Any]) -> None:
        """Add chunks with their dense vectors (BM25 vectors are computed by Milvus)."""
        rows = [
            {
                "id": c.id,
                "source": c.source,
                "title": c.title[:500],
                "section": c.section[:1000],
                "text": c.text[:16000],
                "passage": c.embed_text[:17000],
                "chunk_index": c.index,
                "dense": v.tolist(),
            }
            for c, v in zip(chunks, vectors, strict=True)
        ]
        if rows:
            self.client.upsert(self.collection, rows)

    def delete_source(self, source: str) -> None:
        """Remove every chunk of one document."""
        self.client.delete(self.collection, filter=f"source == {_quote(source)}")

    def flush(self) -> None:
        """Make inserts durable and visible."""
        self.client.flush(self.collection)

    def count(self) -> int:
        """Chunks stored."""
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def search(
        self,
        query: str,
        vector: np.ndarray[Any, Any],
        *,
        k: int,
        mode: Mode = "hybrid",
        source_prefix: str | None = None,
        explain: bool = False,
    ) -> list[Hit]:
        """Top ``k`` chunks: dense, BM25, or both fused (:data:`FUSION`); ``explain`` adds each list's rank."""
        expr = f"source like {_quote(source_prefix + '%')}" if source_prefix else ""
        fields = ["text", "source", "section", "title"]
        dense = AnnSearchRequest(
            data=[vector.tolist()], anns_field="dense", param={"metric_type": "COSINE"}, limit=k * 4, expr=expr
        )
        sparse = AnnSearchRequest(
            data=[query], anns_field="sparse", param={"metric_type": "BM25"}, limit=k * 4, expr=expr
        )
        # More than k are fetched so that one section's many small chunks (a table's rows) cannot fill the list.
        wide = k * 3 if PER_SECTION else k
        if mode == "hybrid":
            res = self.client.hybrid_search(self.collection, [dense, sparse], FUSION, limit=wide, output_fields=fields)
        else:
            req = dense if mode == "dense" else sparse
            res = self.client.search(
                self.collection,
                data=req.data,
                anns_field=req.anns_field,
                limit=wide,
                search_params=req.param,
                filter=expr,
                output_fields=fields,
            )
        hits = _diverse([_hit(item) for item in (res[0] if res else [])], k)
        if explain and hits:
            hits = self._explain(hits, dense, sparse, fields)
        return hits

    def _explain(
        self, hits: list[Hit], dense: AnnSearchRequest, sparse: AnnSearchRequest, fields: list[str]
    ) -> list[Hit]:
        """The hits with their rank in the dense and the BM25 list (1-based, within each list's limit)."""
        ranks: list[dict[str, int]] = []
        for req in (dense, sparse):
            res = self.client.search(
                self.collection,
                data=req.data,
                anns_field=req.anns_field,
                limit=req.limit,
                search_params=req.param,
                filter=req.expr or "",
                output_fields=fields,
            )
            ranks.append({_hit(item).id: i for i, item in enumerate(res[0] if res else [], start=1)})
        return [replace(h, dense_rank=ranks[0].get(h.id), bm25_rank=ranks[1].get(h.id)) for h in hits]

    def close(self) -> None:
        """Release the client (Milvus Lite allows one process per directory)."""
        self.client.close()


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


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
