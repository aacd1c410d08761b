"""Incremental ingestion into the corpus collection.

Unchanged files are skipped (content hash), changed files replace their chunks, deleted files lose theirs.
The manifest of what was ingested lives next to the lab's other state
(``<lab_dir>/knowledge.sqlite``), per collection and root folder.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from core.config import Settings
from core.errors import InvalidArguments
from knowledge.chunking import chunk_document
from knowledge.embeddings import Embedder, OnnxEmbedder, embedder_for
from knowledge.loaders import SUFFIXES, load_document
from knowledge.store import Store

__all__ = ["IngestReport", "ingest_paths"]

log = logging.getLogger(__name__)

# Part of each file's recorded hash: a change to loading or chunking re-ingests files whose bytes did not change.
PIPELINE_VERSION = b"loader-3 chunker-4 tokens-1"

Progress = Callable[[int, int, str], None]


@dataclass(kw_only=True)
class IngestReport:
    """What an ingest did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    chunks: int = 0
    truncated: int = 0  # chunks the embedder had to cut (0 unless the chunker is wrong; tested)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for people."""
        if not (self.added or self.updated or self.deleted):
            return f"nothing to do: {len(self.unchanged)} files unchanged"
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.deleted)} deleted, "
            f"{len(self.unchanged)} unchanged; {self.chunks} chunks in {self.seconds:.1f} s"
        )

    def as_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "chunks": self.chunks,
            "truncated": self.truncated,
            "seconds": round(self.seconds, 2),
        }


def _files(path: Path) -> tuple[Path, list[Path]]:
    if not path.exists():
        raise InvalidArguments(f"{path} does not exist; give a folder or file of .md, .txt, .rst or .html")
    if path.is_file():
        return path.parent, [path]
    return path, sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def ingest_paths(
    settings: Settings,
    paths: list[Path],
    *,
    rebuild: bool = False,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
) -> IngestReport:
    """Ingest folders/files into the corpus collection; returns what changed."""
    started = time.monotonic()
    embedder = embedder or embedder_for(settings)
    count = embedder.count_tokens if isinstance(embedder, OnnxEmbedder) else (lambda t: len(t.split()) * 4 // 3)
    store = Store(settings, dim=embedder.dim)
    report = IngestReport()
    cut_before = getattr(embedder, "truncated", 0)
    manifest = settings.lab_dir / "knowledge.sqlite"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    try:
        if rebuild:
            store.drop()
        with closing(sqlite3.connect(manifest, isolation_level=None)) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS files (collection TEXT, root TEXT, source TEXT, sha TEXT, chunks INT, "
                "PRIMARY KEY (collection, root, source))"
            )
            if rebuild:
                db.execute("DELETE FROM files WHERE collection = ?", (store.collection,))
            for path in paths:
                root, files = _files(path.resolve())
                key = str(root)
                known = dict(
                    db.execute(
                        "SELECT source, sha FROM files WHERE collection = ? AND root = ?", (store.collection, key)
                    ).fetchall()
                )
                seen: set[str] = set()
                for i, file in enumerate(files, start=1):
                    doc = load_document(file, root=root)
                    seen.add(doc.source)
                    sha = hashlib.sha256(PIPELINE_VERSION + file.read_bytes()).hexdigest()
                    if progress:
                        progress(i, len(files), doc.source)
                    if known.get(doc.source) == sha:
                        report.unchanged.append(doc.source)
                        continue
                    chunks = chunk_document(doc, count)
                    store.df.mark_stale()
                    store.delete_source(doc.source)
                    encoded = embedder.encode([c.embed_text for c in chunks])
                    store.insert(chunks, encoded.vectors, encoded.tokens)
                    (report.updated if doc.source in known else report.added).append(doc.source)
                    report.chunks += len(chunks)
                    db.execute(
                        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                        (store.collection, key, doc.source, sha, len(chunks)),
                    )
                # Only files that vanished from a folder that was ingested whole are deletions.
                if path.resolve().is_dir():
                    for source in sorted(set(known) - seen):
                        store.df.mark_stale()
                        store.delete_source(source)
                        db.execute(
                            "DELETE FROM files WHERE collection = ? AND root = ? AND source = ?",
                            (store.collection, key, source),
                        )
                        report.deleted.append(source)
        store.flush()
        if report.added or report.updated or report.deleted or not store.df.current():
            store.df.recount()
    finally:
        store.close()
    report.truncated = getattr(embedder, "truncated", 0) - cut_before
    if report.truncated:
        log.warning("%d chunks were longer than the embedder's window and were cut", report.truncated)
    report.seconds = time.monotonic() - started
    return report
