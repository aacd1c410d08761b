"""The documentation search as a service the tools and the agent share (``docs.search`` and the retrieve step)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from core.config import Settings
from core.errors import BackendUnavailable
from knowledge.embeddings import Embedder, embedder_for
from knowledge.retrieve import cite, search_store
from knowledge.screening import screened
from knowledge.store import Hit, Mode, Store, quoted

__all__ = ["DocsService"]


class DocsService:
    """Hybrid search over the lab's documentation; the embedder and the store open on first use."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._store: Store | None = None
        self._lock = threading.Lock()

    def hits(self, query: str, *, k: int = 4, mode: Mode = "hybrid") -> list[Hit]:
        """The ``k`` best passages."""
        with self._lock:
            if self._embedder is None:
                self._embedder = embedder_for(self.settings)
            if self._store is None:
                self._store = Store(self.settings, dim=self._embedder.dim)
            try:
                hits = search_store(self._store, self._embedder, query, k=k, mode=mode)
            except BackendUnavailable:
                # Opened again on the next search: the lab's Milvus server may have restarted elsewhere.
                self._store.close()
                self._store = None
                raise
        # What the agent reads of a page never holds a paragraph written for an AI assistant (knowledge.screening).
        return [replace(h, text=screened(h.text)) for h in hits]

    def chunks(self) -> int:
        """How many chunks the documentation index holds (0: nothing was ingested)."""
        with self._lock:
            store = self._opened()
            return 0 if store.empty else store.count()

    def _opened(self) -> Store:
        if self._embedder is None:
            self._embedder = embedder_for(self.settings)
        if self._store is None:
            self._store = Store(self.settings, dim=self._embedder.dim)
        return self._store

    def documents(self) -> dict[str, str]:
        """Every indexed document: its source (``backup-policy.md``) and title."""
        with self._lock:
            store = self._opened()
            if store.empty:
                return {}
            return {str(r["source"]): str(r["title"]) for r in store.query("chunk_index == 0", ["source", "title"])}

    def document(self, source: str) -> list[dict[str, Any]]:
        """One document's chunks in order, as ``{"section", "text", "citation"}`` (empty: not indexed)."""
        with self._lock:
            store = self._opened()
            if store.empty:
                return []
            rows = store.query(f"source == {quoted(source)}", ["title", "section", "text", "chunk_index"])
        rows.sort(key=lambda r: int(r["chunk_index"]))
        return [
            {"section": r["section"], "text": screened(str(r["text"])),
             "citation": f"[{source} § {r['section'] or r['title']}]"}
            for r in rows
        ]  # fmt: skip

    def search(self, query: str, *, k: int = 4) -> list[dict[str, Any]]:
        """Passages as ``{"text", "source", "section", "citation", "score"}`` (the ``docs.search`` tool's data)."""
        return [
            {"text": h.text, "source": h.source, "section": h.section, "citation": cite(h), "score": round(h.score, 4)}
            for h in self.hits(query, k=k)
        ]

    def close(self) -> None:
        """Release the store (Milvus Lite allows one process per directory)."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
