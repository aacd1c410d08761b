"""Chat requests as OpenAI clients send them, mapped onto agent threads without duplicates.

An OpenAI-style client sends the whole history on every request. This store makes that safe:

- **Which thread**: OpenWebUI names the chat (``X-OpenWebUI-Chat-Id``); other clients are followed by the
  history itself: after each reply the store remembers the hash of (user, history + reply) → thread, so
  the next request, whose history ends with that reply, continues the same thread. A history nobody
  answered starts a new thread.
- **No turn twice**: the hash of (user, chat, whole conversation) is claimed before a turn runs. The same
  request again within ten minutes (a client retry, OpenWebUI's "regenerate", a proxy resending) gets the
  stored reply instead of running the turn — and its tool calls — a second time; while the first is still
  running the repeat waits for it.

It lives in the shared store (SQLite or PostgreSQL), so replicas agree.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

from agent.commands import message_text
from core.store import Database

__all__ = ["ChatStore"]

CLAIM_STALE_S = 600.0  # a claim older than this belongs to a process that died mid-turn
# A request seen again within this window is a repeat (a retry, "regenerate"); later, the same words in a new
# chat are a new question that deserves a fresh answer.
REPEAT_WINDOW_S = 600.0


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _conversation(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    # System prompts are left out: OpenWebUI fills variables such as the date into them.
    return [
        (str(m.get("role")), message_text(m).strip())
        for m in messages
        if m.get("role") in ("user", "assistant") and message_text(m).strip()
    ]


class ChatStore:
    """History → thread, and request → reply."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema()

    def thread_for(self, user: str, messages: list[dict[str, Any]], *, chat_id: str | None) -> str:
        """The agent thread this request continues (or a new one)."""
        if chat_id:
            return f"owui-{_digest(user, chat_id)[:24]}"
        history = _digest(user, _conversation(messages)[:-1])
        with self.db.session() as s:
            row = s.execute("SELECT thread_id FROM chat_threads WHERE history = ?", (history,)).fetchone()
        return str(row[0]) if row else "api-" + uuid.uuid4().hex[:20]

    def remember(self, user: str, messages: list[dict[str, Any]], reply: str, thread: str) -> None:
        """After a reply: the history that ends with it continues ``thread``."""
        key = _digest(user, [*_conversation(messages), ("assistant", reply.strip())])
        with self.db.transaction() as s:
            s.execute("INSERT INTO chat_threads (history, thread_id, created) VALUES (?, ?, ?) "
                      "ON CONFLICT (history) DO NOTHING", (key, thread, time.time()))  # fmt: skip

    @staticmethod
    def request_key(user: str, messages: list[dict[str, Any]], *, chat_id: str | None) -> str:
        """What makes two requests the same request: the user, the chat and the whole conversation."""
        return _digest(user, chat_id or "", _conversation(messages))

    def claim(self, request: str) -> bool:
        """Take ``request`` for this process; False when it was taken before (its reply may still be coming)."""
        with self.db.transaction(lock="chat_replies") as s:
            row = s.execute("SELECT reply, created FROM chat_replies WHERE request = ?", (request,)).fetchone()
            age = time.time() - float(row[1]) if row is not None else 0.0
            if (
                row is None
                or (row[0] is None and age > CLAIM_STALE_S)
                or (row[0] is not None and age > REPEAT_WINDOW_S)
            ):
                s.execute("DELETE FROM chat_replies WHERE request = ?", (request,))
                s.execute("INSERT INTO chat_replies (request, reply, created) VALUES (?, NULL, ?)",
                          (request, time.time()))  # fmt: skip
                return True
            return False

    def finish(self, request: str, reply: str) -> None:
        """Store the reply of a claimed request."""
        with self.db.transaction() as s:
            s.execute("UPDATE chat_replies SET reply = ? WHERE request = ?", (reply, request))

    def release(self, request: str) -> None:
        """Give a claim back (the turn failed before it answered): the same request may run again."""
        with self.db.transaction() as s:
            s.execute("DELETE FROM chat_replies WHERE request = ? AND reply IS NULL", (request,))

    def reply(self, request: str, *, wait_s: float, poll_s: float = 0.25) -> str | None:
        """The stored reply of an earlier identical request, waiting up to ``wait_s`` while it is produced."""
        deadline = time.monotonic() + wait_s
        while True:
            with self.db.session() as s:
                row = s.execute("SELECT reply FROM chat_replies WHERE request = ?", (request,)).fetchone()
            if row is None:
                return None
            if row[0] is not None:
                return str(row[0])
            if time.monotonic() >= deadline:
                return None
            time.sleep(poll_s)
