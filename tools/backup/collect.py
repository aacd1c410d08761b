"""Gather the backup picture: guests and jobs from PVE, snapshots from PBS, into per-VM facts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from core.config import Settings
from tools.context import ToolContext
from tools.proxmox import call, pbs_client, pve_client

__all__ = ["Verification", "VmBackup", "collect_jobs", "collect_vm_backups"]

Verification = Literal["ok", "failed", "none"]


@dataclass(kw_only=True, frozen=True)
class VmBackup:
    """What is known about one VM's backups."""

    vmid: int
    name: str
    node: str
    jobs: tuple[str, ...]
    snapshots: int
    last_backup: int | None
    age_hours: float | None
    size_bytes: int | None
    verification: Verification
    protected: bool
    stale: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (ISO time added)."""
        out = dict(self.__dict__)
        out["jobs"] = list(self.jobs)
        out["last_backup_iso"] = (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.last_backup)) if self.last_backup else None
        )
        return out


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


def collect_vm_backups(ctx: ToolContext, settings: Settings) -> list[VmBackup]:
    """One :class:`VmBackup` per (non-template) VM, newest snapshot from PBS."""
    _jobs, covered, guests = collect_jobs(ctx)
    pbs = ctx.client("pbs", pbs_client)
    store = settings.pbs.datastore
    snaps = call(
        "PBS",
        lambda: pbs.admin.datastore(store).snapshots.get(**{"backup-type": "vm"}),
        action=f"listing snapshots of datastore {store} (pbs.datastore)",
    )
    latest: dict[int, dict[str, Any]] = {}
    counts: dict[int, int] = {}
    for snap in snaps:
        try:
            vmid = int(snap["backup-id"])
        except (KeyError, ValueError):
            continue
        counts[vmid] = counts.get(vmid, 0) + 1
        if vmid not in latest or snap["backup-time"] > latest[vmid]["backup-time"]:
            latest[vmid] = snap
    now = time.time()
    out = []
    for guest in sorted(guests, key=lambda g: int(g["vmid"])):
        vmid = int(guest["vmid"])
        snap = latest.get(vmid)
        age = (now - snap["backup-time"]) / 3600 if snap else None
        state = (snap or {}).get("verification") or {}
        out.append(
            VmBackup(
                vmid=vmid,
                name=str(guest.get("name", "")),
                node=str(guest.get("node", "")),
                jobs=tuple(covered.get(vmid, [])),
                snapshots=counts.get(vmid, 0),
                last_backup=int(snap["backup-time"]) if snap else None,
                age_hours=round(age, 1) if age is not None else None,
                size_bytes=int(snap["size"]) if snap and snap.get("size") is not None else None,
                verification="ok"
                if state.get("state") == "ok"
                else "failed"
                if state.get("state") == "failed"
                else "none",
                protected=bool((snap or {}).get("protected", False)),
                stale=age is None or age > settings.backup.rpo_hours,
            )
        )
    return out
