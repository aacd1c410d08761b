"""Request keys: a mutating call repeated with the same key returns the first result, and runs at most once.

A key (a chat's tool-call id, or ``--request-key`` on the CLI) is bound to the tool, the user and the exact
arguments: the same key with other arguments or from another user is refused, never answered with
someone else's result. The guard claims a key before the side effect (*in progress*, with the claiming
process), records the result after (*done*), and frees it when the call failed without leaving anything
behind. A claim whose process died is handed to the next retry as a *resume*, so the tool can finish or
clean up what the first attempt started. Keys expire after a day, as payment APIs' idempotency keys do.

Stored next to approvals and the audit log (SQLite in the lab directory, or PostgreSQL for replicas).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from core.config import Settings
from core.store import Database
from policies.owners import owner_alive, this_process

__all__ = ["KeyClaim", "KeyJournal", "RequestKeys", "request_binding"]

State = Literal["new", "resume", "running", "done", "conflict"]


def request_binding(tool: str, user: str, args: dict[str, Any]) -> str:
    """What a key is bound to: the tool, the user and the canonical arguments."""
    text = json.dumps({"tool": tool, "user": user, "args": args}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(kw_only=True, frozen=True)
class KeyClaim:
    """What claiming (or looking up) a key found."""

    state: State
    result: dict[str, Any] | None = None
    started: float | None = None


class RequestKeys:
    """Request key → first result, per tool."""

    def __init__(self, db: Database, *, ttl_seconds: float = 86400.0, stale_after: float = 3600.0) -> None:
        self.db = db
        self.ttl_seconds = ttl_seconds
        # A claim older than this counts as abandoned even when its owner cannot be checked (another host).
        self.stale_after = stale_after
        self.db.ensure_schema()

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestKeys:
        """The lab's store (``audit.database_url`` or SQLite in the lab directory)."""
        return cls(Database.from_settings(settings))

    def lookup(self, key: str, tool: str, binding: str) -> KeyClaim:
        """The key's state without claiming it (``new`` when unknown or expired)."""
        with self.db.session() as s:
            row = s.execute(
                "SELECT binding, state, result, started, owner FROM request_keys WHERE key = ? AND tool = ?",
                (key, tool),
            ).fetchone()
        return self._judge(row, binding)

    def _judge(self, row: Any, binding: str) -> KeyClaim:
        if row is None or time.time() - float(row[3]) > self.ttl_seconds:
            return KeyClaim(state="new")
        bound, state, result, started, owner = row
        if bound != binding:
            return KeyClaim(state="conflict", started=started)
        if state == "done":
            return KeyClaim(state="done", result=json.loads(result) if result else None, started=started)
        if state == "interrupted":
            return KeyClaim(state="resume", started=started)
        if owner_alive(owner) and time.time() - float(started) < self.stale_after:
            return KeyClaim(state="running", started=started)
        return KeyClaim(state="resume", started=started)

    def claim(self, key: str, tool: str, binding: str) -> KeyClaim:
        """Atomically claim ``key`` for this process: ``new`` or ``resume`` may run, the rest may not."""
        with self.db.transaction(lock="request_keys") as s:
            row = s.execute(
                "SELECT binding, state, result, started, owner FROM request_keys WHERE key = ? AND tool = ?",
                (key, tool),
            ).fetchone()
            found = self._judge(row, binding)
            if found.state == "new":  # (also an expired key: replaced)
                s.execute("DELETE FROM request_keys WHERE key = ? AND tool = ?", (key, tool))
                s.execute(
                    "INSERT INTO request_keys (key, tool, binding, state, started, owner, steps) "
                    "VALUES (?, ?, ?, 'in_progress', ?, ?, '[]')",
                    (key, tool, binding, time.time(), this_process()),
                )
            elif found.state == "resume":
                # Take over the dead call's claim, keeping the steps it recorded.
                s.execute(
                    "UPDATE request_keys SET owner = ?, started = ?, state = 'in_progress' WHERE key = ? AND tool = ?",
                    (this_process(), time.time(), key, tool),
                )
        return found

    def finish(self, key: str, tool: str, result: dict[str, Any]) -> None:
        """Record the result of the call that claimed ``key``."""
        with self.db.transaction() as s:
            s.execute(
                "UPDATE request_keys SET state = 'done', result = ? WHERE key = ? AND tool = ?",
                (json.dumps(result, default=str), key, tool),
            )

    def interrupt(self, key: str, tool: str) -> None:
        """The call was cut off with steps done (its backend went away): the next retry resumes it."""
        with self.db.transaction() as s:
            s.execute("UPDATE request_keys SET state = 'interrupted' WHERE key = ? AND tool = ?", (key, tool))

    def release(self, key: str, tool: str) -> None:
        """Forget a claim whose call failed without side effects, so a retry may run again."""
        with self.db.transaction() as s:
            s.execute("DELETE FROM request_keys WHERE key = ? AND tool = ?", (key, tool))

    def record_step(self, key: str, tool: str, step: str, data: dict[str, Any]) -> None:
        """Append a step of a multi-step call (written before the step runs, so a retry knows how far it got)."""
        with self.db.transaction(lock="request_keys") as s:
            row = s.execute("SELECT steps FROM request_keys WHERE key = ? AND tool = ?", (key, tool)).fetchone()
            steps = json.loads(row[0] or "[]") if row else []
            steps.append({"step": step, "at": time.time(), **data})
            s.execute("UPDATE request_keys SET steps = ? WHERE key = ? AND tool = ?", (json.dumps(steps), key, tool))

    def steps(self, key: str, tool: str) -> list[dict[str, Any]]:
        """The steps recorded for ``key`` (oldest first)."""
        with self.db.session() as s:
            row = s.execute("SELECT steps FROM request_keys WHERE key = ? AND tool = ?", (key, tool)).fetchone()
        return list(json.loads(row[0] or "[]")) if row else []

    def state_of(self, key: str, tool: str) -> str | None:
        """``in_progress``, ``done`` or None for a key."""
        with self.db.session() as s:
            row = s.execute("SELECT state FROM request_keys WHERE key = ? AND tool = ?", (key, tool)).fetchone()
        return str(row[0]) if row else None

    def unfinished(self, tool: str | None = None) -> list[dict[str, Any]]:
        """Claims still in progress (their calls are running, or crashed and await a retry)."""
        with self.db.session() as s:
            rows = s.execute(
                "SELECT key, tool, started, owner, state FROM request_keys "
                "WHERE state IN ('in_progress', 'interrupted')"
            ).fetchall()
        return [
            {"key": k, "tool": t, "started": st, "owner": o, "alive": state == "in_progress" and owner_alive(o)}
            for k, t, st, o, state in rows
            if tool in (None, t)
        ]


class KeyJournal:
    """The step journal of one request key, as tools see it (:class:`tools.context.Journal`)."""

    def __init__(self, keys: RequestKeys, key: str, tool: str) -> None:
        self.keys, self.key, self.tool = keys, key, tool

    def record(self, step: str, **data: Any) -> None:
        """Record ``step`` before doing it."""
        self.keys.record_step(self.key, self.tool, step, data)

    def steps(self) -> list[dict[str, Any]]:
        """Steps recorded by this key so far."""
        return self.keys.steps(self.key, self.tool)
