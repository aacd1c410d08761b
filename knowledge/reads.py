"""How a store reads Milvus at query time: through pymilvus, or straight from the Milvus Lite engine of this process.

Milvus Lite 3 is a Python engine behind a gRPC adapter that runs in threads of the same process. A search
through pymilvus serialises the request, crosses a local socket to a server thread, and builds the reply
again: ~1.3 ms per list here, out of ~2.5 to 3 ms. When this process holds the Lite data directory itself
(pymilvus serves it from here, or a read-only store opened it), the store's query-time reads (the two
ranked lists and the point reads of re-ranking) call the engine's own ``Collection`` instead. Everything
else (schema, writes, scans) stays on pymilvus, the one path a Milvus server also takes; the tests check
that both read paths give the same answers.

Either path turns a failure into :class:`~core.errors.BackendUnavailable` (the server did not answer) or
:class:`~core.errors.KnowledgeError` (it refused the request), so a search never crashes on a dependency.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

from core.errors import BackendUnavailable, KnowledgeError
from knowledge.milvus_errors import translating

if TYPE_CHECKING:  # a read-only search of a Milvus Lite directory runs without pymilvus (knowledge.store)
    from pymilvus import MilvusClient

__all__ = [
    "ClientReads",
    "LiteReads",
    "Reads",
    "client_options",
    "in_process",
    "is_lite_path",
    "open_engine",
    "reads_for",
]

log = logging.getLogger(__name__)
Metric = Literal["COSINE", "BM25"]
# Set False to send every read through pymilvus (bench/knowledge.py compares the two paths).
IN_PROCESS = True


class Reads(Protocol):
    """The reads a search makes."""

    uri: str  # where they go (for messages)

    def search(
        self, collection: str, data: Any, *, field: str, metric: Metric, limit: int, expr: str, output: list[str]
    ) -> list[dict[str, Any]]:
        """One ranked list: ``[{"id", "distance", "entity": {field: value}}]``, best first."""
        ...

    def get(self, collection: str, ids: list[Any], output: list[str]) -> list[dict[str, Any]]:
        """The rows with primary keys ``ids`` (missing ones left out), each with its key and ``output``."""
        ...


class ClientReads:
    """Reads through pymilvus (a Milvus server, or Milvus Lite served by another process)."""

    def __init__(self, client: MilvusClient, uri: str) -> None:
        self.client = client
        self.uri = uri
        self._calls = translating(client, uri)

    def search(
        self, collection: str, data: Any, *, field: str, metric: Metric, limit: int, expr: str, output: list[str]
    ) -> list[dict[str, Any]]:
        """One ranked list."""
        res = self._calls.search(
            collection,
            data=[data],
            anns_field=field,
            limit=limit,
            search_params={"metric_type": metric},
            filter=expr,
            output_fields=output,
        )
        return list(res[0]) if res else []

    def get(self, collection: str, ids: list[Any], output: list[str]) -> list[dict[str, Any]]:
        """Point reads."""
        return list(self._calls.get(collection, ids=ids, output_fields=output))


class LiteReads:
    """Reads from a Milvus Lite engine open in this process (no gRPC round trip)."""

    def __init__(self, db: Any, uri: str) -> None:
        self.db = db  # milvus_lite.MilvusLite
        self.uri = uri

    def search(
        self, collection: str, data: Any, *, field: str, metric: Metric, limit: int, expr: str, output: list[str]
    ) -> list[dict[str, Any]]:
        """One ranked list, as the engine's gRPC adapter would have asked for it."""
        from milvus_lite import MilvusLiteError

        try:
            found: list[list[dict[str, Any]]] = self.db.get_collection(collection).search(
                [data], top_k=limit, metric_type=metric, anns_field=field, expr=expr or None, output_fields=output
            )
        except MilvusLiteError as exc:
            raise KnowledgeError(f"Milvus Lite ({self.uri}) refused a search of {collection!r}: {exc}") from exc
        return found[0] if found else []

    def get(self, collection: str, ids: list[Any], output: list[str]) -> list[dict[str, Any]]:
        """Point reads."""
        from milvus_lite import MilvusLiteError

        try:
            return list(self.db.get_collection(collection).get(ids, output_fields=output))
        except MilvusLiteError as exc:
            raise KnowledgeError(f"Milvus Lite ({self.uri}) refused a read of {collection!r}: {exc}") from exc


def in_process(uri: str) -> bool:
    """Whether reads of ``uri`` may go straight to a Milvus Lite engine (a directory, and :data:`IN_PROCESS`)."""
    return IN_PROCESS and is_lite_path(uri)


def reads_for(client: MilvusClient, uri: str) -> Reads:
    """In-process reads when this process serves the Milvus Lite directory ``uri``, else reads through ``client``."""
    if in_process(uri):
        db = _served_engine(uri)
        if db is not None:
            return LiteReads(db, uri)
    return ClientReads(client, uri)


def open_engine(path: str) -> tuple[Any, bool]:
    """The Milvus Lite engine of directory ``path`` and whether the caller must close it.

    The engine this process already serves through pymilvus is shared (not the caller's to close); otherwise
    the directory is opened here, which Milvus Lite allows one process at a time.
    """
    db = _served_engine(path)
    if db is not None:
        return db, False
    from milvus_lite import DataDirLockedError, MilvusLite, MilvusLiteError

    try:
        return MilvusLite(path), True
    except DataDirLockedError as exc:
        raise BackendUnavailable(
            "Milvus Lite",
            f"another process has {path} open ({exc}). Stop it, run `labops lab up` so that one Milvus server "
            "serves the directory to every process, or point milvus.uri at a Milvus server",
            setting="milvus.uri",
        ) from exc
    except (MilvusLiteError, OSError) as exc:
        raise BackendUnavailable("Milvus Lite", f"cannot open {path}: {exc}", setting="milvus.uri") from exc


def client_options(uri: str) -> dict[str, Any]:
    """Keyword arguments for ``MilvusClient`` beyond the URI and token.

    pymilvus pings an idle connection every 10 s. A Milvus server allows that; Milvus Lite's gRPC server
    (served in this process for a directory, or by ``labops lab up``) keeps gRPC's defaults, which count
    such pings as abuse and close the connection ("Too many pings"). A call racing that close failed, and
    pymilvus's reconnect then failed the same way (seen in a long test run). A connection to this machine
    has no middlebox to keep alive and learns of a dead server from the socket, so it sends no idle pings.
    """
    local = is_lite_path(uri) or uri.startswith("unix:") or urlsplit(uri).hostname in {"localhost", "127.0.0.1", "::1"}
    if local:
        return {"grpc_options": {"grpc.keepalive_time_ms": 2**31 - 1}}  # gRPC's "never"
    return {}


def is_lite_path(uri: str) -> bool:
    """Whether ``uri`` names a Milvus Lite directory (a path) rather than a server's address."""
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


def _served_engine(path: str) -> Any | None:
    """The open ``MilvusLite`` engine that pymilvus started for ``path`` in this process, if any.

    milvus-lite 3.2 keeps it in its server manager's ``_servers`` map (path -> (server, engine, port)); this
    is not a public interface, so anything unexpected means "use gRPC" (slower, same answers), and
    tests/knowledge/test_reads.py fails so that an upgrade which moves it is noticed.
    """
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return None
    servers = getattr(server_manager_instance, "_servers", None)
    entry = servers.get(os.path.abspath(path)) if isinstance(servers, dict) else None
    db = entry[1] if isinstance(entry, tuple) and len(entry) == 3 else None
    if db is None or getattr(db, "closed", True) or not hasattr(db, "get_collection"):
        log.debug("Milvus Lite engine for %s not found in this process; reads go through gRPC", path)
        return None
    return db
