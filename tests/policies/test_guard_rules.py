"""One source of truth for risk, approvals decided through the guard, who is asking, and request keys.

Time-driven rules (approval expiry, request-key expiry) run under a controlled clock (``time-machine``).
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path
from typing import Any

import pytest
import time_machine

from core.config import load_settings
from core.errors import IdentityError, PolicyError
from core.store import Database
from policies.approvals import ApprovalService
from policies.audit import AuditLog
from policies.engine import PolicyEngine
from policies.guard import Caller, Guard
from policies.identity import cli_identity
from policies.requests import RequestKeys, request_binding
from policies.schema import GROUPS, GUARD_ACTIONS, build_schema, declared_actions
from tools.base import Tool, ToolResult, UnguardedCall
from tools.context import ToolContext
from tools.registry import all_tools, get_tool
from tools.testing import run_unguarded

R1 = Caller(user="researcher1", channel="cli")
A1 = Caller(user="admin1", channel="cli")
A2 = Caller(user="admin2", channel="cli")
SHIPPED = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture
def guard(simulator: Any, tmp_path: Path) -> Guard:
    settings = load_settings(None, lab_dir=simulator.lab_dir)
    engine = PolicyEngine.from_settings(settings)
    db = Database.sqlite(tmp_path / "store.sqlite")
    return Guard(
        settings=settings,
        engine=engine,
        audit=AuditLog(db),
        approvals=ApprovalService(db, engine.directory, ttl_seconds=3600),
        keys=RequestKeys(db),
    )


# --- one source of truth for each tool's risk ----------------------------------------------------------
def test_every_tool_has_one_action_in_the_group_of_its_risk() -> None:
    schema = PolicyEngine.from_settings(load_settings(None)).schema
    tools = all_tools()
    for tool in tools:
        lines = [line for line in schema.splitlines() if line.startswith(f'action "{tool.name}" ')]
        assert len(lines) == 1, tool.name
        assert f'in ["{tool.risk}"]' in lines[0], f"{tool.name}: risk {tool.risk}, schema {lines[0]}"
    dotted = [a for a in declared_actions(schema) if a not in GROUPS and a not in GUARD_ACTIONS]
    assert sorted(dotted) == sorted(t.name for t in tools), "no action without a tool"


def test_a_hand_declared_tool_action_or_an_orphan_action_stops_loading() -> None:
    base = (SHIPPED / "cedar" / "labops.cedarschema").read_text()
    with pytest.raises(PolicyError, match="declared by hand"):
        build_schema(base + '\naction "vm.delete" in ["read"];\n', all_tools())
    with pytest.raises(PolicyError, match="belongs to no registered tool"):
        build_schema(base + '\naction "vm.explode" in ["write"];\n', all_tools())


def test_a_write_tool_cannot_be_filed_under_read() -> None:
    """The group is derived from the risk: changing the risk moves the action, nothing else can."""
    provision = get_tool("vm.provision")
    as_read = Tool(
        name="vm.provision",
        args_model=provision.args_model,
        fn=provision.fn,
        risk="read",
        summary=provision.summary,
    )
    others = [t for t in all_tools() if t.name != "vm.provision"]
    base = (SHIPPED / "cedar" / "labops.cedarschema").read_text()
    assert 'action "vm.provision" in ["read"]' in build_schema(base, [*others, as_read])
    assert 'action "vm.provision" in ["write"]' in build_schema(base, all_tools())


def test_tools_do_not_run_around_the_guard(simulator: Any) -> None:
    settings = load_settings(None, lab_dir=simulator.lab_dir)
    tool = get_tool("vm.nodes")
    with pytest.raises(UnguardedCall):
        tool.run(ToolContext(settings=settings), tool.parse({}))
    assert run_unguarded(tool, ToolContext(settings=settings), {}).status == "ok"


# --- approvals decided through the guard -----------------------------------------------------------------
def test_approve_and_deny_pass_cedar_and_are_audited(guard: Guard) -> None:
    assert guard.audit is not None
    asked = guard.call("vm.provision", {"name": "desk-vm", "cores": 1, "memory_gib": 1}, caller=R1)
    approval_id = asked.data["approval"]["id"]
    # The printed command names an approver who may give it, and runs as printed.
    assert f"labops approvals approve {approval_id} --as admin1" in asked.message
    assert asked.data["approvers"] == ["admin1", "admin2"]

    by_researcher = guard.approve(approval_id, caller=Caller(user="researcher2", channel="cli"))
    assert by_researcher.status == "denied"
    by_self = guard.approve(approval_id, caller=R1)
    assert by_self.status == "denied"
    short = approval_id[:10]  # a unique prefix is accepted
    ok = guard.approve(short, caller=A1, reason="fine")
    assert ok.status == "ok" and ok.data["approval"]["state"] == "approved"
    again = guard.approve(approval_id, caller=A2)
    assert again.status == "error" and "approved" in again.message
    events = [(e["tool"], e["event"], e.get("decision")) for e in guard.audit.tail(20)]
    assert ("approval.approve", "decision", "deny") in events
    assert ("approval.approve", "decision", "allow") in events and ("approval.approve", "approved", None) in events
    assert ("approval.approve", "approval_refused", None) in events

    asked = guard.call("vm.provision", {"name": "desk-vm-2", "cores": 1, "memory_gib": 1}, caller=R1)
    denied = guard.deny(asked.data["approval"]["id"], caller=A2, reason="use the shared Ray cluster")
    assert denied.status == "ok" and denied.data["approval"]["state"] == "denied"
    unknown = guard.approve("apr_doesnotexist", caller=A1)
    assert unknown.status == "error" and "no approval" in unknown.message


def test_an_approval_expires_under_a_controlled_clock(guard: Guard) -> None:
    args = {"name": "late-vm", "cores": 1, "memory_gib": 1}
    start = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        approval_id = guard.call("vm.provision", args, caller=R1).data["approval"]["id"]
        assert guard.approve(approval_id, caller=A2).status == "ok"
        clock.shift(3599)
        assert guard.approvals is not None and guard.approvals.get(approval_id).state == "approved"
        clock.shift(2)
        late = guard.call("vm.provision", args, caller=R1, approval_id=approval_id)
        assert late.status == "error" and "expired" in late.message


def test_a_quota_denial_names_the_limit_and_the_usage(guard: Guard) -> None:
    # researcher1 owns 130 (4 cores, 16 GiB) and 132 (8 cores, 24 GiB) in the seed: 12 of 16 cores used.
    over = guard.call("vm.provision", {"name": "too-big", "cores": 8, "memory_gib": 32}, caller=R1)
    assert over.status == "denied"
    assert "researcher1 uses 12 of 16 cores; this VM needs 8 more" in over.message
    assert "researcher1 uses 40 of 64 GiB of memory; this VM needs 32 more" in over.message


# --- who is asking ------------------------------------------------------------------------------------
def test_as_is_honoured_only_for_operators() -> None:
    directory = PolicyEngine.from_settings(load_settings(None)).directory
    assert cli_identity(directory, claimed=None, account="root").user == "lab-operator"
    claimed = cli_identity(directory, claimed="admin2", account="root")
    assert claimed.user == "admin2" and claimed.real_user == "lab-operator" and claimed.claimed
    assert cli_identity(directory, claimed=None, account="alice").user == "alice"  # unmapped: an unknown user
    with pytest.raises(IdentityError, match="operator"):
        cli_identity(directory, claimed="admin2", account="alice")
    with pytest.raises(IdentityError, match="not a user name"):
        cli_identity(directory, claimed='evil"', account="root")


# --- request keys ---------------------------------------------------------------------------------------
def test_a_request_key_is_bound_to_the_user_and_the_arguments(guard: Guard) -> None:
    args = {"template": "heartbeat", "args": ["--seconds", "1"]}
    keys = guard.keys
    assert keys is not None
    binding = request_binding(
        "ray.submit", "researcher1", guard.lookup("ray.submit").parse(args).model_dump(mode="json")
    )
    assert keys.claim("key-1", "ray.submit", binding).state == "new"
    keys.finish(
        "key-1", "ray.submit", ToolResult.ok("submitted job labops_x", data={"job_id": "labops_x"}).model_dump()
    )
    replay = guard.call("ray.submit", args, caller=R1, call_id="key-1")
    assert replay.status == "ok" and replay.data == {"job_id": "labops_x"} and "repeated request" in replay.message
    other_user = guard.call("ray.submit", args, caller=Caller(user="researcher2", channel="cli"), call_id="key-1")
    assert other_user.status == "error" and "different" in other_user.message
    other_args = guard.call("ray.submit", {**args, "args": ["--seconds", "2"]}, caller=R1, call_id="key-1")
    assert other_args.status == "error" and "different" in other_args.message


def test_request_keys_expire_after_a_day_under_a_controlled_clock(tmp_path: Path) -> None:
    keys = RequestKeys(Database.sqlite(tmp_path / "k.sqlite"))
    with time_machine.travel(dt.datetime(2026, 6, 1, tzinfo=dt.UTC), tick=False) as clock:
        assert keys.claim("k", "vm.provision", "b1").state == "new"
        keys.finish("k", "vm.provision", {"status": "ok", "data": None, "message": "made"})
        clock.shift(86399)
        assert keys.lookup("k", "vm.provision", "b1").state == "done"
        assert keys.claim("k", "vm.provision", "b2").state == "conflict"
        clock.shift(2)
        assert keys.claim("k", "vm.provision", "b2").state == "new"


def test_a_claim_of_a_dead_process_is_resumed(tmp_path: Path) -> None:
    db = Database.sqlite(tmp_path / "k.sqlite")
    keys = RequestKeys(db)
    assert keys.claim("k", "vm.provision", "b").state == "new"
    assert keys.claim("k", "vm.provision", "b").state == "running"  # this process still owns it
    # The owning process died (a pid that cannot exist on this host): the next retry resumes.
    with db.session() as s:
        s.execute("UPDATE request_keys SET owner = ? WHERE key = 'k'", (f"{socket.gethostname()}:999999999",))
        s.commit()
    assert keys.claim("k", "vm.provision", "b").state == "resume"
    assert [u["key"] for u in keys.unfinished()] == ["k"]


def test_a_replayed_approval_is_refused_as_used_even_when_the_quota_is_now_full(
    tmp_path: Path, inprocess_lab: Any
) -> None:
    # researcher1 owns two VMs of a quota of three: the approved VM fills it. The replay used to be refused
    # "over quota", which hid that an approval works once.
    lab = inprocess_lab(tmp_path / "lab")
    guard = Guard.from_settings(load_settings(None, lab_dir=lab.lab_dir))
    args = {"name": "replay-1", "cores": 1, "memory_gib": 1}
    asked = guard.call("vm.provision", args, caller=R1)
    approval_id = asked.data["approval"]["id"]
    assert guard.approve(approval_id, caller=A1).status == "ok"
    assert guard.call("vm.provision", args, caller=R1, approval_id=approval_id).status == "ok"
    again = guard.call("vm.provision", args, caller=R1, approval_id=approval_id)
    assert again.status == "error" and "used already" in again.message and "quota" not in again.message
