"""Request keys: a mutating call repeated with the same key returns the first result.

Stored in SQLite (``<lab_dir>/idempotency.sqlite``). ``claim`` records a key as *in progress* before
the side effect starts, so a retry while the first call still runs (or after it crashed) is told so
instead of creating a second VM or job; tools may then recover by looking for what the first call
made (a provisioned VM carries its request key in its description).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.config import Settings

__all__ = ["Claim", "IdempotencyStore"]


@dataclass(kw_only=True, frozen=True)
class Claim:
    """What :meth:`IdempotencyStore.claim` found."""

    state: Literal["new", "in_progress", "done"]
    result: dict[str, Any] | None = None
    started: float | None = None


class IdempotencyStore:
    """Request key → first result, per tool."""

    def __init__(self, path: Path, *, ttl_seconds: float = 86400.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Keys identify one request (a chat's tool-call id); after a day a key is free again, as with
        # payment APIs' idempotency keys.
        self.ttl_seconds = ttl_seconds
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS requests (key TEXT NOT NULL, tool TEXT NOT NULL, state TEXT NOT NULL, "
                "result TEXT, started REAL NOT NULL, PRIMARY KEY (key, tool))"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> IdempotencyStore:
        """The store in the lab directory."""
        return cls(settings.lab_dir / "idempotency.sqlite")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def claim(self, key: str, tool: str) -> Claim:
        """Atomically mark ``key`` in progress, or report the earlier call's state."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT state, result, started FROM requests WHERE key = ? AND tool = ?", (key, tool)
            ).fetchone()
            if row is not None and time.time() - row[2] > self.ttl_seconds:
                db.execute("DELETE FROM requests WHERE key = ? AND tool = ?", (key, tool))
                row = None
            if row is None:
                db.execute(
                    "INSERT INTO requests (key, tool, state, started) VALUES (?, ?, 'in_progress', ?)",
                    (key, tool, time.time()),
                )
                db.execute("COMMIT")
                return Claim(state="new")
            db.execute("COMMIT")
            state, result, started = row
            return Claim(state=state, result=json.loads(result) if result else None, started=started)
        finally:
            db.close()

    def finish(self, key: str, tool: str, result: dict[str, Any]) -> None:
        """Record the result of the call that claimed ``key``."""
        with self._connect() as db:
            db.execute(
                "UPDATE requests SET state = 'done', result = ? WHERE key = ? AND tool = ?",
                (json.dumps(result, default=str), key, tool),
            )

    def release(self, key: str, tool: str) -> None:
        """Forget a claim whose call failed without side effects, so a retry may run again."""
        with self._connect() as db:
            db.execute("DELETE FROM requests WHERE key = ? AND tool = ?", (key, tool))
