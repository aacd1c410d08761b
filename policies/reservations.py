"""Quota reservations: what calls in progress will use, counted with the live lab so quotas hold under concurrency.

Usage is read from the live lab, which does not yet show a VM being cloned or a job being submitted. So the
guard decides and reserves in one exclusive transaction: it counts the user's live usage plus every active
reservation, and if the call fits, records a reservation of the call's amounts before any side effect. The
reservation is released when the call ends (by then the lab shows what it made), and a reservation whose
process died expires. N concurrent calls therefore never exceed a quota, across threads, processes and
replicas sharing the store (SQLite in the lab directory, or PostgreSQL).

A reservation alone counts a call twice for a moment: once its job or VM shows in the lab and until the call
returns, a concurrent decision sees both and refuses a call that would have fitted (safe, but wrong: four
submissions with room for four got three). So one user's quota-counted calls also take a per-user lock from
the decision until the tool reports its effect visible (``ToolContext.landed``), at which point the
reservation goes too. Other users never wait; the lock dies with its process (flock / advisory lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from core.config import Settings
from core.errors import PolicyError
from policies.owners import owner_alive, this_process
from policies.stores import Database, Session

__all__ = ["QuotaHold", "ReservationTx", "Reservations", "UserLock"]

_STALE_AFTER = 3600.0  # a reservation this old is stale even when its owner cannot be checked


class ReservationTx:
    """The open, exclusive transaction of one decision."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def active(self, user: str) -> dict[str, int]:
        """Amounts reserved by ``user``'s calls in progress (dead owners' reservations are dropped)."""
        rows = self.session.execute(
            "SELECT id, amounts, owner, created FROM reservations WHERE username = ?", (user,)
        ).fetchall()
        total: dict[str, int] = {}
        for rid, amounts, owner, created in rows:
            if not owner_alive(owner) or time.time() - float(created) > _STALE_AFTER:
                self.session.execute("DELETE FROM reservations WHERE id = ?", (rid,))
                continue
            for key, value in json.loads(amounts).items():
                total[key] = total.get(key, 0) + int(value)
        return total

    def add(self, user: str, tool: str, amounts: dict[str, int]) -> str:
        """Reserve ``amounts`` for a call of ``tool`` by ``user``; returns the reservation id."""
        rid = "res_" + uuid.uuid4().hex[:16]
        self.session.execute(
            "INSERT INTO reservations (id, username, tool, amounts, owner, created) VALUES (?, ?, ?, ?, ?, ?)",
            (rid, user, tool, json.dumps({k: int(v) for k, v in amounts.items() if v}), this_process(), time.time()),
        )
        return rid


class Reservations:
    """The reservations table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with self.db.session() as s:
            s.execute(
                "CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, username TEXT NOT NULL, "
                "tool TEXT NOT NULL, amounts TEXT NOT NULL, owner TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)"
            )
            s.commit()

    @classmethod
    def from_settings(cls, settings: Settings) -> Reservations:
        """The lab's store."""
        return cls(Database.from_settings(settings))

    @contextmanager
    def transaction(self) -> Iterator[ReservationTx]:
        """An exclusive transaction: decide and reserve inside it; committed on success, rolled back on error."""
        with self.db.session() as s:
            s.exclusive("reservations")
            try:
                yield ReservationTx(s)
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def release(self, rid: str) -> None:
        """The call ended: its amounts are in the live lab now (or were never used)."""
        with self.db.session() as s:
            s.execute("DELETE FROM reservations WHERE id = ?", (rid,))
            s.commit()

    def user_lock(self, user: str, *, timeout: float) -> UserLock:
        """Wait (at most ``timeout`` seconds) until no other quota-counted call of ``user`` is in its critical part."""
        digest = hashlib.sha1(user.encode()).digest()
        if self.db.dialect == "postgres":
            return _advisory_lock(self.db.target, int.from_bytes(digest[:8], "big", signed=True), user, timeout)
        folder = Path(self.db.target).parent / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return _file_lock(folder / f"quota-{digest.hex()[:16]}.lock", user, timeout)

    def list(self) -> list[dict[str, Any]]:
        """Every reservation (for operators and tests)."""
        with self.db.session() as s:
            rows = s.execute("SELECT id, username, tool, amounts, owner, created FROM reservations").fetchall()
        return [
            {"id": r[0], "user": r[1], "tool": r[2], "amounts": json.loads(r[3]), "owner": r[4], "created": r[5]}
            for r in rows
        ]


class QuotaHold:
    """One call's hold on its user's quota: the per-user lock and the reservation, let go once it has landed."""

    def __init__(self, reservations: Reservations, lock: UserLock) -> None:
        self.reservations, self.lock = reservations, lock
        self.reservation: str | None = None

    def landed(self) -> None:
        """The call's job or VM now shows in the lab (or the call ended): usage counts it from here on."""
        rid, self.reservation = self.reservation, None
        try:
            if rid is not None:
                self.reservations.release(rid)
        finally:
            self.lock.release()


class UserLock:
    """A held per-user lock; :meth:`release` may be called any number of times."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release
        self._guard = threading.Lock()

    def release(self) -> None:
        """Let the user's next quota-counted call decide."""
        with self._guard:
            release, self._release = self._release, None
        if release is not None:
            release()


_POLL = 0.05  # seconds between attempts while another call of the same user holds the lock


def _busy(user: str, timeout: float) -> PolicyError:
    return PolicyError(
        f"another quota-counted call of {user} was still starting after {timeout:g} s; "
        "try again when it has finished (or raise policy.quota_lock_timeout if such calls are slow here)"
    )


def _file_lock(path: Path, user: str, timeout: float) -> UserLock:
    # flock: exclusive between processes and between separate open()s in one process; freed when a process dies.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise _busy(user, timeout) from None
            time.sleep(_POLL)

    def release() -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    return UserLock(release)


def _advisory_lock(dsn: str, key: int, user: str, timeout: float) -> UserLock:
    # A session-level advisory lock on a connection of its own: replicas share it; a dead process's goes with it.
    conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    deadline = time.monotonic() + timeout
    try:
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
            if time.monotonic() >= deadline:
                raise _busy(user, timeout)
            time.sleep(_POLL)
    except BaseException:
        conn.close()
        raise

    def release() -> None:
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            conn.close()

    return UserLock(release)
