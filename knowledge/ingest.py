"""Incremental ingestion into the corpus collection.

Unchanged files are skipped (content hash), changed files replace their chunks, deleted files lose theirs.
The manifest of what was ingested lives next to the lab's other state
(``<lab_dir>/knowledge.sqlite``), per collection and root folder.

A folder is walked without its hidden entries (``.git``, ``.venv``) and without vendored trees
(``node_modules``, ``site-packages``): a checkout's own documents, not its dependencies'. A file in a
folder that cannot be read as a document (binary, a broken notebook) is skipped and named in the report;
a file named on the command line that cannot be read stops the ingest before anything is written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from core.config import Settings
from core.errors import InvalidArguments
from knowledge.chunking import Chunk, chunk_document
from knowledge.embeddings import Embedder, OnnxEmbedder, embedder_for
from knowledge.loaders import SUFFIXES, Document, UnreadableDocument, load_document
from knowledge.store import Store

__all__ = ["SHIPPED_DOCS", "IngestReport", "ingest_paths"]

# The lab's own pages, shipped with LabOps (``labops lab up`` indexes them).
SHIPPED_DOCS = Path(__file__).resolve().parent / "docs"

log = logging.getLogger(__name__)

# Part of each file's recorded hash: a change to loading or chunking re-ingests files whose bytes did not change.
PIPELINE_VERSION = b"loader-5 chunker-5 tokens-1"
# Chunks embedded per call: their float32 token states (up to ~390 kB each) are packed before the next batch.
EMBED_BATCH = 128
# Folders a walk does not enter besides hidden ones: installed dependencies and caches, not the lab's documents.
VENDORED = frozenset({"node_modules", "site-packages", "dist-packages", "__pycache__", "bower_components"})

Progress = Callable[[int, int, str], None]


@dataclass(kw_only=True)
class IngestReport:
    """What an ingest did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source -> why it could not be read
    chunks: int = 0
    truncated: int = 0  # chunks the embedder had to cut (0 unless the chunker is wrong; tested)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for people."""
        skipped = "".join(f"\nskipped {source}: {why}" for source, why in self.skipped.items())
        if not (self.added or self.updated or self.deleted):
            return f"nothing to do: {len(self.unchanged)} files unchanged" + skipped
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.deleted)} deleted, "
            f"{len(self.unchanged)} unchanged; {self.chunks} chunks in {self.seconds:.1f} s" + skipped
        )

    def as_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "chunks": self.chunks,
            "truncated": self.truncated,
            "seconds": round(self.seconds, 2),
        }


_KINDS = "Markdown, text, reStructuredText, HTML, notebooks, PDF or Word (" + ", ".join(sorted(SUFFIXES)) + ")"


def _files(path: Path) -> tuple[Path, list[Path]]:
    """The folder ``path`` names (or a file's folder) and the documents in it."""
    if path.is_file():
        return path.parent, [path]
    found: list[Path] = []
    for folder, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in VENDORED]
        found += [Path(folder, n) for n in names if not n.startswith(".") and Path(n).suffix.lower() in SUFFIXES]
    return path, sorted(found)


def _check(paths: list[Path]) -> dict[Path, Document]:
    """Refuse, before anything is written, a path that does not exist or a named file that is no document.

    Returns the named files' documents (by resolved path), read once here and used again by the ingest.
    """
    named: dict[Path, Document] = {}
    for path in paths:
        if not path.exists():
            raise InvalidArguments(f"{path} does not exist; give folders or files of {_KINDS}")
        if path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise InvalidArguments(f"{path} is not a document LabOps reads; give files of {_KINDS}")
            try:
                named[path.resolve()] = load_document(path.resolve(), root=path.resolve().parent)
            except UnreadableDocument as exc:
                raise InvalidArguments(f"{exc}; convert it to one of {_KINDS}, or leave it out") from exc
        elif not path.is_dir():
            raise InvalidArguments(f"{path} is neither a file nor a folder; give folders or files of {_KINDS}")
    return named


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
    named = _check(paths)
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
                    source = str(file.relative_to(root))
                    if progress:
                        progress(i, len(files), source)
                    sha = hashlib.sha256(PIPELINE_VERSION + file.read_bytes()).hexdigest()
                    if known.get(source) == sha:  # the same bytes read the same way: nothing to load
                        seen.add(source)
                        report.unchanged.append(source)
                        continue
                    doc = named.get(file) or _load(file, root, report)
                    if doc is None:
                        continue  # not seen: chunks it had from an earlier, readable version go below
                    seen.add(doc.source)
                    chunks = chunk_document(doc, count)
                    store.df.mark_stale()
                    _replace(store, embedder, doc.source, chunks)
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


def _replace(store: Store, embedder: Embedder, source: str, chunks: list[Chunk]) -> None:
    """Make ``chunks`` the document's chunks, :data:`EMBED_BATCH` at a time, its old chunks going last.

    Memory stays bounded by the batch, not by the document (a 10 000-chunk page held 4 GB of float32 token
    states when it was embedded whole). A failure part-way (the embedder, Milvus) removes what this run
    added, so the document stays as it was indexed and the next ingest retries it; a process killed
    part-way leaves both versions' chunks until then, when the old ones go as usual.
    """
    old = store.ids_of(source)
    added: list[str] = []
    try:
        for start in range(0, len(chunks), EMBED_BATCH):
            part = chunks[start : start + EMBED_BATCH]
            encoded = embedder.encode([c.embed_text for c in part])
            store.upsert(store.rows(part, encoded.vectors, encoded.tokens))
            added += [c.id for c in part if c.id not in old]
    except BaseException:
        try:
            store.delete_ids(added)
        except Exception:  # the first failure is the one to report (often the same unreachable Milvus)
            log.warning("could not remove the %d new chunks of %s; the next ingest does", len(added), source,
                        exc_info=True)  # fmt: skip
        raise
    store.delete_ids(sorted(old - {c.id for c in chunks}))


def _load(file: Path, root: Path, report: IngestReport) -> Document | None:
    """The document, or None (and the reason in ``report.skipped``) for a file in a folder that is not one."""
    try:
        return load_document(file, root=root)
    except UnreadableDocument as exc:
        source = str(file.relative_to(root))
        reason = str(exc).removeprefix(f"{source} ")
        log.info("skipped %s: %s", source, reason)  # the report names it too
        report.skipped[source] = reason
        return None
