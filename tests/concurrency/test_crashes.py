"""A process killed mid-call, an API that dies mid-clone: the retry with the same request key finishes the job.

The provision journal records each step before it runs; the tests cut the call at each step (the PVE API
taken down, or the CLI process killed) and check that the retry leaves exactly one VM, fully configured,
owned and running, and that nothing stays unaccounted for.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from core.config import load_settings
from policies.guard import Caller, Guard
from policies.reconcile import orphans
from policies.requests import RequestKeys
from tools.context import ToolContext
from tools.registry import get_tool
from tools.testing import run_unguarded
from tools.vm.usage import vm_usage

ROOT = Path(__file__).resolve().parents[2]
ADMIN = Caller(user="admin1", channel="cli")
ARGS = {"name": "crash-vm", "cores": 3, "memory_gib": 2}


def _wait_for_step(lab_dir: Path, key: str, step: str, timeout: float = 60.0) -> None:
    keys = RequestKeys.from_settings(load_settings(None, lab_dir=lab_dir))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(s["step"] == step for s in keys.steps(key, "vm.provision")):
            return
        time.sleep(0.02)
    raise AssertionError(f"step {step} was never recorded")


def _the_vm(lab_dir: Path) -> dict[str, Any]:
    ctx = ToolContext(settings=load_settings(None, lab_dir=lab_dir))
    made = [v for v in run_unguarded(get_tool("vm.list"), ctx, {}).data if v["name"] == ARGS["name"]]
    assert len(made) == 1, made
    return dict(made[0])


def _assert_finished(lab_dir: Path) -> None:
    vm = _the_vm(lab_dir)
    assert vm["owner"] == "admin1" and vm["cores"] == 3 and vm["memory_gib"] == 2 and vm["status"] == "running"
    assert orphans(load_settings(None, lab_dir=lab_dir)) == [], "every LabOps VM is accounted for"


@pytest.mark.parametrize("step", ["allocate", "clone", "start"])
def test_the_api_dying_mid_provision_is_resumed(tmp_path: Path, inprocess_lab: Any, step: str) -> None:
    lab = inprocess_lab(tmp_path / "lab", task_speed=1.0)
    guard = Guard.from_settings(load_settings(None, lab_dir=lab.lab_dir))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(guard.call, "vm.provision", ARGS, caller=ADMIN, call_id="api-crash")
        _wait_for_step(lab.lab_dir, "api-crash", step)
        lab.stop_part("pve")
        cut = future.result(timeout=120)
    assert cut.status == "error" and "same request key" in cut.message, cut.message
    lab.start_part("pve")
    done = Guard.from_settings(load_settings(None, lab_dir=lab.lab_dir)).call(
        "vm.provision", ARGS, caller=ADMIN, call_id="api-crash"
    )
    assert done.status == "ok", done.message
    _assert_finished(lab.lab_dir)


@pytest.mark.parametrize("step", ["allocate", "clone", "configure", "start"])
def test_a_killed_cli_is_resumed_by_the_retry(tmp_path: Path, inprocess_lab: Any, step: str) -> None:
    lab = inprocess_lab(tmp_path / "lab", task_speed=1.0)
    env = {**os.environ, "LABOPS_LAB_DIR": str(lab.lab_dir)}
    command = [
        str(Path(sys.executable).with_name("labops")), "tool", "call", "vm.provision", "--args", json.dumps(ARGS),
        "--as", "admin1", "--request-key", "cli-crash", "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_step(lab.lab_dir, "cli-crash", step)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    retry = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert json.loads(retry.stdout)["status"] == "ok"
    _assert_finished(lab.lab_dir)
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert json.loads(again.stdout)["data"]["vmid"] == _the_vm(lab.lab_dir)["vmid"], "the same key, the same VM"


def test_reconcile_lists_a_half_made_vm_nobody_finished(tmp_path: Path, inprocess_lab: Any) -> None:
    lab = inprocess_lab(tmp_path / "lab", task_speed=1.0)
    guard = Guard.from_settings(load_settings(None, lab_dir=lab.lab_dir))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(guard.call, "vm.provision", ARGS, caller=ADMIN, call_id="left-behind")
        _wait_for_step(lab.lab_dir, "left-behind", "clone")
        lab.stop_part("pve")
        future.result(timeout=120)
    lab.start_part("pve")
    time.sleep(0.5)
    found = orphans(load_settings(None, lab_dir=lab.lab_dir))
    assert [o["name"] for o in found] == ["crash-vm"] and found[0]["request_key"] == "left-behind"
    assert found[0]["owner"] == "admin1", "a half-made VM is attributable from the clone on"
    # The quota counts it for its owner even before it is tagged.
    assert vm_usage(ToolContext(settings=load_settings(None, lab_dir=lab.lab_dir)), "admin1")["vms"] >= 1
