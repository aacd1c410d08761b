"""Which process holds a claim or a reservation, and whether it still runs (a dead owner's claims expire)."""

from __future__ import annotations

import os
import socket

__all__ = ["owner_alive", "this_process"]


def this_process() -> str:
    """``host:pid`` of the calling process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the ``host:pid`` owner still runs (another host's owner is assumed alive until it expires)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
