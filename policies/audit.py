"""The tamper-evident audit log: an append-only, hash-chained table (SQLite in the lab dir, or PostgreSQL).

Each entry's hash is sha256 over the previous entry's hash and the canonical JSON of the entry (its
sequence number and time included), so editing, removing or reordering any entry breaks the chain at
that entry; :meth:`AuditLog.verify` says where. Appends are serialised (an exclusive write transaction), so
concurrent writers cannot fork the chain. Secrets in arguments are redacted before they are written.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from core.errors import AuditError
from core.store import Database, Session
from policies.anchor import Anchor, AnchorFile

__all__ = ["AuditLog", "VerifyReport", "bounded", "redact"]

log = logging.getLogger(__name__)

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


MAX_FIELD_BYTES = 4096


def bounded(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with oversized fields (arguments, request text) kept as a digest, their size and a prefix.

    An audit record says what was asked; it must not become the way to fill the disk (a stream of invalid
    1 MB calls once grew this database to 99 MB).
    """
    out = dict(entry)
    for key, value in entry.items():
        text = value if isinstance(value, str) else _canonical(value)
        if len(text.encode()) > MAX_FIELD_BYTES:
            out[key] = {
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "bytes": len(text.encode()),
                "prefix": text[:512],
            }
    return out


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
    """Append and verify the chain; the head is anchored outside the database."""

    def __init__(self, store: Database | Path, *, anchor: AnchorFile | None = None) -> None:
        self.db = store if isinstance(store, Database) else Database.sqlite(store)
        if anchor is None and self.db.dialect == "sqlite":
            base = Path(self.db.target)
            anchor = AnchorFile(base.with_suffix(".anchor"), key_file=base.with_suffix(".key"))
        self.anchor = anchor
        self.db.ensure_schema()

    @functools.cached_property
    def _ident(self) -> str:
        assert self.anchor is not None
        return self.anchor.ident

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditLog:
        """The lab's audit log (``audit.database_url`` or SQLite in the lab directory), anchored by default."""
        cfg = settings.audit
        key = cfg.anchor_key.get_secret_value().encode() if cfg.anchor_key else None
        anchor = AnchorFile(
            cfg.anchor_file or settings.lab_dir / "audit.anchor", key=key, key_file=settings.lab_dir / "audit.key"
        )
        return cls(Database.from_settings(settings), anchor=anchor)

    @property
    def path(self) -> Path:
        """The SQLite file (tests and operators inspect it)."""
        return Path(self.db.target)

    @path.setter
    def path(self, value: Path) -> None:
        self.db = Database(dialect="sqlite", target=str(value))

    def _head_problem(self, db: Session, last: Any) -> str | None:
        """Why appending now would extend a broken chain, or None."""
        if last is not None:
            seq, ts, entry, prev_hash, digest = last
            try:
                intact = _hash(prev_hash, int(seq), float(ts), json.loads(entry)) == digest
            except ValueError:
                intact = False
            if not intact:
                return f"entry {seq}, the newest, was edited"
        if self.anchor is None:
            return None
        anchored = self.anchor.read()
        if anchored is None:
            row = db.execute(
                "SELECT seq FROM audit WHERE entry LIKE ? ORDER BY seq DESC LIMIT 1", (f'%"anchor":"{self._ident}"%',)
            ).fetchone()
            if row is not None:
                return f"its anchor file {self.anchor.path} is missing, though entry {row[0]} was written under it"
            return None
        head = int(last[0]) if last is not None else 0
        if head < anchored.seq:
            return f"the log ends at entry {head} but reached entry {anchored.seq}: entries were removed"
        if anchored.seq == 0:
            return None  # anchored before the first entry (the log was empty)
        row = db.execute("SELECT hash FROM audit WHERE seq = ?", (anchored.seq,)).fetchone()
        if row is None or row[0] != anchored.hash:
            return f"entry {anchored.seq} is not the entry the anchor recorded"
        return None

    def append(self, entry: dict[str, Any], *, acknowledge: bool = False) -> int:
        """Write one entry; returns its sequence number.

        Raises:
            AuditError: the entry cannot be written, or the chain is broken (nothing is appended to a broken
                chain until an operator runs ``labops audit acknowledge``).
        """
        with self.db.transaction(lock="audit") as db:
            last = db.execute("SELECT seq, ts, entry, prev_hash, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            if not acknowledge:
                problem = self._head_problem(db, last)
                if problem is not None:
                    raise AuditError(
                        f"the audit log is broken ({problem}); nothing more is recorded, so nothing runs. "
                        "Check it with `labops audit verify`, then `labops audit acknowledge --reason ...`"
                    )
            seq, prev = (int(last[0]) + 1, last[4]) if last else (1, GENESIS)
            if self.anchor is not None and not acknowledge and not self.anchor.exists():
                # The first entry under this anchor: the file is made first, at the head as it is, while the lock
                # is held. Written only after the commit, it was missing for a moment while the entry already
                # named it, and a second writer (ten provisions at once) took that for a removed anchor file.
                self.anchor.write(Anchor(seq=seq - 1, hash=prev))
            ts = time.time()
            clean = bounded(redact(entry))
            if self.anchor is not None:
                clean["anchor"] = self._ident
            digest = _hash(prev, seq, ts, clean)
            db.execute(
                "INSERT INTO audit (seq, ts, entry, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
                (seq, ts, _canonical(clean), prev, digest),
            )
        if self.anchor is not None:
            self.anchor.write(Anchor(seq=seq, hash=digest), force=acknowledge)
        log.debug("audit %s %s", seq, digest)
        return seq

    def acknowledge(self, *, user: str, reason: str) -> VerifyReport:
        """Record that an operator has seen the break(s) :meth:`verify` reports, and let appends continue."""
        report = self.verify()
        if report.ok:
            return report
        self.append(
            {
                "event": "chain_acknowledged",
                "user": user,
                "reason": reason,
                "break": report.message,
                "bad_seq": report.bad_seq,
            },
            acknowledge=True,
        )
        return self.verify()

    def tail(self, n: int = 20) -> list[dict[str, Any]]:
        """The last ``n`` entries, oldest first."""
        with self.db.session() as db:
            rows = db.execute("SELECT seq, ts, entry, hash FROM audit ORDER BY seq DESC LIMIT ?", (n,)).fetchall()
        return [{"seq": s, "ts": ts, **json.loads(e), "hash": h} for s, ts, e, h in reversed(rows)]

    def verify(self) -> VerifyReport:
        """Recompute the chain and compare its head with the anchor; the first problem is named.

        A break that an operator acknowledged (``labops audit acknowledge``) is reported but no longer fails.
        """
        with self.db.session() as db:
            rows = db.execute("SELECT seq, ts, entry, prev_hash, hash FROM audit ORDER BY seq").fetchall()
        acknowledged: set[int] = set()
        for _seq, _ts, entry, _prev, _digest in rows:
            with contextlib.suppress(ValueError):
                data = json.loads(entry)
                if data.get("event") == "chain_acknowledged" and data.get("bad_seq") is not None:
                    acknowledged.add(int(data["bad_seq"]))
        seen: list[str] = []
        prev, expected_seq = GENESIS, 1
        marker = f'"anchor":"{self._ident}"' if self.anchor is not None else None
        last_anchored = max((int(r[0]) for r in rows if marker and marker in r[2]), default=None)
        for seq, ts, entry, prev_hash, digest in rows:
            problem: str | None = None
            if seq != expected_seq:
                what = "missing" if seq > expected_seq else "out of order"
                problem = f"entry {expected_seq} is {what} (found entry {seq} in its place)"
                bad = expected_seq
            elif prev_hash != prev:
                problem, bad = f"entry {seq} does not follow entry {seq - 1}", seq
            else:
                try:
                    recomputed = _hash(prev, seq, ts, json.loads(entry))
                except ValueError:
                    recomputed = ""
                if recomputed != digest:
                    problem, bad = f"entry {seq} was edited", seq
            if problem is not None:
                if bad not in acknowledged:
                    return VerifyReport(ok=False, entries=len(rows), bad_seq=bad, message=problem)
                seen.append(problem)
            prev, expected_seq = digest, seq + 1
        if self.anchor is not None:
            try:
                anchored = self.anchor.read()
            except AuditError as exc:
                return VerifyReport(ok=False, entries=len(rows), message=str(exc))
            head = int(rows[-1][0]) if rows else 0
            if anchored is None and last_anchored is not None:
                return VerifyReport(
                    ok=False,
                    entries=len(rows),
                    bad_seq=last_anchored + 1,
                    message=(
                        f"the anchor file {self.anchor.path} is missing, but the log was anchored there (entry "
                        f"{last_anchored} says so): entries after it may have been removed. Restore the anchor file "
                        "from a backup and verify again; if it is lost for good, record that with `labops audit "
                        "acknowledge --reason ...` (a new anchor starts there)"
                    ),
                )
            if anchored is not None and head < anchored.seq:
                return VerifyReport(
                    ok=False,
                    entries=len(rows),
                    bad_seq=head + 1,
                    message=f"entries after {head} were removed: the anchor says the log reached entry {anchored.seq}",
                )
            if (
                anchored is not None
                and anchored.seq > 0  # anchored before the first entry
                and not any(r[0] == anchored.seq and r[4] == anchored.hash for r in rows)
            ):
                return VerifyReport(
                    ok=False,
                    entries=len(rows),
                    bad_seq=anchored.seq,
                    message=f"entry {anchored.seq} is not the entry the anchor recorded",
                )
        note = f"; acknowledged earlier: {'; '.join(seen)}" if seen else ""
        return VerifyReport(ok=True, entries=len(rows), message=f"{len(rows)} entries, hash chain intact{note}")
