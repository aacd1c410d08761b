"""Chunks per token id, the re-ranking's IDF: a side collection ``<collection>__df`` next to the chunks.

One row per token id (``df``: how many chunks hold it), plus two rows with negative ids: the number of
chunks (:data:`ALL_CHUNKS`) and, while an ingest is changing chunks and has not recounted yet, a stale mark
(:data:`STALE`), so that an ingest killed in between is completed by the next one. The counts are rebuilt
from the chunks' stored token ids at the end of every ingest that changed something.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from core.errors import KnowledgeError
from knowledge.late import unpack_ids
from knowledge.reads import Reads

if TYPE_CHECKING:
    from pymilvus import MilvusClient

__all__ = ["ALL_CHUNKS", "STALE", "TokenFrequencies", "scan"]

ALL_CHUNKS = -1  # the row holding the number of chunks
STALE = -2  # present while an ingest changes chunks and has not recounted yet
_BATCH = 2000


class TokenFrequencies:
    """The frequency table of one chunk collection."""

    def __init__(self, client: MilvusClient | None, chunks: str, *, reads: Reads) -> None:
        self.client = client  # None: opened read-only (lookups only)
        self.reads = reads  # the query-time lookup's path (knowledge.reads)
        self.chunks = chunks
        self.name = f"{chunks}__df"
        self._marked = False  # this process wrote the stale mark and has not recounted since

    def ensure(self) -> None:
        """Create the table if it is missing, and load it."""
        from pymilvus import DataType

        c = self._writer()
        if c.has_collection(self.name):
            c.load_collection(self.name)
            return
        schema = c.create_schema(auto_id=False, description="chunks per token id")
        schema.add_field("token", DataType.INT64, is_primary=True)
        schema.add_field("df", DataType.INT64)
        schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
        index = c.prepare_index_params()
        index.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
        c.create_collection(self.name, schema=schema, index_params=index)
        c.load_collection(self.name)

    def recount(self) -> int:
        """Count chunks per token id from the chunks' stored ids (after an ingest); returns the tokens counted."""
        counts: dict[int, int] = {}
        chunks = 0
        client = self._writer()
        for row in scan(client, self.chunks, "token_ids"):
            chunks += 1
            for token in set(unpack_ids(row["token_ids"])):
                counts[token] = counts.get(token, 0) + 1
        stale = [t for r in scan(client, self.name, "token") if (t := int(r["token"])) not in counts]
        stale = [t for t in stale if t != ALL_CHUNKS]  # STALE stays in the list: the recount clears it
        rows = [{"token": t, "df": n, "unused": [0.0, 0.0]} for t, n in counts.items()]
        rows.append({"token": ALL_CHUNKS, "df": chunks, "unused": [0.0, 0.0]})
        # Upsert first, then delete what vanished (the stale mark too): a search meanwhile sees old or new counts.
        for start in range(0, len(rows), _BATCH):
            client.upsert(self.name, rows[start : start + _BATCH])
        for start in range(0, len(stale), _BATCH):
            client.delete(self.name, ids=stale[start : start + _BATCH])
        client.flush(self.name)
        self._marked = False
        return len(counts)

    def current(self) -> bool:
        """Whether the counts are current (not missing, not left stale by a killed ingest)."""
        rows = {int(r["token"]) for r in self.reads.get(self.name, [ALL_CHUNKS, STALE], ["df"])}
        return rows == {ALL_CHUNKS}

    def mark_stale(self) -> None:
        """Before an ingest changes chunks: if it dies before :meth:`recount`, the next ingest recounts.

        Written once per recount, however many files the ingest changes.
        """
        if self._marked:
            return
        client = self._writer()
        client.upsert(self.name, [{"token": STALE, "df": 0, "unused": [0.0, 0.0]}])
        client.flush(self.name)
        self._marked = True

    def _writer(self) -> MilvusClient:
        if self.client is None:
            raise KnowledgeError("the frequency table was opened read-only (for searching)")
        return self.client

    def lookup(self, ids: npt.NDArray[np.int64]) -> tuple[dict[int, int], int]:
        """Chunks per token for ``ids`` and the number of chunks (0 before the first count: all weights equal)."""
        wanted = sorted({int(i) for i in ids} | {ALL_CHUNKS})
        rows = self.reads.get(self.name, wanted, ["df"])
        df = {int(r["token"]): int(r["df"]) for r in rows}
        return df, df.pop(ALL_CHUNKS, 0)


def scan(client: MilvusClient, collection: str, field: str) -> Iterator[dict[str, Any]]:
    """Every row's ``field``, read in batches."""
    _ITERATOR_LOG.addFilter(_no_session_ts)  # idempotent: a logger keeps one copy of a filter
    iterator = client.query_iterator(collection, batch_size=_BATCH, filter="", output_fields=[field])
    try:
        while batch := iterator.next():
            yield from batch
    finally:
        iterator.close()


# Milvus Lite has no server-side session timestamp; pymilvus says so at WARNING on every iterator, which
# would print a scary line in the middle of `labops ingest`. The fallback it takes is correct here.
_ITERATOR_LOG = logging.getLogger("pymilvus.client.iterator.query_iterator")


def _no_session_ts(record: logging.LogRecord) -> bool:
    return "failed to get mvccTs" not in record.getMessage()
