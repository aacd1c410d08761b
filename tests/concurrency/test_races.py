"""Two users (or ten) acting at once: quotas hold, VM ids do not collide, an approval is used once.

Each thread has its own guard (own connections), as separate processes or replicas would.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from core.config import load_settings
from policies.guard import Caller, Guard
from tools.context import ToolContext
from tools.registry import get_tool
from tools.testing import run_unguarded

ROOT = Path(__file__).resolve().parents[2]


def _guard(lab_dir: Path) -> Guard:
    return Guard.from_settings(load_settings(None, lab_dir=lab_dir))


def _vms(lab_dir: Path) -> list[dict[str, Any]]:
    ctx = ToolContext(settings=load_settings(None, lab_dir=lab_dir))
    return list(run_unguarded(get_tool("vm.list"), ctx, {}).data)


def test_parallel_approved_provisions_never_exceed_the_quota(tmp_path: Path, inprocess_lab: Any) -> None:
    lab = inprocess_lab(tmp_path / "lab", task_speed=20.0)
    requester, approver = Caller(user="researcher1", channel="cli"), Caller(user="admin1", channel="cli")
    guard = _guard(lab.lab_dir)
    # researcher1 owns 2 VMs against a quota of 3: three approved calls at once may make only one more.
    calls = []
    for n in range(3):
        args = {"name": f"race-{n}", "cores": 1, "memory_gib": 1}
        approval = guard.call("vm.provision", args, caller=requester).data["approval"]["id"]
        assert guard.approve(approval, caller=approver).status == "ok"
        calls.append((args, approval))

    def run(item: tuple[dict[str, Any], str]) -> str:
        args, approval = item
        return _guard(lab.lab_dir).call("vm.provision", args, caller=requester, approval_id=approval).status

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(run, calls))
    assert statuses.count("ok") == 1 and statuses.count("denied") == 2, statuses
    mine = [v for v in _vms(lab.lab_dir) if v["owner"] == "researcher1"]
    assert len(mine) == 3
    assert guard.reservations is not None and guard.reservations.list() == [], "every reservation was released"


def test_ten_parallel_provisions_make_ten_vms(tmp_path: Path, inprocess_lab: Any) -> None:
    lab = inprocess_lab(tmp_path / "lab", task_speed=20.0)
    admin = Caller(user="admin1", channel="cli")  # admins provision without an approval, within a quota of 20

    def run(n: int) -> Any:
        return _guard(lab.lab_dir).call("vm.provision", {"name": f"par-{n}", "cores": 1, "memory_gib": 1}, caller=admin)

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(run, range(10)))
    assert [r.status for r in results] == ["ok"] * 10, [r.message for r in results if r.status != "ok"]
    made = [v for v in _vms(lab.lab_dir) if v["name"].startswith("par-")]
    assert len(made) == 10 and len({v["vmid"] for v in made}) == 10
    assert all(v["owner"] == "admin1" and v["status"] == "running" for v in made)


def test_an_approval_is_used_once_under_concurrency(tmp_path: Path, inprocess_lab: Any) -> None:
    lab = inprocess_lab(tmp_path / "lab", task_speed=20.0)
    guard = _guard(lab.lab_dir)
    requester = Caller(user="researcher2", channel="cli")
    args = {"name": "once", "cores": 1, "memory_gib": 1}
    approval = guard.call("vm.provision", args, caller=requester).data["approval"]["id"]
    guard.approve(approval, caller=Caller(user="admin2", channel="cli"))

    def run(_: int) -> str:
        return _guard(lab.lab_dir).call("vm.provision", args, caller=requester, approval_id=approval).status

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        statuses = list(pool.map(run, range(5)))
    assert statuses.count("ok") == 1, statuses
    assert [v["name"] for v in _vms(lab.lab_dir)].count("once") == 1


def test_parallel_job_submissions_from_processes_respect_the_quota(ray_lab: Path, tmp_path: Path) -> None:
    """Eight `labops tool call ray.submit` processes at once for a user with a quota of 4 running jobs."""
    settings = load_settings(None, lab_dir=ray_lab)
    guard = Guard.from_settings(settings)
    user = "researcher2"
    before = [j for j in guard.call("ray.list", {}, caller=Caller(user=user, channel="cli")).data or []
              if j.get("owner") == user and j.get("status") in ("PENDING", "RUNNING")]  # fmt: skip
    room = 4 - len(before)
    env = {**os.environ, "LABOPS_LAB_DIR": str(ray_lab)}
    labops = str(Path(sys.executable).with_name("labops"))
    # Long enough that no job ends while eight processes start on a loaded two-core machine (they are stopped
    # at the end): a job that finished early would free room and make the count depend on timing.
    args = '{"template": "heartbeat", "args": ["--seconds", "600"]}'
    procs = [
        subprocess.Popen(
            [labops, "tool", "call", "ray.submit", "--args", args, "--as", user, "--json"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        outcomes.append((proc.returncode, out, err))
    ok = [o for o in outcomes if o[0] == 0]
    denied = [o for o in outcomes if o[0] == 5]
    try:
        assert len(ok) == room and len(denied) == 8 - room, [(c, o[-300:], e[-300:]) for c, o, e in outcomes]
        assert all("running Ray jobs" in o for _c, o, _e in denied)
    finally:
        for job in guard.call("ray.list", {}, caller=Caller(user=user, channel="cli")).data or []:
            if job.get("owner") == user and job.get("status") in ("PENDING", "RUNNING"):
                guard.call("ray.stop", {"job_id": job["job_id"]}, caller=Caller(user=user, channel="cli"))
