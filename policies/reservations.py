"""Quota reservations: what calls in progress will use, counted with the live lab so quotas hold under concurrency.

Usage is read from the live lab, which does not yet show a VM being cloned or a job being submitted. So the
guard decides and reserves in one exclusive transaction: it counts the user's live usage plus every active
reservation, and if the call fits, records a reservation of the call's amounts before any side effect. The
reservation is released when the call ends (by then the lab shows what it made), and a reservation whose
process died expires. N concurrent calls therefore never exceed a quota, across threads, processes and
replicas sharing the store (SQLite in the lab directory, or PostgreSQL).

A reservation alone counts a call twice for a moment: once its job or VM shows in the lab and until the
reservation goes, a concurrent decision sees both and may refuse a call that fits (safe, but wrong: four
submissions with room for four got three). So a tool says when its effect shows (``ToolContext.landed``,
which releases the reservation at once), and a quota refusal made while the same user has calls in progress
waits for one of those to land and decides again (:meth:`Reservations.wait_released`), until the call fits,
nothing is in progress, or ``policy.quota_wait_timeout`` passes. Calls that fit never wait.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.config import Settings
from core.store import Database, Session
from policies.owners import owner_alive, this_process

__all__ = ["ReservationTx", "Reservations", "total"]

_POLL = 0.05  # seconds between looks while waiting for calls in progress to land

_STALE_AFTER = 3600.0  # a reservation this old is stale even when its owner cannot be checked


def _live(owner: str, created: float) -> bool:
    """Whether a reservation still counts: its process runs and it is not older than :data:`_STALE_AFTER`."""
    return owner_alive(owner) and time.time() - float(created) <= _STALE_AFTER


class ReservationTx:
    """The open, exclusive transaction of one decision."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def active(self, user: str) -> dict[str, dict[str, int]]:
        """``user``'s calls in progress: reservation id -> amounts (dead owners' reservations are dropped)."""
        rows = self.session.execute(
            "SELECT id, amounts, owner, created FROM reservations WHERE username = ?", (user,)
        ).fetchall()
        out: dict[str, dict[str, int]] = {}
        for rid, amounts, owner, created in rows:
            if not _live(owner, created):
                self.session.execute("DELETE FROM reservations WHERE id = ?", (rid,))
                continue
            out[str(rid)] = {k: int(v) for k, v in json.loads(amounts).items()}
        return out

    def add(self, user: str, tool: str, amounts: dict[str, int]) -> str:
        """Reserve ``amounts`` for a call of ``tool`` by ``user``; returns the reservation id."""
        rid = "res_" + uuid.uuid4().hex[:16]
        self.session.execute(
            "INSERT INTO reservations (id, username, tool, amounts, owner, created) VALUES (?, ?, ?, ?, ?, ?)",
            (rid, user, tool, json.dumps({k: int(v) for k, v in amounts.items() if v}), this_process(), time.time()),
        )
        return rid


def total(active: dict[str, dict[str, int]]) -> dict[str, int]:
    """The summed amounts of reservations (:meth:`ReservationTx.active`)."""
    out: dict[str, int] = {}
    for amounts in active.values():
        for key, value in amounts.items():
            out[key] = out.get(key, 0) + value
    return out


class Reservations:
    """The reservations table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.db.ensure_schema()

    @classmethod
    def from_settings(cls, settings: Settings) -> Reservations:
        """The lab's store."""
        return cls(Database.from_settings(settings))

    @contextmanager
    def transaction(self) -> Iterator[ReservationTx]:
        """An exclusive transaction: decide and reserve inside it; committed on success, rolled back on error."""
        with self.db.transaction(lock="reservations") as s:
            yield ReservationTx(s)

    def release(self, rid: str) -> None:
        """The call ended: its amounts are in the live lab now (or were never used)."""
        with self.db.transaction() as s:
            s.execute("DELETE FROM reservations WHERE id = ?", (rid,))

    def wait_released(self, ids: set[str], *, deadline: float) -> bool:
        """Wait until one of ``ids`` is no longer held (released, or its process gone); False at ``deadline``."""
        marks = ", ".join("?" for _ in ids)
        while ids:
            with self.db.session() as s:
                rows = s.execute(
                    f"SELECT owner, created FROM reservations WHERE id IN ({marks})", tuple(sorted(ids))
                ).fetchall()
            held = sum(_live(owner, created) for owner, created in rows)
            if held < len(ids):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)
        return True

    def list(self) -> list[dict[str, Any]]:
        """Every reservation (for operators and tests)."""
        with self.db.session() as s:
            rows = s.execute("SELECT id, username, tool, amounts, owner, created FROM reservations").fetchall()
        return [
            {"id": r[0], "user": r[1], "tool": r[2], "amounts": json.loads(r[3]), "owner": r[4], "created": r[5]}
            for r in rows
        ]
