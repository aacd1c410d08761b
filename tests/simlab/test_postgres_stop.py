"""Stopping the embedded PostgreSQL needs no helper process.

A helper (pg_ctl) run as the server's system user forks the stopping process; in a process with gRPC
threads (the eval runner, which holds a pymilvus client) such a child aborted before it ran, and the lab's
database was then stopped only by a fallback, with a traceback in the eval's output.
"""

from __future__ import annotations

import socket
import subprocess
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
            postgres.stop_postgres(lab_dir)  # stopping a stopped server is a no-op
    finally:
        postgres.stop_postgres(lab_dir)
