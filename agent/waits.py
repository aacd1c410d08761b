"""Which conversation thread waits for which approval, so whoever approves can resume the right thread.

Kept next to the approvals (the same SQLite file or PostgreSQL database), so an approval given through
another channel or another replica finds the thread that asked for it.
"""

from __future__ import annotations

import time
from typing import Any

from core.config import Settings
from core.store import Database

__all__ = ["Waits"]


class Waits:
    """approval id → (thread, requester, channel)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema()

    @classmethod
    def from_settings(cls, settings: Settings) -> Waits:
        """The lab's store."""
        return cls(Database.from_settings(settings))

    def add(self, approval_id: str, *, thread_id: str, requester: str, channel: str) -> None:
        """Record that ``thread_id`` waits for ``approval_id``."""
        with self.db.transaction() as s:
            s.execute(
                "INSERT INTO agent_waits (approval_id, thread_id, requester, channel, created) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (approval_id) DO NOTHING",
                (approval_id, thread_id, requester, channel, time.time()),
            )

    def find(self, approval_id: str) -> dict[str, Any] | None:
        """The waiting thread of an approval (a unique id prefix is enough)."""
        with self.db.session() as s:
            row = s.execute(
                "SELECT approval_id, thread_id, requester, channel, resumed FROM agent_waits WHERE approval_id = ?",
                (approval_id,),
            ).fetchone()
            if row is None and len(approval_id) >= 6:
                rows = s.execute(
                    "SELECT approval_id, thread_id, requester, channel, resumed FROM agent_waits "
                    "WHERE approval_id LIKE ? ESCAPE '\\'",
                    (approval_id.replace("_", "\\_").replace("%", "") + "%",),
                ).fetchall()
                row = rows[0] if len(rows) == 1 else None
        if row is None:
            return None
        return dict(zip(("approval_id", "thread_id", "requester", "channel", "resumed"), row, strict=True))

    def claim_resume(self, approval_id: str) -> bool:
        """Mark the wait as resumed; False if another process already did (resume exactly once)."""
        with self.db.transaction(lock="agent_waits") as s:
            row = s.execute("SELECT resumed FROM agent_waits WHERE approval_id = ?", (approval_id,)).fetchone()
            if row is None or row[0] is not None:
                return False
            s.execute("UPDATE agent_waits SET resumed = ? WHERE approval_id = ?", (time.time(), approval_id))
            return True

    def release(self, approval_id: str) -> None:
        """Undo :meth:`claim_resume` (the resume failed before it ran)."""
        with self.db.transaction() as s:
            s.execute("UPDATE agent_waits SET resumed = NULL WHERE approval_id = ?", (approval_id,))

    def complete(self, approval_id: str, answer: str) -> None:
        """Keep what the resumed conversation answered, for the requester's channel to show next time."""
        with self.db.transaction() as s:
            s.execute("UPDATE agent_waits SET result = ?, delivered = 0 WHERE approval_id = ?", (answer, approval_id))

    def undelivered(self, thread_id: str) -> list[dict[str, Any]]:
        """Answers of resumed requests of this thread that its channel has not shown yet (and marks them shown)."""
        with self.db.transaction(lock="agent_waits") as s:
            rows = s.execute(
                "SELECT approval_id, result FROM agent_waits WHERE thread_id = ? AND result IS NOT NULL "
                "AND delivered = 0",
                (thread_id,),
            ).fetchall()
            for approval_id, _result in rows:
                s.execute("UPDATE agent_waits SET delivered = 1 WHERE approval_id = ?", (approval_id,))
        return [{"approval_id": a, "answer": r} for a, r in rows]

    def pending(self) -> list[dict[str, Any]]:
        """Waits not yet resumed."""
        with self.db.session() as s:
            rows = s.execute(
                "SELECT approval_id, thread_id, requester, channel FROM agent_waits WHERE resumed IS NULL"
            ).fetchall()
        return [dict(zip(("approval_id", "thread_id", "requester", "channel"), r, strict=True)) for r in rows]
