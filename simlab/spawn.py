"""Start a background daemon of the lab: its own session, output to a log file, no Popen handle.

The lab's daemons outlive the command that started them, so they are started with ``posix_spawn``
rather than ``subprocess.Popen`` (whose handle would warn "subprocess is still running" when it is
collected). A daemon that exits while its starter still runs is reaped by :func:`pid_alive`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["pid_alive", "spawn_detached"]


def spawn_detached(cmd: list[str], log_file: Path, env: dict[str, str] | None = None) -> int:
    """Run ``cmd`` in a new session (its pid is its process group id), stdout+stderr appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_file), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(cmd[0], cmd, dict(os.environ if env is None else env), file_actions=actions, setsid=True)


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` runs (a zombie child of this process is reaped and counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # not our child: it exists
    return done == 0
