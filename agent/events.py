"""Events a turn streams to its channel (tokens, tool calls and results, approvals, notices)."""

from __future__ import annotations

import contextlib
from typing import Any

from langgraph.config import get_stream_writer

__all__ = ["emit"]


def emit(event: dict[str, Any]) -> None:
    """Send ``event`` to the stream of the running graph (nothing outside one, e.g. a node called in a test)."""
    with contextlib.suppress(RuntimeError):
        get_stream_writer()(event)
