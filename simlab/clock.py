"""The simulator's clock: the machine's time, optionally shifted to a chosen instant.

Every clock-driven behaviour of the simulated lab (the 09:00 backups, the 11:00 verify job, task
durations, tickets, timestamps in answers) reads :func:`now`. ``python -m simlab.server --now ISO`` (or
``LABOPS_SIM_NOW``) starts the clock at that instant and lets it run at normal speed from there, so a
test or a demo can put the lab at 10:30 UTC without touching the machine's clock. In-process tests may
instead use ``time-machine``: :func:`now` reads ``time.time()`` and follows it.
"""

from __future__ import annotations

import datetime as dt
import time

__all__ = ["now", "parse_instant", "set_now", "shift"]

_offset = 0.0


def now() -> float:
    """Seconds since the epoch on the simulator's clock."""
    return time.time() + _offset


def shift() -> float:
    """How far the simulator's clock is ahead of the machine's (seconds; negative when behind)."""
    return _offset


def set_now(instant: float | None) -> None:
    """Make :func:`now` return ``instant`` at this moment (None: back to the machine's clock)."""
    global _offset
    _offset = 0.0 if instant is None else instant - time.time()


def parse_instant(text: str) -> float:
    """An ISO 8601 time (``2026-03-10T10:30:00Z``; no zone means UTC) or epoch seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time or epoch seconds: {text!r} (example: 2026-03-10T10:30:00Z)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()
