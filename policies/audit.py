"""The tamper-evident audit log: an append-only, hash-chained table in SQLite (``<lab_dir>/labops.sqlite``).

Each entry's hash is sha256 over the previous entry's hash and the canonical JSON of the entry (its
sequence number and time included), so editing, removing or reordering any entry breaks the chain at
that entry; :meth:`AuditLog.verify` says where. Appends are serialised (``BEGIN IMMEDIATE``), so
concurrent writers cannot fork the chain. Secrets in arguments are redacted before they are written.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from core.errors import AuditError, ConfigError

__all__ = ["AuditLog", "VerifyReport", "redact"]

GENESIS = "0" * 64
_SECRET_WORDS = ("password", "token", "secret", "dsn", "key", "credential")


def redact(value: Any) -> Any:
    """A copy with the values of secret-looking keys replaced."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if any(w in str(k).lower() for w in _SECRET_WORDS) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def _hash(prev: str, seq: int, ts: float, entry: dict[str, Any]) -> str:
    return hashlib.sha256(f"{prev}|{seq}|{ts!r}|{_canonical(entry)}".encode()).hexdigest()


@dataclass(kw_only=True, frozen=True)
class VerifyReport:
    """Result of checking the chain."""

    ok: bool
    entries: int
    message: str
    bad_seq: int | None = None


class AuditLog:
    """Append and verify the chain."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with closing(self._connect()) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, ts REAL NOT NULL, entry TEXT NOT NULL, "
                "prev_hash TEXT NOT NULL, hash TEXT NOT NULL)"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditLog:
        """The lab's audit log (SQLite in the lab directory)."""
        if settings.audit.database_url is not None:
            # A shared PostgreSQL store for several replicas is not built yet; refuse rather than silently split.
            raise ConfigError(
                "audit.database_url (PostgreSQL) is not supported yet; unset it to use SQLite",
                setting="audit.database_url",
            )
        return cls(settings.lab_dir / "labops.sqlite")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def append(self, entry: dict[str, Any]) -> int:
        """Write one entry; returns its sequence number. Raises AuditError when it cannot be written."""
        try:
            with closing(self._connect()) as db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                ts = time.time()
                clean = redact(entry)
                db.execute(
                    "INSERT INTO audit (seq, ts, entry, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
                    (seq, ts, _canonical(clean), prev, _hash(prev, seq, ts, clean)),
                )
                db.execute("COMMIT")
                return int(seq)
        except sqlite3.Error as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {exc}") from exc

    def tail(self, n: int = 20) -> list[dict[str, Any]]:
        """The last ``n`` entries, oldest first."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT seq, ts, entry, hash FROM audit ORDER BY seq DESC LIMIT ?", (n,)).fetchall()
        return [{"seq": s, "ts": ts, **json.loads(e), "hash": h} for s, ts, e, h in reversed(rows)]

    def verify(self) -> VerifyReport:
        """Recompute the chain; the first entry that does not fit is named."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT seq, ts, entry, prev_hash, hash FROM audit ORDER BY rowid").fetchall()
        prev, expected_seq = GENESIS, 1
        for seq, ts, entry, prev_hash, digest in rows:
            if seq != expected_seq:
                what = "missing" if seq > expected_seq else "out of order"
                return VerifyReport(
                    ok=False,
                    entries=len(rows),
                    bad_seq=expected_seq,
                    message=f"entry {expected_seq} is {what} (found entry {seq} in its place)",
                )
            if prev_hash != prev:
                return VerifyReport(
                    ok=False,
                    entries=len(rows),
                    bad_seq=seq,
                    message=f"entry {seq} does not follow entry {seq - 1} (chain broken)",
                )
            try:
                recomputed = _hash(prev, seq, ts, json.loads(entry))
            except ValueError:
                recomputed = ""
            if recomputed != digest:
                return VerifyReport(ok=False, entries=len(rows), bad_seq=seq, message=f"entry {seq} was edited")
            prev, expected_seq = digest, seq + 1
        return VerifyReport(ok=True, entries=len(rows), message=f"{len(rows)} entries, hash chain intact")
