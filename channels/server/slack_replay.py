"""Slack requests seen in the last minutes, so a captured request sent again is refused (401).

Slack's signature proves who sent a request and that it is at most five minutes old, but a copy sent again
within those five minutes carries a valid signature too. Each signature is recorded in the shared store
(every replica sees it) and kept ten minutes, longer than the window slack-bolt accepts.
"""

from __future__ import annotations

import time

from core.store import Database

__all__ = ["SlackReplays"]

KEEP_S = 600.0


class SlackReplays:
    """``first_time(signature)`` is True once per signature."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema()

    def first_time(self, signature: str, *, now: float | None = None) -> bool:
        """Record ``signature``; False when it was recorded before (a replay)."""
        now = time.time() if now is None else now
        with self.db.transaction(lock="slack_seen") as s:
            s.execute("DELETE FROM slack_seen WHERE seen < ?", (now - KEEP_S,))
            seen = s.execute("SELECT 1 FROM slack_seen WHERE signature = ?", (signature,)).fetchone()
            if seen is None:
                s.execute("INSERT INTO slack_seen (signature, seen) VALUES (?, ?)", (signature, now))
        return seen is None
