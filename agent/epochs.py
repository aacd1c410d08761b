"""Raw epoch timestamps an answer copied from the tool data, written as UTC times people can read."""

from __future__ import annotations

import datetime as dt
import re

from agent.haystack import Evidence

__all__ = ["readable"]

_EPOCH_KEYS = re.compile(r"(?:time|_at|started|finished|last_backup|last_used|created|expires|next_run|boot)", re.I)


def readable(answer: str, evidence: Evidence) -> str:
    """Raw epoch timestamps copied from the tool data, written as UTC times (``2026-12-01 09:06 UTC``)."""
    epochs = {
        int(v)
        for row in evidence.records
        for k, v in row.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and 1e9 < v < 4e9 and _EPOCH_KEYS.search(k)
    }
    if not epochs:
        return answer

    def when(match: re.Match[str]) -> str:
        value = int(float(match.group(0)))
        if value not in epochs:
            return match.group(0)
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    return re.sub(r"(?<![\w.])\d{10}(?:\.\d+)?(?!\w|\.\d)", when, answer)
