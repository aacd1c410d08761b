"""Policy, approvals and the audit log through the guard, against the live simulator."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from proxmoxer import ProxmoxAPI

from channels.cli.main import cli
from core.config import load_settings
from core.errors import ApprovalError, PolicyError
from policies.engine import PolicyEngine
from policies.guard import Authorization, Caller, Guard
from policies.policytest import load_cases, run_cases

R1 = Caller(user="researcher1", channel="cli")
A1 = Caller(user="admin1", channel="cli")


@pytest.fixture
def guard(simulator: Any, tmp_path: Path) -> Guard:
    # A fresh approval store and audit log per test, the shared simulator for the lab.
    settings = load_settings(None, lab_dir=simulator.lab_dir)
    from policies.approvals import ApprovalService
    from policies.audit import AuditLog

    engine = PolicyEngine.from_settings(settings)
    return Guard(
        settings=settings,
        engine=engine,
        audit=AuditLog(tmp_path / "audit.sqlite"),
        approvals=ApprovalService(tmp_path / "audit.sqlite", engine.directory, ttl_seconds=3600),
    )


def _pve(simulator: Any) -> ProxmoxAPI:
    return ProxmoxAPI(
        "127.0.0.1",
        port=simulator.pve_port,
        user="root@pam",
        token_name="labops",
        token_value=simulator.secrets["pve"]["token_secret"],
        verify_ssl=simulator.ca,
    )


def _names(guard: Guard) -> list[str]:
    return [v["name"] for v in guard.call("vm.list", {}, caller=R1).data]


def test_the_shipped_policy_cases_pass() -> None:
    results = run_cases(PolicyEngine.from_settings(load_settings(None)), load_cases())
    assert len(results) >= 30
    assert [r.name for r in results if not r.passed] == []


def test_labops_policy_test_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--lab-dir", str(tmp_path), "policy", "test"]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {name: wrong on purpose, user: researcher1, action: vm.delete, expect: allow}\n")
    failing = runner.invoke(cli, ["--lab-dir", str(tmp_path), "policy", "test", str(bad)])
    assert failing.exit_code == 1 and "wrong on purpose" in failing.stdout


def test_a_policy_that_does_not_validate_stops_loading(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "policies"
    (tmp_path / "labops.cedarschema").write_text((shipped / "cedar" / "labops.cedarschema").read_text())
    (tmp_path / "ok.cedar").write_text((shipped / "cedar" / "read.cedar").read_text())
    (tmp_path / "typo.cedar").write_text(
        '// a comment\n\n@id("typo")\npermit (principal, action == Action::"vm.destroy", resource);\n'
    )
    with pytest.raises(PolicyError) as exc:
        PolicyEngine(policies_dir=tmp_path, lab_file=shipped / "lab.toml")
    assert "typo.cedar:3" in str(exc.value) and "vm.destroy" in str(exc.value)


def test_approval_is_bound_single_use_and_four_eyes(guard: Guard, simulator: Any) -> None:
    assert guard.approvals is not None
    args = {"name": "approved-vm", "cores": 1, "memory_gib": 1, "node": "node03"}
    asked = guard.call("vm.provision", args, caller=R1)
    assert asked.status == "needs_approval" and asked.data["plan"]["api_calls"]
    approval_id = asked.data["approval"]["id"]

    with pytest.raises(ApprovalError, match="cannot approve"):
        guard.approvals.approve(approval_id, approver="researcher2")  # not an admin
    early = guard.call("vm.provision", args, caller=R1, approval_id=approval_id)
    assert early.status == "error" and "pending" in early.message
    guard.approvals.approve(approval_id, approver="admin1")

    changed = guard.call("vm.provision", {**args, "cores": 2}, caller=R1, approval_id=approval_id)
    assert changed.status == "error" and "different call" in changed.message
    other_user = guard.call(
        "vm.provision", args, caller=Caller(user="researcher2", channel="cli"), approval_id=approval_id
    )
    assert other_user.status == "error" and "belongs to researcher1" in other_user.message

    done = guard.call("vm.provision", args, caller=R1, approval_id=approval_id)
    assert done.status == "ok", done.message
    assert guard.approvals.get(approval_id).state == "used"
    # A replay cannot run: the approval is spent (and researcher1 is now at the 3-VM quota as well).
    replay = guard.call("vm.provision", args, caller=R1, approval_id=approval_id)
    assert replay.status in {"error", "denied"}, replay.message
    assert _names(guard).count("approved-vm") == 1

    # Clean up through the four-eyes delete: admin1 cannot approve their own request, admin2 can.
    delete = guard.call("vm.delete", {"vmid": done.data["vmid"], "stop_first": True}, caller=A1)
    delete_id = delete.data["approval"]["id"]
    with pytest.raises(ApprovalError, match="second person"):
        guard.approvals.approve(delete_id, approver="admin1")
    guard.approvals.approve(delete_id, approver="admin2")
    assert (
        guard.call(
            "vm.delete", {"vmid": done.data["vmid"], "stop_first": True}, caller=A1, approval_id=delete_id
        ).status
        == "ok"
    )


def test_denied_approvals_do_not_run(guard: Guard, simulator: Any, tmp_path: Path) -> None:
    # Expiry is tested under a controlled clock in test_guard_rules.py.
    from policies.approvals import ApprovalService

    assert guard.engine is not None
    guard.approvals = ApprovalService(tmp_path / "deny.sqlite", guard.engine.directory, ttl_seconds=3600)
    args = {"name": "late-vm", "cores": 1, "memory_gib": 1}
    approval_id = guard.call("vm.provision", args, caller=R1).data["approval"]["id"]
    guard.approvals.deny(approval_id, approver="admin1", reason="use the shared Ray cluster instead")
    refused = guard.call("vm.provision", args, caller=R1, approval_id=approval_id)
    assert refused.status == "error" and "shared Ray cluster" in refused.message


def test_policy_is_evaluated_again_at_execution(guard: Guard, simulator: Any) -> None:
    # admin1 may stop research VM 130 ... until someone tags it protected between authorize and execute.
    auth = guard.authorize("vm.stop", {"vmid": 130}, caller=A1)
    assert not hasattr(auth, "status"), auth
    api = _pve(simulator)
    before = api.nodes("node03").qemu(130).config.get()["tags"]
    api.nodes("node03").qemu(130).config.put(tags=before + ";protected")
    try:
        assert isinstance(auth, Authorization)
        result = guard.execute(auth)
        assert result.status == "denied" and "protected" in result.message
        assert api.nodes("node03").qemu(130).status.current.get()["status"] == "running"
    finally:
        api.nodes("node03").qemu(130).config.put(tags=before)


def test_a_quota_counted_from_the_live_lab_blocks_the_call(guard: Guard, simulator: Any) -> None:
    # researcher1 owns 130 (4 cores, 16 GiB) and 132 (8 cores, 24 GiB) in the seed: 12 of 16 cores used.
    over = guard.call("vm.provision", {"name": "too-many-cores", "cores": 8, "memory_gib": 1}, caller=R1)
    assert over.status == "denied" and "quota" in over.message
    within = guard.call("vm.provision", {"name": "fits", "cores": 4, "memory_gib": 1}, caller=R1)
    assert within.status == "needs_approval"


def test_the_audit_log_detects_edits_and_blocks_calls_it_cannot_record(guard: Guard, tmp_path: Path) -> None:
    assert guard.audit is not None
    for _ in range(3):
        guard.call("backup.datastore", {}, caller=R1)
    assert guard.audit.verify().ok
    entries = guard.audit.tail(50)
    assert {"decision", "started", "finished"} <= {e["event"] for e in entries}

    db = sqlite3.connect(guard.audit.path)
    row = db.execute("SELECT entry FROM audit WHERE seq = 4").fetchone()[0]
    db.execute("UPDATE audit SET entry = ? WHERE seq = 4", (row.replace("researcher1", "researcher2", 1),))
    db.commit()
    report = guard.audit.verify()
    assert not report.ok and report.bad_seq == 4 and "entry 4" in report.message
    db.execute("UPDATE audit SET entry = ? WHERE seq = 4", (row,))
    db.execute("DELETE FROM audit WHERE seq = 6")
    db.commit()
    gone = guard.audit.verify()
    assert not gone.ok and gone.bad_seq == 6
    db.close()

    # An audit store that cannot be written: the call does not run.
    guard.audit.path.chmod(0o444)
    guard.audit.path = tmp_path / "missing-dir" / "nested" / "x.sqlite"
    blocked = guard.call("vm.nodes", {}, caller=R1)
    assert blocked.status == "error" and blocked.message.startswith("not run: cannot use the audit and approval store")


def test_audit_and_approvals_in_postgresql(desi_db: Any) -> None:
    from core.store import Database
    from policies.approvals import ApprovalService
    from policies.audit import AuditLog
    from policies.engine import ApprovalRule

    # The embedded database's admin role stands in for a shared PostgreSQL (audit.database_url).
    store = Database(dialect="postgres", target=desi_db.admin_dsn)
    log = AuditLog(store)
    first = log.append({"user": "admin1", "event": "test", "args": {"password": "hunter2"}})
    log.append({"user": "admin1", "event": "test2"})
    assert log.verify().ok and log.tail(2)[0]["args"] == {"password": "[redacted]"}
    with store.session() as db:
        db.execute("UPDATE audit SET entry = replace(entry, 'admin1', 'admin2') WHERE seq = ?", (first,))
        db.commit()
    assert not log.verify().ok and log.verify().bad_seq == first

    directory = PolicyEngine.from_settings(load_settings(None)).directory
    approvals = ApprovalService(store, directory, ttl_seconds=60)
    a = approvals.create(
        tool="vm.delete",
        args={"vmid": 140},
        summary="destroy VM 140",
        requester="admin1",
        policy_version="v1",
        rule=ApprovalRule(role="admin"),
    )
    approvals.approve(a.id, approver="admin2")
    call = {"tool": "vm.delete", "args": {"vmid": 140}, "requester": "admin1", "policy_version": "v1"}
    # Each part the approval is bound to is named when it differs: who asked, the tool, the arguments, the policy.
    for changed, words in (
        ({"requester": "admin2"}, "belongs to admin1's request"),
        ({"tool": "vm.stop"}, "was given for vm.delete"),
        ({"args": {"vmid": 141}}, "changed arguments"),
        ({"policy_version": "v2"}, "the policies changed"),
    ):
        with pytest.raises(ApprovalError, match=words):
            approvals.consume(a.id, **{**call, **changed})  # type: ignore[arg-type]
    assert approvals.consume(a.id, **call).state == "used"  # type: ignore[arg-type]
    with pytest.raises(ApprovalError):
        approvals.consume(a.id, **call)  # type: ignore[arg-type]


def test_labops_audit_verify_names_the_edited_entry(tmp_path: Path) -> None:
    from policies.audit import AuditLog

    log = AuditLog.from_settings(load_settings(None, lab_dir=tmp_path))
    for i in range(3):
        log.append({"user": "researcher1", "event": "test", "n": i})
    runner = CliRunner()
    ok = runner.invoke(cli, ["--lab-dir", str(tmp_path), "audit", "verify"])
    assert ok.exit_code == 0 and "3 entries" in ok.stdout
    db = sqlite3.connect(tmp_path / "labops.sqlite")
    entry = db.execute("SELECT entry FROM audit WHERE seq = 2").fetchone()[0]
    db.execute("UPDATE audit SET entry = ? WHERE seq = 2", (entry.replace('"n":1', '"n":7'),))  # one byte
    db.commit()
    db.close()
    bad = runner.invoke(cli, ["--lab-dir", str(tmp_path), "audit", "verify"])
    assert bad.exit_code == 1 and "entry 2 was edited" in bad.stdout
    exported = runner.invoke(cli, ["--lab-dir", str(tmp_path), "audit", "tail", "-n", "2", "--json"])
    assert [e["seq"] for e in json.loads(exported.stdout)] == [2, 3]
