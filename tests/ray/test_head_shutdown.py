"""Stopping the lab's Ray head also stops the jobs it runs: no driver is left behind, re-parented to init."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.config import load_settings
from policies.guard import Caller, Guard
from simlab.ray_head import _strays, start_ray_head, stop_ray_head


@pytest.mark.slow
def test_stopping_the_head_leaves_no_job_driver_running(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    info = start_ray_head(tmp_path, dashboard_port=port, num_cpus=2)
    (tmp_path / "lab.json").write_text(json.dumps({"version": 1, "parts": {"ray": info}}))
    guard = Guard.from_settings(load_settings(None, lab_dir=tmp_path))
    caller = Caller(user="researcher1", channel="cli")
    submitted = guard.call("ray.submit", {"template": "heartbeat", "args": ["--seconds", "600"]}, caller=caller)
    assert submitted.status == "ok", submitted.message
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if guard.call("ray.status", {"job_id": submitted.data["job_id"]}, caller=caller).data["status"] == "RUNNING":
            break
        time.sleep(1)
    temp = Path(info["temp_dir"])
    assert _strays(temp), "the job's driver runs from the head's session directory"
    stop_ray_head(tmp_path)
    time.sleep(1)
    assert _strays(temp) == [], "no process of the lab's Ray session outlives `lab down`"
