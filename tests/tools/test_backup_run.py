"""``backup.run``: an on-demand backup through PVE's vzdump API, judged by the next verify run, under a set clock."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import time_machine
from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

from policies.guard import Caller, Guard
from simlab.tls import ensure_tls

ADMIN = Caller(user="admin1", channel="cli")
RESEARCHER = Caller(user="researcher1", channel="cli")
DAY0 = dt.datetime(2026, 6, 1, 14, 0, tzinfo=dt.UTC)  # an afternoon: after the 11:00 verify run


def _pve(lab_dir: Path) -> ProxmoxAPI:
    port = json.loads((lab_dir / "lab.json").read_text())["parts"]["pve"]["port"]
    token = json.loads((lab_dir / "secrets.json").read_text())["pve"]["token_secret"]
    return ProxmoxAPI("127.0.0.1", port=port, user="root@pam", token_name="labops", token_value=token,
                      verify_ssl=str(lab_dir / "tls" / "ca.pem"))  # fmt: skip


def test_a_fresh_backup_of_the_failed_vm_clears_after_the_next_verify_run(tmp_path: Path, inprocess_lab: Any) -> None:
    lab_dir = tmp_path / "lab"
    ensure_tls(lab_dir)
    with time_machine.travel(DAY0, tick=True) as traveller:
        guard = Guard.from_settings(inprocess_lab(lab_dir).settings())
        before = guard.call("backup.status", {"vmid": 132}, caller=ADMIN).data[0]
        assert before["last_result"] == "failed"

        made = guard.call("backup.run", {"vmid": 132}, caller=ADMIN)
        assert made.status == "ok", made.message
        assert made.data["storage"] == "pbs01" and made.data["upid"].split(":")[5] == "vzdump"
        after = guard.call("backup.status", {"vmid": 132}, caller=ADMIN).data[0]
        # The new snapshot waits for the verify job; the failure stands until then.
        assert after["verification"] == "pending" and after["last_result"] == "failed"
        assert after["last_backup"] > before["last_backup"]
        assert guard.call("backup.check", {}, caller=ADMIN).data["by_problem"]["failed"] == [132]

        traveller.move_to(DAY0 + dt.timedelta(hours=21, minutes=5))  # the next day, 11:05
        checked = guard.call("backup.check", {}, caller=ADMIN).data["by_problem"]
        assert "failed" not in checked, checked
        assert guard.call("backup.status", {"vmid": 132}, caller=ADMIN).data[0]["last_result"] == "ok"


def test_who_may_back_up_and_what_is_refused(tmp_path: Path, inprocess_lab: Any) -> None:
    lab_dir = tmp_path / "lab"
    ensure_tls(lab_dir)
    with time_machine.travel(DAY0, tick=True):
        guard = Guard.from_settings(inprocess_lab(lab_dir).settings())
        # Policy: admins only, even for a researcher's own VM (the datastore is shared).
        refused = guard.call("backup.run", {"vmid": 132}, caller=RESEARCHER)
        assert refused.status == "denied"
        assert guard.call("backup.run", {"vmid": 999}, caller=ADMIN).status == "error"
        bad_mode = guard.call("backup.run", {"vmid": 132, "mode": "fast"}, caller=ADMIN)
        assert bad_mode.status == "error" and "mode" in bad_mode.message
        plan = guard.plan("backup.run", {"vmid": 130}, caller=ADMIN)
        assert plan.status == "ok" and plan.data["api_calls"][0].startswith("POST /nodes/")
        assert "vzdump vmid=130 storage=pbs01" in plan.data["api_calls"][0]
        assert plan.data["policy"]["decision"] == "allow"


def test_the_simulator_s_vzdump_checks_its_parameters_and_locks_the_vm(tmp_path: Path, inprocess_lab: Any) -> None:
    lab_dir = tmp_path / "lab"
    ensure_tls(lab_dir)
    with time_machine.travel(DAY0, tick=True):
        inprocess_lab(lab_dir, task_speed=0.01)  # slow tasks: the lock is seen while the backup runs
        pve = _pve(lab_dir)
        node = next(v["node"] for v in pve.cluster.resources.get(type="vm") if v["vmid"] == 130)
        with pytest.raises(ResourceException) as unknown:
            pve.nodes(node).vzdump.post(vmid="130", storage="pbs01", colour="blue")
        assert unknown.value.status_code == 400
        with pytest.raises(ResourceException):
            pve.nodes(node).vzdump.post(vmid="130", storage="nowhere")
        upid = pve.nodes(node).vzdump.post(vmid="130", storage="pbs01", mode="snapshot")
        assert upid.startswith(f"UPID:{node}:") and ":vzdump:130:" in upid
        with pytest.raises(ResourceException) as locked:
            pve.nodes(node).vzdump.post(vmid="130", storage="pbs01")
        assert "locked (backup)" in str(locked.value)
