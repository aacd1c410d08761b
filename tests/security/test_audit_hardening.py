"""The audit log cannot be shortened unnoticed, refuses to grow a broken chain, and records every refusal once."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from channels.cli.main import cli
from core.config import load_settings
from core.errors import AuditError
from policies.audit import MAX_FIELD_BYTES, AuditLog
from policies.guard import Caller, Guard

R1 = Caller(user="researcher1", channel="cli")


def _log(tmp_path: Path) -> AuditLog:
    return AuditLog.from_settings(load_settings(None, lab_dir=tmp_path))


def test_removing_the_last_entries_is_detected_and_blocks_appends(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for n in range(6):
        log.append({"event": "test", "n": n})
    assert log.verify().ok
    with sqlite3.connect(log.path) as db:
        db.execute("DELETE FROM audit WHERE seq > 4")
    report = log.verify()
    assert not report.ok and "removed" in report.message and "6" in report.message
    with pytest.raises(AuditError, match="acknowledge"):
        log.append({"event": "after truncation"})
    fixed = log.acknowledge(user="admin1", reason="restored from last night's backup; entries 5-6 lost")
    assert fixed.ok
    assert log.append({"event": "back to work"}) == 6
    assert log.verify().ok
    ack = [e for e in log.tail(10) if e.get("event") == "chain_acknowledged"]
    assert ack and ack[0]["user"] == "admin1" and "removed" in ack[0]["break"]


def test_an_edit_in_the_middle_is_acknowledged_but_stays_visible(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for n in range(5):
        log.append({"event": "test", "n": n})
    with sqlite3.connect(log.path) as db:
        db.execute("UPDATE audit SET entry = replace(entry, '\"n\":2', '\"n\":9') WHERE seq = 3")
    assert not log.verify().ok and log.verify().bad_seq == 3
    log.acknowledge(user="admin2", reason="investigated: a manual fix-up")
    report = log.verify()
    assert report.ok and "entry 3 was edited" in report.message, "the break is still reported, as acknowledged"


def test_an_edited_anchor_is_detected(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.append({"event": "test"})
    anchor = tmp_path / "audit.anchor"
    data = json.loads(anchor.read_text())
    anchor.write_text(json.dumps({**data, "seq": 0}))  # an attacker winding the anchor back
    report = log.verify()
    assert not report.ok and "signature" in report.message


def test_removing_the_tail_and_the_anchor_file_is_detected(tmp_path: Path) -> None:
    # The anchor alone catches a shortened log; deleting it as well used to make verify say "intact".
    log = _log(tmp_path)
    for n in range(6):
        log.append({"event": "test", "n": n})
    with sqlite3.connect(log.path) as db:
        db.execute("DELETE FROM audit WHERE seq > 4")
    (tmp_path / "audit.anchor").unlink()
    report = log.verify()
    assert not report.ok and "anchor file" in report.message and "missing" in report.message
    assert "acknowledge" in report.message and "Restore" in report.message, "verify says what to do"
    with pytest.raises(AuditError, match="anchor file"):
        log.append({"event": "after truncation"})
    assert log.acknowledge(user="admin1", reason="anchor lost with the old disk").ok
    assert log.append({"event": "back to work"}) and log.verify().ok


def test_a_missing_anchor_alone_is_a_failure_once_the_log_was_anchored(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.append({"event": "test"})
    (tmp_path / "audit.anchor").unlink()
    assert not _log(tmp_path).verify().ok, "a fresh process must notice too"
    # A log that was never anchored here (another replica's, an unanchored store) is not a failure.
    other = AuditLog(tmp_path / "other.sqlite", anchor=None)
    other.append({"event": "test"})
    assert other.verify().ok


def test_doctor_says_when_the_anchor_sits_beside_the_database(tmp_path: Path) -> None:
    from channels.doctor import audit_check

    _log(tmp_path).append({"event": "test"})
    beside = audit_check(load_settings(None, lab_dir=tmp_path))
    assert beside.ok and "beside the database" in beside.version and "audit.anchor_file" in beside.version
    elsewhere = tmp_path / "safe" / "audit.anchor"
    moved = load_settings(None, lab_dir=tmp_path, audit={"anchor_file": str(elsewhere)})
    AuditLog.from_settings(moved).append({"event": "test"})
    assert "beside" not in audit_check(moved).version
    (tmp_path / "audit.anchor").unlink()
    broken = audit_check(load_settings(None, lab_dir=tmp_path))
    assert not broken.ok and "anchor file" in broken.detail


def test_oversized_arguments_are_stored_as_a_digest(tmp_path: Path) -> None:
    log = _log(tmp_path)
    seq = log.append({"event": "decision", "args": {"sql": "SELECT " + "x" * 100_000}})
    stored = log.tail(1)[0]
    assert stored["seq"] == seq and set(stored["args"]) == {"sha256", "bytes", "prefix"}
    assert stored["args"]["bytes"] > MAX_FIELD_BYTES and len(stored["args"]["prefix"]) == 512


def test_every_request_gets_exactly_one_decision_entry(simulator: Any, tmp_path: Path) -> None:
    settings = load_settings(None, lab_dir=simulator.lab_dir)
    guard = Guard.from_settings(settings)
    guard.audit = AuditLog(tmp_path / "audit.sqlite")
    requests: list[tuple[str, dict[str, Any], Caller]] = [
        ("vm.nodes", {}, Caller(user='evil"', channel="cli")),  # a name Cedar cannot take
        ("vm.explode", {}, R1),  # unknown tool
        ("vm.show", {"vmid": "abc"}, R1),  # invalid arguments
        ("vm.stop", {"vmid": 110}, R1),  # denied
        ("vm.show", {"vmid": 4242}, R1),  # the lab says no such VM
        ("vm.provision", {"name": "x" * 70}, R1),  # invalid name
        ("vm.provision", {"name": "ok-name"}, R1),  # needs approval
        ("vm.provision", {"name": "ok-name"}, R1),  # with an unknown approval below
        ("vm.nodes", {}, R1),  # allowed
        ("ray.status", {"job_id": "../../api/version"}, R1),  # path traversal in an id
    ]
    for n, (tool, args, caller) in enumerate(requests):
        before = len(guard.audit.tail(1000))
        result = guard.call(tool, args, caller=caller, approval_id="apr_nonexistent" if n == 7 else None)
        entries = guard.audit.tail(1000)[before:]
        decisions = [e for e in entries if e.get("event") == "decision"]
        assert len(decisions) == 1, (tool, args, [e.get("event") for e in entries], result.message)
    assert guard.audit.verify().ok


def test_refusals_before_the_guard_are_recorded_too(simulator: Any) -> None:
    runner = CliRunner()
    bad_user = runner.invoke(cli, ["--lab-dir", str(simulator.lab_dir), "tool", "call", "vm.nodes", "--as", 'evil"'])
    assert bad_user.exit_code == 1 and "not a user name" in bad_user.output
    bad_args = runner.invoke(
        cli, ["--lab-dir", str(simulator.lab_dir), "tool", "call", "vm.show", "--args", "{vmid:", "--as", "admin1"]
    )
    assert bad_args.exit_code == 1 and "not valid JSON" in bad_args.output
    entries = AuditLog.from_settings(load_settings(None, lab_dir=simulator.lab_dir)).tail(10)
    refused = [e for e in entries if e.get("event") == "decision" and e.get("by") == "channel"]
    assert {e["tool"] for e in refused[-2:]} == {"vm.nodes", "vm.show"}


def test_threads_moving_the_anchor_at_once_leave_it_at_the_newest(tmp_path: Path) -> None:
    # Ten parallel provisions append from threads of one process: each moves the anchor. They used to share a
    # pid-named temp file (a rename then found it gone) and a slower thread could move the anchor back.
    from concurrent.futures import ThreadPoolExecutor

    from policies.anchor import Anchor, AnchorFile

    anchor = AnchorFile(tmp_path / "audit.anchor", key=b"k" * 32)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda seq: anchor.write(Anchor(seq=seq, hash=f"h{seq}")), range(1, 201)))
    newest = anchor.read()
    assert newest is not None and (newest.seq, newest.hash) == (200, "h200")
    assert not list(tmp_path.glob("*.tmp")), "no temp file is left behind"


def test_a_second_writer_between_the_first_entry_and_its_anchor_finds_the_log_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten provisions at once (make test on a fresh clone): the first entry was committed naming the anchor, and
    # before its writer made the anchor file, another writer found entries under an anchor with no file, and
    # refused as if the file had been removed. The moment is made here: the second writer appends right after
    # the first one's commit, before the first one's anchor write.
    from policies.anchor import AnchorFile

    first, second = _log(tmp_path), _log(tmp_path)
    write = AnchorFile.write
    interleaved: list[int] = []

    def late_write(self: Any, anchor: Any, *, force: bool = False) -> None:
        if anchor.seq == 1 and not interleaved:
            interleaved.append(second.append({"event": "second writer"}))
        write(self, anchor, force=force)

    monkeypatch.setattr(AnchorFile, "write", late_write)
    assert first.append({"event": "first writer"}) == 1
    assert interleaved == [2]
    assert first.verify().ok and second.verify().ok
