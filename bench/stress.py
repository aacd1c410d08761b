"""Concurrent provisions and job submissions against quotas and capacity, from separate processes.

Run by hand against a running embedded lab (``labops lab up``)::

    .venv/bin/python -m bench.stress [--lab-dir .labops] [--admins 10] [--researcher 4] [--jobs 8]

It prints what it tried, what each call answered, how long that took, and checks that no quota was
exceeded and no VM id collided; then it removes what it made (four-eyes deletes, stopped jobs).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import time
import uuid
from pathlib import Path
from typing import Any

from agent.services import build_services
from core.config import load_settings
from policies.guard import Caller, Guard

LAB = Path(".labops")


def _guard(lab: str) -> Guard:
    # A composition of its own per worker process, as each CLI process has.
    return build_services(load_settings(None, lab_dir=Path(lab))).guard


def _provision(lab: str, user: str, name: str, approval: str | None) -> tuple[str, str, float]:
    started = time.perf_counter()
    result = _guard(lab).call(
        "vm.provision", {"name": name, "cores": 1, "memory_gib": 1}, caller=Caller(user=user, channel="cli"),
        approval_id=approval, call_id=f"stress-{name}",
    )  # fmt: skip
    return result.status, result.message.splitlines()[0][:110], time.perf_counter() - started


def _submit(lab: str, user: str, n: int) -> tuple[str, str, float]:
    started = time.perf_counter()
    result = _guard(lab).call(
        "ray.submit", {"template": "heartbeat", "args": ["--seconds", "60"]}, caller=Caller(user=user, channel="cli"),
        call_id=f"stress-job-{uuid.uuid4().hex[:8]}-{n}",
    )  # fmt: skip
    return result.status, result.message.splitlines()[0][:110], time.perf_counter() - started


def _vms(lab: str) -> list[dict[str, Any]]:
    return list(_guard(lab).call("vm.list", {}, caller=Caller(user="admin1", channel="cli")).data or [])


def _report(title: str, outcomes: list[tuple[str, str, float]]) -> None:
    print(f"\n{title}")
    for status, message, seconds in outcomes:
        print(f"  {status:15} {seconds:5.1f} s  {message}")


def main() -> None:
    """Run the three scenarios, check the invariants, clean up."""
    parser = argparse.ArgumentParser(prog="python -m bench.stress", description=__doc__)
    parser.add_argument("--lab-dir", default=str(LAB))
    parser.add_argument("--admins", type=int, default=10, help="concurrent admin provisions (plenty of room)")
    parser.add_argument("--researcher", type=int, default=4, help="concurrent approved provisions by researcher1")
    parser.add_argument("--jobs", type=int, default=8, help="concurrent job submissions by researcher2")
    opts = parser.parse_args()
    lab, tag = opts.lab_dir, uuid.uuid4().hex[:6]
    guard = _guard(lab)
    assert guard.engine is not None
    failures: list[str] = []
    with concurrent.futures.ProcessPoolExecutor(max(opts.admins, opts.researcher, opts.jobs)) as pool:
        # 1. Admins: many at once, plenty of room: every call must succeed with its own VM id.
        names = [f"stress-{tag}-a{n}" for n in range(opts.admins)]
        outcomes = list(pool.map(_provision, [lab] * len(names), ["admin1"] * len(names), names, [None] * len(names)))
        _report(f"{opts.admins} concurrent provisions by admin1", outcomes)
        made = [v for v in _vms(lab) if v["name"] in names]
        if len(made) != sum(o[0] == "ok" for o in outcomes) or len({v["vmid"] for v in made}) != len(made):
            failures.append("admin provisions: VMs missing or ids collided")
        # 2. A researcher at the edge of the quota: approved calls at once may make only what the quota leaves.
        owned = [v for v in _vms(lab) if v["owner"] == "researcher1"]
        room = guard.engine.user("researcher1").quota["vms"] - len(owned)
        names_r = [f"stress-{tag}-r{n}" for n in range(opts.researcher)]
        approvals = []
        for name in names_r:
            asked = guard.call("vm.provision", {"name": name, "cores": 1, "memory_gib": 1},
                               caller=Caller(user="researcher1", channel="cli"), call_id=f"stress-{name}")  # fmt: skip
            approval = (asked.data or {}).get("approval", {}).get("id")
            if approval:
                guard.approve(approval, caller=Caller(user="admin1", channel="cli"))
            approvals.append(approval)
        outcomes = list(pool.map(_provision, [lab] * len(names_r), ["researcher1"] * len(names_r), names_r, approvals))
        _report(f"{opts.researcher} concurrent approved provisions by researcher1 (room for {max(room, 0)})", outcomes)
        after = [v for v in _vms(lab) if v["owner"] == "researcher1"]
        if len(after) > guard.engine.user("researcher1").quota["vms"]:
            failures.append(f"researcher1 holds {len(after)} VMs, over the quota")
        # 3. Job submissions at once against the running-job quota.
        outcomes = list(pool.map(_submit, [lab] * opts.jobs, ["researcher2"] * opts.jobs, range(opts.jobs)))
        _report(f"{opts.jobs} concurrent job submissions by researcher2", outcomes)
        jobs = guard.call("ray.list", {}, caller=Caller(user="researcher2", channel="cli")).data or []
        live = [j for j in jobs if j.get("owner") == "researcher2" and j.get("status") in ("PENDING", "RUNNING")]
        if len(live) > guard.engine.user("researcher2").quota["ray_jobs"]:
            failures.append(f"researcher2 runs {len(live)} jobs, over the quota")
    print(f"\nreservations left: {len(guard.reservations.list()) if guard.reservations else 0}")
    _cleanup(guard, lab, tag, live)
    print("\nOK: no quota exceeded, no VM id collided" if not failures else "\nFAILED: " + "; ".join(failures))


def _cleanup(guard: Guard, lab: str, tag: str, jobs: list[dict[str, Any]]) -> None:
    admin, second = Caller(user="admin1", channel="cli"), Caller(user="admin2", channel="cli")
    for vm in [v for v in _vms(lab) if v["name"].startswith(f"stress-{tag}")]:
        args = {"vmid": vm["vmid"], "stop_first": True}
        asked = guard.call("vm.delete", args, caller=admin)
        approval = (asked.data or {}).get("approval", {}).get("id")
        if approval:
            guard.approve(approval, caller=second)
            guard.call("vm.delete", args, caller=admin, approval_id=approval)
    for job in jobs:
        guard.call("ray.stop", {"job_id": job["job_id"]}, caller=Caller(user="researcher2", channel="cli"))
    print(f"cleaned up the stress-{tag}-* VMs and {len(jobs)} jobs")


if __name__ == "__main__":
    main()
