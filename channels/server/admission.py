"""Admission of agent turns: a bounded number run at once, a bounded number wait, the rest are told to retry.

One model server answers one generation at a time; turns beyond what it can serve wait in a bounded queue,
and a full queue answers at once (HTTP 429 with ``Retry-After``) instead of hanging. Housekeeping
requests and Slack sub-commands never enter it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Busy", "TurnGate"]


class Busy(Exception):
    """No room for another turn now; ``retry_after`` seconds is a fair wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy: retry in {retry_after} s")
        self.retry_after = retry_after


class TurnGate:
    """At most ``running`` turns at once and ``queued`` waiting."""

    def __init__(self, *, running: int, queued: int, typical_turn_s: float = 8.0) -> None:
        self.running, self.queued = running, queued
        self.typical_turn_s = typical_turn_s
        self._slots = threading.Semaphore(running)
        self._lock = threading.Lock()
        self.admitted = 0  # running + waiting

    def admit(self) -> None:
        """Take a place (running or waiting), or raise Busy."""
        with self._lock:
            if self.admitted >= self.running + self.queued:
                waiting = self.admitted - self.running + 1
                raise Busy(max(1, int(waiting * self.typical_turn_s / self.running)))
            self.admitted += 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Run an admitted turn (waits for a running slot); the place is given back at the end."""
        self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()
            with self._lock:
                self.admitted -= 1

    def abandon(self) -> None:
        """Give back a place that was admitted but never ran."""
        with self._lock:
            self.admitted -= 1
