"""The lab's background daemons: start one in its own session, wait until it answers, stop its process group.

The lab's daemons outlive the command that started them, so they are started with ``posix_spawn``
rather than ``subprocess.Popen`` (whose handle would warn "subprocess is still running" when it is
collected). A daemon that exits while its starter still runs is reaped by :func:`pid_alive`.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "LabStartError",
    "http_ok",
    "kill_group",
    "pick_port",
    "pid_alive",
    "port_open",
    "signal_until_gone",
    "spawn_detached",
    "wait_until",
]

READY_TIMEOUT = 90.0


class LabStartError(RuntimeError):
    """A part of the embedded lab did not start; the message points at its log file."""


def spawn_detached(cmd: list[str], log_file: Path, env: dict[str, str] | None = None) -> int:
    """Run ``cmd`` in a new session (its pid is its process group id), stdout+stderr appended to ``log_file``.

    A session of its own: ``lab down`` stops the whole process group, and Ctrl-C in the terminal that ran
    ``lab up`` does not reach the background lab.
    """
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
        # Not our child: it exists, unless it is a zombie its parent (often init) has not reaped yet. A killed
        # daemon stays one for a moment, and os.kill(pid, 0) still succeeds on it.
        return not _zombie(pid)
    return done == 0


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def wait_until(check: Callable[[], bool], *, what: str, log_file: Path, pid: int | None = None) -> None:
    """Poll ``check`` until it holds; :class:`LabStartError` if ``pid`` exits first or time runs out."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not pid_alive(pid):
            raise LabStartError(f"{what} exited during start-up; see {log_file}")
        time.sleep(0.3)
    raise LabStartError(f"{what} did not become ready within {READY_TIMEOUT:.0f} s; see {log_file}")


def signal_until_gone(pid: int, steps: list[tuple[signal.Signals, float]], *, send: Callable[[int], None]) -> bool:
    """For each ``(signal, seconds)``: ``send`` the signal, then wait that long for ``pid`` to exit. True once gone.

    ``send`` delivers to the process or to its group (``os.kill`` or ``os.killpg`` bound to an id); a target
    that no longer exists counts as gone.
    """
    for sig, wait in steps:
        try:
            send(sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
    return not pid_alive(pid)


def kill_group(pid: int, *, grace: float = 10.0) -> None:
    """TERM the process group led by ``pid``, then KILL it if ``pid`` outlives ``grace`` seconds."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    signal_until_gone(pid, [(signal.SIGTERM, grace), (signal.SIGKILL, grace)], send=lambda sig: os.killpg(pgid, sig))


def pick_port(preferred: int, taken: set[int]) -> int:
    """``preferred`` when it is free and not in ``taken``, else any free port the system hands out."""
    if preferred not in taken and _port_free(preferred):
        return preferred
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def http_ok(url: str, ca_file: Path | None = None) -> bool:
    """True when the URL answers HTTP at all (an auth error still means the server is up)."""
    ctx = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    try:
        with urllib.request.urlopen(url, timeout=3, context=ctx):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False
