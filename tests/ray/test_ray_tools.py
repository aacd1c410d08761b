"""Ray tools against a real local Ray head: jobs run, logs come back, stop works, request keys dedupe."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings, load_settings
from policies.guard import Caller, Guard

CALLER = Caller(user="researcher1", channel="cli")


@pytest.fixture(scope="module")
def guard(ray_lab: Path) -> Guard:
    return Guard.from_settings(load_settings(None, lab_dir=ray_lab))


def _wait(guard: Guard, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = guard.call("ray.status", {"job_id": job_id}, caller=CALLER).data
        if row["status"] in {"SUCCEEDED", "FAILED", "STOPPED"}:
            return dict(row)
        time.sleep(1)
    raise AssertionError(f"job {job_id} did not finish")


def test_parallel_sum_succeeds_and_its_logs_come_back(guard: Guard) -> None:
    submitted = guard.call(
        "ray.submit", {"template": "parallel-sum", "args": ["--n", "100000"]}, caller=CALLER, call_id="sum-1"
    )
    assert submitted.status == "ok", submitted.message
    job_id = submitted.data["job_id"]
    again = guard.call(
        "ray.submit", {"template": "parallel-sum", "args": ["--n", "100000"]}, caller=CALLER, call_id="sum-1"
    )
    assert again.data["job_id"] == job_id and "repeated request" in again.message
    final = _wait(guard, job_id)
    assert final["status"] == "SUCCEEDED", final
    logs = guard.call("ray.logs", {"job_id": job_id, "tail": 5}, caller=CALLER)
    expected = 100000 * 100001 * 200001 // 6
    assert f"= {expected}" in logs.message and "RESULT OK" in logs.message
    mine = guard.call("ray.list", {"owner": "researcher1"}, caller=CALLER)
    assert job_id in [j["job_id"] for j in mine.data]


def test_redshift_histogram_reads_the_desi_table(guard: Guard, desi_db: Any) -> None:
    job_id = guard.call("ray.submit", {"template": "redshift-histogram"}, caller=CALLER).data["job_id"]
    assert _wait(guard, job_id)["status"] == "SUCCEEDED"
    text = guard.call("ray.logs", {"job_id": job_id, "tail": 3}, caller=CALLER).message
    assert "totals GALAXY=" in text


def test_a_long_job_can_be_stopped(guard: Guard) -> None:
    job_id = guard.call("ray.submit", {"template": "heartbeat", "args": ["--seconds", "300"]}, caller=CALLER).data[
        "job_id"
    ]
    deadline = time.monotonic() + 60
    while guard.call("ray.status", {"job_id": job_id}, caller=CALLER).data["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert guard.call("ray.stop", {"job_id": job_id}, caller=CALLER).status == "ok"
    assert _wait(guard, job_id)["status"] == "STOPPED"


def test_bad_requests_and_a_missing_head_are_error_envelopes(guard: Guard, tmp_path: Path) -> None:
    unknown = guard.call("ray.submit", {"template": "mine"}, caller=CALLER)
    assert unknown.status == "error" and "parallel-sum" in unknown.message
    pip = guard.call("ray.submit", {"template": "parallel-sum", "pip": ["evil-package"]}, caller=CALLER)
    assert pip.status == "error" and "runtime_env_allowlist" in pip.message
    missing = guard.call("ray.status", {"job_id": "raysubmit_nope"}, caller=CALLER)
    assert missing.status == "error" and "ray.list" in missing.message
    down = Settings.model_validate({"lab_dir": tmp_path, "ray": {"address": "http://127.0.0.1:9"}})
    gone = Guard.from_settings(down).call("ray.list", {}, caller=CALLER)
    assert gone.status == "error" and "ray.address" in gone.message
