"""Backups are judged the same at every hour: the seeded problems, and only they, under a controlled clock.

The lab's 09:00 backup and 11:00 verify jobs change what "the newest snapshot" means during the day;
these tests move the simulator's clock (``time-machine``, in-process) across a whole simulated day,
its edges and midnight, and expect exactly the seeded findings each time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from proxmoxer import ProxmoxAPI

from policies.guard import Caller, Guard
from simlab.seed import SEEDED_BACKUP_PROBLEMS
from simlab.tls import ensure_tls

CALLER = Caller(user="admin1", channel="cli")
EXPECTED = {
    "failed": SEEDED_BACKUP_PROBLEMS["failed"],
    # Missing: never in a job, plus the stale VM whose only job was disabled.
    "missing": sorted(SEEDED_BACKUP_PROBLEMS["no_job"] + SEEDED_BACKUP_PROBLEMS["stale"]),
    "stale": SEEDED_BACKUP_PROBLEMS["stale"],
    "unverified": SEEDED_BACKUP_PROBLEMS["unverified"],
}
# A fixed day in the past: the verdict must not depend on the date or the hour the suite runs at.
DAY0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _moments(seed_at: dt.datetime, *, every: int = 1) -> Iterator[dt.datetime]:
    """Every ``every`` hours of the first day, the backup and verify edges, and across midnight."""
    day = seed_at.replace(hour=0, minute=0, second=0, microsecond=0)
    for hour in range(0, 24, every):
        moment = day + dt.timedelta(hours=hour, minutes=17)
        if moment > seed_at:
            yield moment
    for h, m, s in ((8, 59, 59), (9, 0, 0), (9, 0, 20), (9, 4, 0), (9, 8, 30), (10, 59, 59), (11, 0, 1), (11, 10, 1)):
        for days in (0, 1):
            moment = day + dt.timedelta(days=days, hours=h, minutes=m, seconds=s)
            if moment > seed_at:
                yield moment
    for minutes in (-1, 1, 61):
        yield day + dt.timedelta(days=1, minutes=minutes)


# Every hour for the lab seeded between the backup and the verify run (the case where "newest" moves most); every
# third hour, and every edge, for the lab seeded before the backup and after the verify run.
@pytest.mark.parametrize(
    ("seed_hour", "every"), [(0.5, 3), (10.0, 1), (15.0, 3)], ids=["seeded-00:30", "seeded-10:00", "seeded-15:00"]
)
def test_check_finds_exactly_the_seeded_problems_at_every_hour(
    tmp_path: Path, seed_hour: float, every: int, inprocess_lab: Any
) -> None:
    lab_dir = tmp_path / "lab"
    ensure_tls(lab_dir)
    seed_at = DAY0 + dt.timedelta(hours=seed_hour)
    with time_machine.travel(seed_at, tick=True) as traveller:
        lab = inprocess_lab(lab_dir)
        guard = Guard.from_settings(lab.settings())
        seen_pending = False
        for moment in sorted(set(_moments(seed_at, every=every))):
            traveller.move_to(moment)
            result = guard.call("backup.check", {}, caller=CALLER)
            assert result.status == "ok", result.message
            assert result.data["by_problem"] == EXPECTED, f"at {moment:%Y-%m-%d %H:%M:%S}: {result.message}"
            seen_pending |= bool(result.data["pending_verification"])
            status = guard.call("backup.status", {"vmid": 132}, caller=CALLER)
            assert status.data[0]["last_result"] == "failed", f"at {moment}"
    # Between the 09:00 backup and the 11:00 verify the new snapshots are pending, never a clean bill.
    assert seen_pending


def test_pending_snapshot_is_neither_a_problem_nor_healthy(tmp_path: Path, inprocess_lab) -> None:  # type: ignore[no-untyped-def]
    lab_dir = tmp_path / "lab"
    ensure_tls(lab_dir)
    with time_machine.travel(DAY0 + dt.timedelta(hours=10), tick=True):
        lab = inprocess_lab(lab_dir)
        guard = Guard.from_settings(lab.settings())
        fresh = guard.call("backup.status", {"vmid": 110}, caller=CALLER)
        row = fresh.data[0]
        assert row["verification"] == "pending" and row["last_result"] == "ok"
        assert "waiting for the next verify run" in fresh.message
        assert not row["stale"]
        skipped = guard.call("backup.status", {"vmid": 131}, caller=CALLER)
        assert skipped.data[0]["last_result"] is None and not skipped.data[0]["verified_in_window"]
        assert "not verified" in skipped.message
        # Every VM: the line people and the model read first names the VMs a "which ones?" is after.
        every = guard.call("backup.status", {}, caller=CALLER).message
        assert "never backed up: VM 140 (scratch-sandbox)" in every, every
        assert "last backup too old: VM 151 (monitoring)" in every, every
        assert "not verified: VM 131 (agn-fit)" in every, every


def test_a_manual_verify_is_followed_by_its_upid_and_clears_unverified(tmp_path: Path, inprocess_lab) -> None:  # type: ignore[no-untyped-def]
    """PBS tasks can be followed (status, log); verifying VM 131 by hand ends its 'unverified' finding."""
    lab_dir = tmp_path / "lab"
    ensure_tls(lab_dir)
    with time_machine.travel(DAY0 + dt.timedelta(hours=14), tick=True) as traveller:
        lab = inprocess_lab(lab_dir, task_speed=1.0)
        settings = lab.settings()
        port = json.loads((lab_dir / "lab.json").read_text())["parts"]["pbs"]["port"]
        token = json.loads((lab_dir / "secrets.json").read_text())["pbs"]["token_secret"]
        pbs = ProxmoxAPI(
            "127.0.0.1",
            port=port,
            service="PBS",
            user="root@pam",
            token_name="labops",
            token_value=token,
            verify_ssl=str(lab_dir / "tls" / "ca.pem"),
        )
        upid = pbs.admin.datastore("store1").verify.post(**{"backup-id": "131"})
        assert pbs.nodes("localhost").tasks(upid).status.get()["status"] == "running"
        traveller.shift(10)
        status = pbs.nodes("localhost").tasks(upid).status.get()
        assert status["status"] == "stopped" and status["exitstatus"] == "OK"
        log = [line["t"] for line in pbs.nodes("localhost").tasks(upid).log.get()]
        assert log[-1] == "TASK OK" and any("vm/131" in line for line in log)
        found = Guard.from_settings(settings).call("backup.check", {}, caller=CALLER).data["by_problem"]
        assert "unverified" not in found and found["failed"] == [132]
