"""The tamper-evident audit log: an append-only, hash-chained table (SQLite in the lab dir, or PostgreSQL).

Each entry's hash is sha256 over the previous entry's hash and the canonical JSON of the entry (its
sequence number and time included), so editing, removing or reordering any entry breaks the chain at
that entry; :meth:`AuditLog.verify` says where. Appends are serialised (an exclusive write transaction), so
concurrent writers cannot fork the chain. Secrets in arguments are redacted before they are written.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from policies.stores import Database

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

    def __init__(self, store: Database | Path) -> None:
        self.db = store if isinstance(store, Database) else Database.sqlite(store)
        with self.db.session() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS audit (seq BIGINT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, "
                "entry TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)"
            )
            db.commit()

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditLog:
        """The lab's audit log (``audit.database_url`` or SQLite in the lab directory)."""
        return cls(Database.from_settings(settings))

    @property
    def path(self) -> Path:
        """The SQLite file (tests and operators inspect it)."""
        return Path(self.db.target)

    @path.setter
    def path(self, value: Path) -> None:
        self.db = Database(dialect="sqlite", target=str(value))

    def append(self, entry: dict[str, Any]) -> int:
        """Write one entry; returns its sequence number. Raises AuditError when it cannot be written."""
        with self.db.session() as db:
            db.exclusive("audit")
            try:
                row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (int(row[0]) + 1, row[1]) if row else (1, GENESIS)
                ts = time.time()
                clean = redact(entry)
                db.execute(
                    "INSERT INTO audit (seq, ts, entry, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
                    (seq, ts, _canonical(clean), prev, _hash(prev, seq, ts, clean)),
                )
                db.commit()
            except BaseException:
                db.rollback()
                raise
            return seq

    def tail(self, n: int = 20) -> list[dict[str, Any]]:
        """The last ``n`` entries, oldest first."""
        with self.db.session() as db:
            rows = db.execute("SELECT seq, ts, entry, hash FROM audit ORDER BY seq DESC LIMIT ?", (n,)).fetchall()
        return [{"seq": s, "ts": ts, **json.loads(e), "hash": h} for s, ts, e, h in reversed(rows)]

    def verify(self) -> VerifyReport:
        """Recompute the chain; the first entry that does not fit is named."""
        with self.db.session() as db:
            rows = db.execute("SELECT seq, ts, entry, prev_hash, hash FROM audit ORDER BY seq").fetchall()
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
                    ok=False, entries=len(rows), bad_seq=seq, message=f"entry {seq} does not follow entry {seq - 1}"
                )
            try:
                recomputed = _hash(prev, seq, ts, json.loads(entry))
            except ValueError:
                recomputed = ""
            if recomputed != digest:
                return VerifyReport(ok=False, entries=len(rows), bad_seq=seq, message=f"entry {seq} was edited")
            prev, expected_seq = digest, seq + 1
        return VerifyReport(ok=True, entries=len(rows), message=f"{len(rows)} entries, hash chain intact")
