"""Backup tools (PBS and PVE APIs): per-VM status, jobs, datastore health, and the ten-second check."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from tools.backup.collect import collect_jobs, collect_vm_backups
from tools.backup.report import findings, verdict
from tools.base import ResourceRef, Tool, ToolArgs, ToolResult
from tools.context import ToolContext
from tools.proxmox import call, pbs_client

__all__ = ["TOOLS"]

GIB = 1024**3


class StatusArgs(ToolArgs):
    """Arguments of ``backup.status``."""

    vmid: int | None = Field(None, ge=100, description="VM id (e.g. 110); omit for every VM.")


def backup_status(ctx: ToolContext, args: StatusArgs) -> ToolResult:
    """Backup status per VM.

    Last backup time, age in hours against the RPO, size, verification (ok/failed/none), protected flag, and the
    backup jobs that cover it.
    """
    vms = collect_vm_backups(ctx, ctx.settings)
    if args.vmid is not None:
        vms = [vm for vm in vms if vm.vmid == args.vmid]
        if not vms:
            return ToolResult.error(f"no VM {args.vmid} in the cluster; list VMs with vm.list")
    rows = [vm.as_dict() for vm in vms]
    if args.vmid is not None:
        vm = vms[0]
        if vm.last_backup is None:
            return ToolResult.no_data(f"VM {vm.vmid} ({vm.name}) has never been backed up", data=rows)
        return ToolResult.ok(
            f"VM {vm.vmid} ({vm.name}): last backup {vm.age_hours} h ago, verification {vm.verification}, "
            f"{'stale' if vm.stale else 'within'} the {ctx.settings.backup.rpo_hours:.0f} h RPO",
            data=rows,
        )
    stale = sum(1 for vm in vms if vm.stale)
    return ToolResult.ok(f"{len(vms)} VMs; {stale} without a backup within the RPO", data=rows)


class NoArgs(ToolArgs):
    """No arguments."""


def backup_jobs(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """The backup job schedule (PVE vzdump jobs).

    Schedule, storage, which VMs each covers, and the VMs that no enabled job covers.
    """
    jobs, covered, guests = collect_jobs(ctx)
    uncovered = [
        {"vmid": int(g["vmid"]), "name": g.get("name", "")}
        for g in sorted(guests, key=lambda g: int(g["vmid"]))
        if int(g["vmid"]) not in covered
    ]
    rows = [
        {
            "id": j["id"],
            "schedule": j.get("schedule"),
            "storage": j.get("storage"),
            "enabled": bool(int(j.get("enabled", 1) or 0)),
            "vmids": j.get("vmid") or ("all" if int(j.get("all", 0) or 0) else j.get("pool")),
            "exclude": j.get("exclude"),
            "next_run": j.get("next-run"),
            "comment": j.get("comment", ""),
        }
        for j in jobs
    ]
    msg = f"{len(jobs)} backup jobs ({sum(r['enabled'] for r in rows)} enabled); {len(uncovered)} VMs in no enabled job"
    if uncovered:
        msg += ": " + ", ".join(f"{u['vmid']} {u['name']}" for u in uncovered)
    return ToolResult.ok(msg, data={"jobs": rows, "not_covered": uncovered})


def backup_datastore(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """PBS datastore health.

    Total/used/available space in GiB and percent, last garbage collection, and the verify job's last result.
    """
    pbs = ctx.client("pbs", pbs_client)
    store = ctx.settings.pbs.datastore
    status: dict[str, Any] = call(
        "PBS", lambda: pbs.admin.datastore(store).status.get(), action=f"reading datastore {store} (pbs.datastore)"
    )
    verify = call("PBS", lambda: pbs.admin.verify.get(), action="reading verify jobs")
    total, used = int(status.get("total", 0)), int(status.get("used", 0))
    pct = round(100 * used / total, 1) if total else 0.0
    gc = status.get("gc-status") or {}
    jobs = [
        {
            "id": v.get("id"),
            "schedule": v.get("schedule"),
            "last_run_state": v.get("last-run-state"),
            "last_run_end": v.get("last-run-endtime"),
        }
        for v in verify
        if v.get("store", store) == store
    ]
    data = {
        "store": store,
        "total_gib": round(total / GIB, 1),
        "used_gib": round(used / GIB, 1),
        "avail_gib": round(int(status.get("avail", 0)) / GIB, 1),
        "used_percent": pct,
        "gc": {
            "removed_gib": round(int(gc.get("removed-bytes", 0)) / GIB, 1),
            "pending_gib": round(int(gc.get("pending-bytes", 0)) / GIB, 1),
            "still_bad": gc.get("still-bad", 0),
        },
        "verify_jobs": jobs,
    }
    failing = [j["id"] for j in jobs if j["last_run_state"] not in (None, "ok")]
    msg = f"datastore {store}: {pct}% used ({data['used_gib']} of {data['total_gib']} GiB)"
    msg += f"; verify job(s) {', '.join(failing)} reported errors" if failing else "; verify jobs ok"
    return ToolResult.ok(msg, data=data)


def backup_check(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """One backup health summary, worst first.

    VMs whose newest backup failed verification, VMs in no backup job (missing), backups older than the RPO
    (stale), and unverified backups.
    """
    vms = collect_vm_backups(ctx, ctx.settings)
    found = findings(vms, ctx.settings.backup.rpo_hours)
    line = verdict(found, len(vms))
    lines = [line] + [f"- {f.problem.upper():10} {f.vmid} {f.name}: {f.detail}" for f in found]
    by_problem: dict[str, list[int]] = {}
    for f in found:
        by_problem.setdefault(f.problem, []).append(f.vmid)
    return ToolResult.ok(
        "\n".join(lines),
        data={
            "verdict": line,
            "findings": [f.as_dict() for f in found],
            "by_problem": by_problem,
            "checked_vms": len(vms),
            "checked_at": int(time.time()),
        },
    )


def _vm_resource(ctx: ToolContext, args: StatusArgs) -> list[ResourceRef]:
    return [ResourceRef(type="VM", id=str(args.vmid))] if args.vmid is not None else [ResourceRef(type="Lab", id="lab")]


def _datastore(ctx: ToolContext, args: NoArgs) -> list[ResourceRef]:
    return [ResourceRef(type="Datastore", id=ctx.settings.pbs.datastore)]


TOOLS: list[Tool[Any]] = [
    Tool(
        name="backup.status",
        args_model=StatusArgs,
        fn=backup_status,
        risk="read",
        resources=_vm_resource,
        summary=lambda a: f"backup status of VM {a.vmid}" if a.vmid else "backup status of every VM",
    ),
    Tool(name="backup.jobs", args_model=NoArgs, fn=backup_jobs, risk="read", summary=lambda a: "list backup jobs"),
    Tool(
        name="backup.datastore",
        args_model=NoArgs,
        fn=backup_datastore,
        risk="read",
        resources=_datastore,
        summary=lambda a: "datastore usage, GC and verify status",
    ),
    Tool(
        name="backup.check",
        args_model=NoArgs,
        fn=backup_check,
        risk="read",
        summary=lambda a: "check every VM's backups against the RPO",
    ),
]
