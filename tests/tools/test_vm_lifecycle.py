"""VM provisioning, power and delete against the simulator: end to end, idempotent, nothing half-made left."""

from __future__ import annotations

from typing import Any

from core.config import load_settings
from policies.guard import Caller, Guard

# Admins provision and power VMs without approval; deleting needs a second admin (policies/cedar).
CALLER = Caller(user="admin1", channel="cli")
SECOND = "admin2"


def _delete(guard: Guard, args: dict[str, Any]) -> Any:
    """Delete through the four-eyes approval: admin1 asks, admin2 approves, admin1 runs it."""
    asked = guard.call("vm.delete", args, caller=CALLER)
    if asked.status != "needs_approval":
        return asked
    approval_id = asked.data["approval"]["id"]
    assert guard.approvals is not None
    guard.approvals.approve(approval_id, approver=SECOND)
    return guard.call("vm.delete", args, caller=CALLER, approval_id=approval_id)


def _guard(simulator: Any, *, task_timeout: float | None = None) -> Guard:
    settings = load_settings(None, lab_dir=simulator.lab_dir)
    if task_timeout is not None:
        settings = settings.model_copy(update={"pve": settings.pve.model_copy(update={"task_timeout": task_timeout})})
    return Guard.from_settings(settings)


def _names(guard: Guard) -> dict[str, int]:
    return {v["name"]: v["vmid"] for v in guard.call("vm.list", {}, caller=CALLER).data}


def test_plan_changes_nothing_and_names_the_calls(simulator: Any) -> None:
    guard = _guard(simulator)
    before = _names(guard)
    plan = guard.plan("vm.provision", {"name": "planned-only", "cores": 2, "memory_gib": 4}, caller=CALLER)
    assert plan.status == "ok" and "feasible" in plan.message
    assert plan.data["api_calls"][0].startswith("POST /nodes/node01/qemu/9000/clone")
    assert plan.data["capacity"]["memory_gib"] == 4 and all(c["passed"] for c in plan.data["checks"])
    too_big = guard.plan("vm.provision", {"name": "huge", "cores": 4, "memory_gib": 200}, caller=CALLER)
    assert "not feasible" in too_big.message
    assert _names(guard) == before


def test_provision_runs_and_the_same_request_key_makes_one_vm(simulator: Any) -> None:
    guard = _guard(simulator)
    args = {"name": "ray-worker-9", "cores": 2, "memory_gib": 4, "node": "node03"}
    first = guard.call("vm.provision", args, caller=CALLER, call_id="call-abc")
    assert first.status == "ok", first.message
    vmid = first.data["vmid"]
    assert first.data["ip"].startswith("10.25.60.")
    again = guard.call("vm.provision", args, caller=CALLER, call_id="call-abc")
    assert again.status == "ok" and again.data["vmid"] == vmid
    assert list(_names(guard)).count("ray-worker-9") == 1

    shown = guard.call("vm.show", {"vmid": vmid}, caller=CALLER).data
    assert shown["status"] == "running" and shown["owner"] == "admin1" and shown["memory_gib"] == 4
    assert guard.call("vm.list", {"owner": "admin1", "node": "node03"}, caller=CALLER).data[0]["vmid"] == vmid

    # Not feasible (it runs, stop_first unset): refused before anyone is asked to approve it.
    assert guard.approvals is not None
    pending = len(guard.approvals.list(state="pending"))
    refused = guard.call("vm.delete", {"vmid": vmid}, caller=CALLER)
    assert refused.status == "error" and "stop_first" in refused.message and "no approval" in refused.message
    assert len(guard.approvals.list(state="pending")) == pending
    assert guard.call("vm.stop", {"vmid": vmid, "mode": "stop"}, caller=CALLER).status == "ok"
    assert guard.call("vm.start", {"vmid": vmid}, caller=CALLER).status == "ok"
    assert guard.call("vm.reboot", {"vmid": vmid}, caller=CALLER).status == "ok"
    deleted = _delete(guard, {"vmid": vmid, "stop_first": True})
    assert deleted.status == "ok", deleted.message
    assert "ray-worker-9" not in _names(guard)


def test_a_provision_that_fails_midway_leaves_nothing_behind(simulator: Any) -> None:
    # A task timeout shorter than the clone: the tool must wait for the task, then destroy the VM.
    guard = _guard(simulator, task_timeout=0.01)
    before = _names(guard)
    result = guard.call("vm.provision", {"name": "too-slow", "cores": 1, "memory_gib": 1}, caller=CALLER)
    assert result.status == "error" and "clone step" in result.message and "destroyed VM" in result.message
    assert _names(guard) == before


def test_refusals_are_errors_the_model_can_act_on(simulator: Any) -> None:
    guard = _guard(simulator)
    offline = guard.call("vm.provision", {"name": "x1", "node": "node04"}, caller=CALLER)
    assert offline.status == "error" and "offline" in offline.message and "omit `node`" in offline.message
    taken = guard.call("vm.provision", {"name": "proj-pg01"}, caller=CALLER)
    assert taken.status == "error" and "already called proj-pg01" in taken.message
    bad_name = guard.call("vm.provision", {"name": "Bad_Name"}, caller=CALLER)
    assert bad_name.status == "error" and "DNS label" in bad_name.message
    # Policy refuses first (tag `protected`); PVE's own protection flag would refuse too.
    protected = _delete(guard, {"vmid": 150, "stop_first": True})
    assert protected.status == "denied" and "protected" in protected.message
    assert guard.call("vm.show", {"vmid": 150}, caller=CALLER).data["status"] == "running"
