"""Stopping the embedded PostgreSQL needs no helper process.

A helper (pg_ctl) run as the server's system user forks the stopping process; in a process with gRPC
threads (the eval runner, which holds a pymilvus client) such a child aborted before it ran, and the lab's
database was then stopped only by a fallback, with a traceback in the eval's output.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from simlab import postgres
from simlab.daemons import pid_alive
from simlab.secrets import ensure_secrets


def test_postgres_stops_by_signal_without_forking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab_dir = tmp_path / "lab"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    info = postgres.start_postgres(lab_dir, port=port, secrets=ensure_secrets(lab_dir))
    try:

        def no_fork(*args: Any, **kwargs: Any) -> None:
            raise AssertionError(f"stopping started a process: {args[0]}")

        with monkeypatch.context() as patched:
            patched.setattr(subprocess, "run", no_fork)
            patched.setattr(subprocess, "Popen", no_fork)
            postgres.stop_postgres(lab_dir)
            assert postgres.postgres_status(lab_dir) is None and not pid_alive(info["pid"])
            assert not postgres.socket_dir(lab_dir).exists()  # nothing of the lab stays behind in /tmp
            postgres.stop_postgres(lab_dir)  # stopping a stopped server is a no-op
    finally:
        postgres.stop_postgres(lab_dir)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_killed_server_is_started_again_though_its_pid_file_and_processes_remain(tmp_path: Path) -> None:
    import os
    import signal

    lab_dir = tmp_path / "lab"
    secrets = ensure_secrets(lab_dir)
    info = postgres.start_postgres(lab_dir, port=_port(), secrets=secrets)
    try:
        # kill -9 of the postmaster: its pid file stays, and at once after the kill the pid may still be a zombie.
        os.kill(info["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(info["pid"]) and time.monotonic() < deadline:  # dead (a zombie counts as dead)
            time.sleep(0.01)
        again = postgres.start_postgres(lab_dir, port=_port(), secrets=secrets)
        assert again["pid"] != info["pid"] and postgres.postgres_status(lab_dir) is not None
        postgres.stop_postgres(lab_dir)

        # What is left of a server keeps its shared memory and lock file: a single-user postgres stands for an
        # orphaned backend or parallel worker (same binary, same data directory, alive).
        ids: dict[str, Any] = {}
        if os.geteuid() == 0:
            ids = {"user": postgres.SYSTEM_USER, "group": postgres.SYSTEM_USER, "extra_groups": []}
        data = lab_dir / "postgres" / "data"
        orphan = subprocess.Popen([str(postgres.BIN / "postgres"), "--single", "-D", str(data.resolve()), "postgres"],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  cwd=data, **ids)  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while not postgres.leftover_processes(lab_dir) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert postgres.leftover_processes(lab_dir) == [orphan.pid]
            started = postgres.start_postgres(lab_dir, port=_port(), secrets=secrets)
            assert orphan.wait(timeout=10) is not None, "the leftover was stopped"
            assert postgres.postgres_status(lab_dir) == {"pid": started["pid"], "port": started["port"]}
        finally:
            if orphan.poll() is None:
                orphan.kill()
            orphan.wait()
            if orphan.stdin is not None:
                orphan.stdin.close()
    finally:
        postgres.stop_postgres(lab_dir)
