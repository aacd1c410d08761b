"""Gather the backup picture: guests and jobs from PVE, snapshots and the verify job from PBS, per VM.

A VM is judged by its snapshot *history*, never by the newest snapshot alone, so the answer is the same
at every hour of the day (a backup taken at 09:00 waits for the 11:00 verify job; before then it is
*pending*, which is neither a problem nor proof of health):

- the latest **verification result** of any of its snapshots: a failed verification stays a finding
  until a newer snapshot verifies ok;
- whether any snapshot within ``backup.verify_window_days`` was verified at all (never → unverified);
- the newest snapshot's age against ``backup.rpo_hours``.

Ages are measured on the backup server's clock (``GET /nodes/localhost/time``), so a LabOps host with
a skewed clock (or a simulated lab whose clock was set) does not misjudge them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from core.config import Settings
from tools.context import ToolContext
from tools.proxmox import call, pbs_client, pve_client
from tools.vm.inventory import owner_of

__all__ = ["BackupPicture", "SnapshotState", "VmBackup", "collect_jobs", "collect_vm_backups", "verify_job_start"]

# State of one snapshot's verification: checked ok/failed, waiting for the next verify run, or skipped by it.
SnapshotState = Literal["ok", "failed", "pending", "unverified"]


def _iso(epoch: int | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


@dataclass(kw_only=True, frozen=True)
class VmBackup:
    """What is known about one VM's backups.

    Attributes:
        verification: the newest snapshot's state (``none`` when there is no snapshot).
        last_result: the latest verification result of any snapshot (``ok``/``failed``), None if never verified.
        last_result_time: backup time of the snapshot that result belongs to.
        last_good_time / last_good_size: the newest snapshot that verified ok.
        verified_in_window: some snapshot within the verify window has a verification result.
        due_unverified: snapshots within the window that the verify job should have checked and did not.
    """

    vmid: int
    name: str
    node: str
    owner: str
    jobs: tuple[str, ...]
    snapshots: int
    last_backup: int | None
    age_hours: float | None
    size_bytes: int | None
    verification: SnapshotState | Literal["none"]
    last_result: Literal["ok", "failed"] | None
    last_result_time: int | None
    last_good_time: int | None
    last_good_size: int | None
    verified_in_window: bool
    due_unverified: int
    protected: bool
    stale: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (ISO times added)."""
        out = dict(self.__dict__)
        out["jobs"] = list(self.jobs)
        out["last_backup_iso"] = _iso(self.last_backup)
        out["last_result_iso"] = _iso(self.last_result_time)
        out["last_good_iso"] = _iso(self.last_good_time)
        return out


@dataclass(kw_only=True, frozen=True)
class BackupPicture:
    """Every VM's backups, judged at ``now`` (the backup server's clock)."""

    vms: list[VmBackup]
    now: float
    verify_last_start: int | None


def _job_vmids(job: dict[str, Any], all_vmids: set[int]) -> set[int]:
    if int(job.get("all", 0) or 0):
        excluded = {int(v) for v in str(job.get("exclude", "")).split(",") if v.strip()}
        return all_vmids - excluded
    return {int(v) for v in str(job.get("vmid", "")).split(",") if v.strip()}


def collect_jobs(ctx: ToolContext) -> tuple[list[dict[str, Any]], dict[int, list[str]], list[dict[str, Any]]]:
    """``(jobs, enabled job ids per vmid, guests)``; a disabled job does not protect anything."""
    pve = ctx.client("pve", pve_client)
    guests = [
        g
        for g in call("PVE", lambda: pve.cluster.resources.get(type="vm"), action="listing VMs")
        if not g.get("template")
    ]
    jobs = call("PVE", lambda: pve.cluster.backup.get(), action="listing backup jobs")
    all_vmids = {int(g["vmid"]) for g in guests}
    covered: dict[int, list[str]] = {}
    for job in jobs:
        if not int(job.get("enabled", 1) or 0):
            continue
        for vmid in _job_vmids(job, all_vmids):
            covered.setdefault(vmid, []).append(str(job["id"]))
    return jobs, covered, guests


def verify_job_start(jobs: list[dict[str, Any]], store: str) -> int | None:
    """When the latest run of a verify job of ``store`` started (from its UPID, else end minus duration)."""
    starts: list[int] = []
    for job in jobs:
        if job.get("store", store) != store:
            continue
        upid = str(job.get("last-run-upid") or "")
        fields = upid.split(":")
        # PBS UPID: UPID:node:pid:pstart:task_id:starttime:type:id:authid:
        if len(fields) >= 10 and fields[0] == "UPID":
            try:
                starts.append(int(fields[5], 16))
                continue
            except ValueError:
                pass
        end = job.get("last-run-endtime")
        if end is not None:
            starts.append(int(end) - int(job.get("duration") or 0))
    return max(starts) if starts else None


def _server_now(ctx: ToolContext) -> float:
    pbs = ctx.client("pbs", pbs_client)
    info = call("PBS", lambda: pbs.nodes("localhost").time.get(), action="reading the backup server's clock")
    return float(info["time"])


def _state(snap: dict[str, Any], verify_start: int | None, now: float, grace_hours: float) -> SnapshotState:
    result = (snap.get("verification") or {}).get("state")
    if result in ("ok", "failed"):
        return "ok" if result == "ok" else "failed"
    taken = int(snap["backup-time"])
    if verify_start is not None:
        # Taken after the verify job last started: tonight's (or today's) run will check it.
        return "pending" if taken > verify_start else "unverified"
    # No verify job reports a run: give a snapshot one verify cycle before calling it unverified.
    return "pending" if (now - taken) / 3600 <= grace_hours else "unverified"


def collect_vm_backups(ctx: ToolContext, settings: Settings) -> BackupPicture:
    """One :class:`VmBackup` per (non-template) VM, judged by its snapshot history."""
    _jobs, covered, guests = collect_jobs(ctx)
    pbs = ctx.client("pbs", pbs_client)
    store = settings.pbs.datastore
    snaps = call(
        "PBS",
        lambda: pbs.admin.datastore(store).snapshots.get(**{"backup-type": "vm"}),
        action=f"listing snapshots of datastore {store} (pbs.datastore)",
    )
    verify_jobs = call("PBS", lambda: pbs.admin.verify.get(), action="reading the verify jobs")
    verify_start = verify_job_start(verify_jobs, store)
    now = _server_now(ctx)
    cfg = settings.backup
    window_start = now - cfg.verify_window_days * 86400
    by_vm: dict[int, list[dict[str, Any]]] = {}
    for snap in snaps:
        try:
            by_vm.setdefault(int(snap["backup-id"]), []).append(snap)
        except (KeyError, ValueError):
            continue  # not a VM id (a host backup, say)
    out = []
    for guest in sorted(guests, key=lambda g: int(g["vmid"])):
        vmid = int(guest["vmid"])
        history = sorted(by_vm.get(vmid, []), key=lambda s: int(s["backup-time"]))
        states = [_state(s, verify_start, now, cfg.verify_grace_hours) for s in history]
        newest = history[-1] if history else None
        results = [(s, st) for s, st in zip(history, states, strict=True) if st in ("ok", "failed")]
        good = [s for s, st in results if st == "ok"]
        in_window = [(s, st) for s, st in zip(history, states, strict=True) if int(s["backup-time"]) >= window_start]
        age = (now - int(newest["backup-time"])) / 3600 if newest else None
        last_result = results[-1] if results else None
        out.append(
            VmBackup(
                vmid=vmid,
                name=str(guest.get("name", "")),
                node=str(guest.get("node", "")),
                owner=owner_of(guest.get("tags")),
                jobs=tuple(covered.get(vmid, [])),
                snapshots=len(history),
                last_backup=int(newest["backup-time"]) if newest else None,
                age_hours=round(age, 1) if age is not None else None,
                size_bytes=int(newest["size"]) if newest and newest.get("size") is not None else None,
                verification=states[-1] if states else "none",
                last_result="ok" if last_result and last_result[1] == "ok" else ("failed" if last_result else None),
                last_result_time=int(last_result[0]["backup-time"]) if last_result else None,
                last_good_time=int(good[-1]["backup-time"]) if good else None,
                last_good_size=int(good[-1]["size"]) if good and good[-1].get("size") is not None else None,
                verified_in_window=any(st in ("ok", "failed") for _s, st in in_window),
                due_unverified=sum(1 for _s, st in in_window if st == "unverified"),
                protected=bool((newest or {}).get("protected", False)),
                stale=age is None or age > cfg.rpo_hours,
            )
        )
    return BackupPicture(vms=out, now=now, verify_last_start=verify_start)
