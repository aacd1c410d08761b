"""Backup tools through the guard against the PVE/PBS simulator: they find exactly the seeded problems."""

from __future__ import annotations

import re
from pathlib import Path

from core.config import Settings, load_settings
from policies.guard import Caller, Guard
from simlab.seed import SEEDED_BACKUP_PROBLEMS

CALLER = Caller(user="researcher1", channel="cli")


def _guard(lab_dir: Path) -> Guard:
    return Guard.from_settings(load_settings(None, lab_dir=lab_dir))


def test_check_finds_exactly_the_seeded_problems(simulator) -> None:  # type: ignore[no-untyped-def]
    result = _guard(simulator.lab_dir).call("backup.check", {}, caller=CALLER)
    assert result.status == "ok"
    found = result.data["by_problem"]
    assert found["failed"] == SEEDED_BACKUP_PROBLEMS["failed"]
    assert found["stale"] == SEEDED_BACKUP_PROBLEMS["stale"]
    assert found["unverified"] == SEEDED_BACKUP_PROBLEMS["unverified"]
    # Missing: never in a job, plus the stale VM whose only job was disabled.
    assert found["missing"] == sorted(SEEDED_BACKUP_PROBLEMS["no_job"] + SEEDED_BACKUP_PROBLEMS["stale"])
    order = [f["problem"] for f in result.data["findings"]]
    assert order == sorted(order, key=["failed", "missing", "stale", "unverified"].index), "worst first"
    assert result.message.splitlines()[0].startswith("4 of ")
    # A failed VM's line says what a restore would bring back: the last good snapshot and its size.
    failed = next(line for line in result.message.splitlines() if "FAILED" in line)
    assert re.search(r"last good snapshot \d{4}-\d\d-\d\d \d\d:\d\d UTC \(\d+\.\d GiB\)", failed), failed


def test_status_of_one_vm_and_of_a_vm_without_backups(simulator) -> None:  # type: ignore[no-untyped-def]
    guard = _guard(simulator.lab_dir)
    failed = guard.call("backup.status", {"vmid": 132}, caller=CALLER)
    assert failed.status == "ok" and failed.data[0]["verification"] == "failed"
    fresh = guard.call("backup.status", {"vmid": 110}, caller=CALLER)
    assert fresh.data[0]["age_hours"] < 24 + 2 and not fresh.data[0]["stale"]
    never = guard.call("backup.status", {"vmid": 140}, caller=CALLER)
    assert never.status == "no_data" and "never" in never.message
    unknown = guard.call("backup.status", {"vmid": 4242}, caller=CALLER)
    assert unknown.status == "error" and "vm.list" in unknown.message


def test_jobs_and_datastore(simulator) -> None:  # type: ignore[no-untyped-def]
    guard = _guard(simulator.lab_dir)
    jobs = guard.call("backup.jobs", {}, caller=CALLER)
    assert {j["id"]: j["enabled"] for j in jobs.data["jobs"]} == {"backup-daily": True, "backup-legacy": False}
    assert [u["vmid"] for u in jobs.data["not_covered"]] == [140, 151]
    # Retention comes from the job's prune-backups, as PVE reports it.
    assert {j["id"]: j["retention"] for j in jobs.data["jobs"]} == {"backup-daily": {"keep-daily": 14},
                                                                     "backup-legacy": {}}  # fmt: skip
    assert "keeps the last 14 daily" in jobs.message
    store = guard.call("backup.datastore", {}, caller=CALLER)
    assert store.status == "ok" and 0 < store.data["used_percent"] < 100
    assert store.data["verify_jobs"][0]["last_run_state"] == "verification failed"


def test_bad_arguments_and_a_down_pve_are_error_envelopes(simulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = _guard(simulator.lab_dir).call("backup.status", {"vmid": "abc", "extra": 1}, caller=CALLER)
    assert bad.status == "error" and "vmid" in bad.message and "extra" in bad.message
    # A configured host that does not answer: reported, naming the setting.
    settings = Settings.model_validate(
        {"lab_dir": tmp_path, "pve": {"host": "127.0.0.1", "port": 9, "password": "x", "timeout": 2}}
    )
    down = Guard.from_settings(settings).call("backup.check", {}, caller=CALLER)
    assert down.status == "error" and "pve.host" in down.message


def test_retention_reads_the_object_and_the_property_string() -> None:
    from tools.backup import _kept, _retention

    assert _retention({"keep-daily": 14, "keep-weekly": "4"}) == {"keep-daily": 14, "keep-weekly": 4}
    assert _retention("keep-daily=7, keep-monthly=2") == {"keep-daily": 7, "keep-monthly": 2}
    assert _retention(None) == {} and _retention({"keep-daily": "x"}) == {}
    assert _kept({"keep-daily": 7, "keep-monthly": 2}) == "the last 7 daily, 2 monthly"
    assert _kept({"keep-all": 1}) == "all backups"
