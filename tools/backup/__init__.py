"""Backup tools (PBS and PVE APIs): per-VM status, jobs, datastore health, and the ten-second check."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from tools.backup.collect import VmBackup, collect_jobs, collect_vm_backups
from tools.backup.report import findings, verdict
from tools.backup.run import RunArgs, plan_backup, run_backup
from tools.base import EXAMPLE_NAME, NameLookup, ResourceRef, Tool, ToolArgs, ToolResult, Toolset
from tools.context import ToolContext
from tools.proxmox import call, pbs_client
from tools.vm.inventory import vm_resource

__all__ = ["TOOLS", "TOOLSET"]

GIB = 1024**3


class StatusArgs(ToolArgs):
    """Arguments of ``backup.status``."""

    vmid: int | None = Field(None, ge=100, le=999_999_999, description="VM id (e.g. 110); omit for every VM.")


def _never_verified(vm: VmBackup) -> bool:
    """No snapshot of the verify window has a result, and some should have (the verify job skips the VM)."""
    return not vm.verified_in_window and vm.due_unverified > 0


def _status_line(vm: VmBackup, rpo_hours: float) -> str:
    if vm.last_backup is None:
        return f"VM {vm.vmid} ({vm.name}) has never been backed up"
    verified = {
        "ok": "verified ok",
        "failed": "FAILED verification",
        "pending": "waiting for the next verify run",
        "unverified": "not verified: the verify job skipped it",
    }.get(vm.verification, vm.verification)
    text = f"VM {vm.vmid} ({vm.name}): last backup {vm.age_hours} h ago ({verified})"
    if vm.last_result == "failed" and vm.verification != "failed":
        text += "; the latest verification result is FAILED"
    if _never_verified(vm) and vm.verification != "unverified":
        text += f"; not verified: the verify job skipped its last {vm.due_unverified} snapshots"
    if vm.last_good_time:
        text += f"; last good snapshot {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(vm.last_good_time))}"
        if vm.last_good_size:
            text += f" ({vm.last_good_size / GIB:.1f} GiB)"
    return text + f"; {'stale' if vm.stale else 'within'} the {rpo_hours:g} h RPO"


def backup_status(ctx: ToolContext, args: StatusArgs) -> ToolResult:
    """Backup status per VM.

    Last backup time and age against the RPO, size, verification of the newest snapshot (ok, failed,
    pending = waiting for the verify job), the latest verification result, the last good snapshot and its
    size (what a restore would bring back), and the backup jobs that cover the VM.
    """
    picture = collect_vm_backups(ctx, ctx.settings)
    vms = picture.vms
    if args.vmid is not None:
        vms = [vm for vm in vms if vm.vmid == args.vmid]
        if not vms:
            return ToolResult.error(f"no VM {args.vmid} in the cluster; list VMs with vm.list")
    rows = [vm.as_dict() for vm in vms]
    rpo = ctx.settings.backup.rpo_hours
    if args.vmid is not None:
        vm = vms[0]
        if vm.last_backup is None:
            return ToolResult.no_data(_status_line(vm, rpo), data=rows)
        return ToolResult.ok(_status_line(vm, rpo), data=rows)
    stale = [vm for vm in vms if vm.stale]
    msg = f"{len(vms)} VMs; {len(stale)} without a backup within the {rpo:g} h RPO"
    # The VMs a question about "which ones" is after, named in the line people and the model read first.
    groups = (
        ("never backed up", [vm for vm in stale if vm.last_backup is None]),
        ("last backup too old", [vm for vm in stale if vm.last_backup is not None]),
        ("newest snapshot FAILED verification", [vm for vm in vms if vm.verification == "failed"]),
        ("not verified", [vm for vm in vms if vm.verification == "unverified" or _never_verified(vm)]),
    )
    for what, group in groups:
        if group:
            msg += f"; {what}: " + ", ".join(f"VM {vm.vmid} ({vm.name})" for vm in group)
    return ToolResult.ok(msg, data=rows)


class NoArgs(ToolArgs):
    """No arguments."""


class DatastoreArgs(ToolArgs):
    """Which datastore of the backup server."""

    store: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$",
        description="The PBS datastore's name; leave it out for the lab's backup datastore.",
    )


def _retention(value: Any) -> dict[str, int]:
    """A job's ``prune-backups``: an object, or the property string ``keep-daily=14,keep-weekly=4``.

    PVE's schema returns the object; the property string is how jobs.cfg writes it, read too in case a proxy or
    an older release passes it through unparsed (a guess, not seen in the schema).
    """
    if isinstance(value, str):
        pairs = (part.split("=", 1) for part in value.split(",") if "=" in part)
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict):
        return {}
    out: dict[str, int] = {}
    for key, raw in value.items():
        if str(key).startswith("keep-"):
            try:
                out[str(key)] = int(raw)
            except (TypeError, ValueError):
                continue
    return out


def _kept(retention: dict[str, int]) -> str:
    """Words for a retention: "the last 14 daily, 4 weekly", or "all backups"."""
    if retention.get("keep-all"):
        return "all backups"
    parts = [f"{n} {k.removeprefix('keep-')}" for k, n in retention.items() if k != "keep-all" and n]
    return "the last " + ", ".join(parts) if parts else "all backups"


def _count_vms(vmids: Any) -> str:
    """The count before "VMs" for an explicit list of ids ("11 "); "" for all VMs or a pool (not in the job)."""
    ids = [v for v in str(vmids or "").split(",") if v.strip().isdigit()]
    return f"{len(ids)} " if ids else ""


def backup_jobs(ctx: ToolContext, args: NoArgs) -> ToolResult:
    """The backup job schedule (PVE vzdump jobs).

    Schedule, storage, which VMs each covers, how many backups each keeps (retention), and the VMs that no
    enabled job covers.
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
            "retention": _retention(j.get("prune-backups")),
        }
        for j in jobs
    ]
    listed = "; ".join(
        f"{r['id']} ({'enabled' if r['enabled'] else 'disabled'}, {r['schedule'] or 'no schedule'}, "
        f"{_count_vms(r['vmids'])}VMs {r['vmids'] or '-'}, to {r['storage']}"
        + (f", keeps {_kept(r['retention'])}" if r["retention"] else "")
        + ")"
        for r in rows
    )
    msg = f"{len(jobs)} backup jobs ({sum(r['enabled'] for r in rows)} enabled): {listed}. "
    msg += f"{len(uncovered)} VMs in no enabled job"
    if uncovered:
        msg += ": " + ", ".join(f"{u['vmid']} {u['name']}" for u in uncovered)
    return ToolResult.ok(msg, data={"jobs": rows, "not_covered": uncovered})


def backup_datastore(ctx: ToolContext, args: DatastoreArgs) -> ToolResult:
    """PBS datastore health.

    Total/used/available space in GiB and percent, last garbage collection, and the verify job's last result.
    """
    pbs = ctx.client("pbs", pbs_client)
    store = args.store or ctx.settings.pbs.datastore
    status: dict[str, Any] = call(
        "PBS",
        lambda: pbs.admin.datastore(store).status.get(),
        action=f"reading datastore {store} (the store argument, or pbs.datastore)",
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

    VMs whose latest verification failed, VMs in no backup job (missing), backups older than the RPO
    (stale), and VMs none of whose recent snapshots was verified (unverified). Snapshots waiting for the
    next verify run are pending, not problems.
    """
    picture = collect_vm_backups(ctx, ctx.settings)
    cfg = ctx.settings.backup
    found = findings(picture.vms, cfg.rpo_hours, window_days=cfg.verify_window_days)
    line = verdict(found, len(picture.vms))
    lines = [line] + [
        f"- {f.problem.upper():10} {f.vmid} {f.name}" + (f" (owner {f.owner})" if f.owner else "") + f": {f.detail}"
        for f in found
    ]
    pending = [vm.vmid for vm in picture.vms if vm.verification == "pending"]
    if pending:
        lines.append(f"({len(pending)} VMs have a new snapshot waiting for the next verify run)")
    by_problem: dict[str, list[int]] = {}
    for f in found:
        by_problem.setdefault(f.problem, []).append(f.vmid)
    return ToolResult.ok(
        "\n".join(lines),
        data={
            "verdict": line,
            "findings": [f.as_dict() for f in found],
            "by_problem": by_problem,
            "pending_verification": pending,
            "checked_vms": len(picture.vms),
            "checked_at": int(picture.now),
            "rpo_hours": cfg.rpo_hours,
        },
    )


def _vm_resource(ctx: ToolContext, args: StatusArgs) -> list[ResourceRef]:
    return [ResourceRef(type="VM", id=str(args.vmid))] if args.vmid is not None else [ResourceRef(type="Lab", id="lab")]


def _run_resource(ctx: ToolContext, args: RunArgs) -> list[ResourceRef]:
    return [vm_resource(ctx, args.vmid)]


def _datastore(ctx: ToolContext, args: DatastoreArgs) -> list[ResourceRef]:
    return [ResourceRef(type="Datastore", id=args.store or ctx.settings.pbs.datastore)]


TOOLS: list[Tool[Any]] = [
    Tool(
        name="backup.status",
        args_model=StatusArgs,
        fn=backup_status,
        risk="read",
        resources=_vm_resource,
        summary=lambda a: f"backup status of VM {a.vmid}" if a.vmid else "backup status of every VM",
        words=("last backup", "backed up", "last backed", "restore", "recover"),
        aliases={"vmid": ("vm_id", "id", "vm", "vm_number")},
        named_by={"vmid": NameLookup(tool="vm.list", value="vmid", name="name")},
        examples=(
            "Is VM 132 backed up properly?",
            f"When was {EXAMPLE_NAME} last backed up?",
            f"If {EXAMPLE_NAME} broke, could we restore it?",
        ),
    ),
    Tool(
        name="backup.jobs",
        args_model=NoArgs,
        fn=backup_jobs,
        risk="read",
        summary=lambda a: "list backup jobs",
        rows=("backup jobs", "vzdump jobs"),
        words=(
            "backup job",
            "backup jobs",
            "in no",
            "not in any",
            "schedule",
            "scheduled",
            "configured",
            "kept",
            "keep",
            "retention",
            "retained",
        ),
        examples=(
            "Which backup jobs are configured?",
            "Which VMs are in no backup job?",
            "How many backups of a VM are kept?",
        ),
    ),
    Tool(
        name="backup.datastore",
        args_model=DatastoreArgs,
        fn=backup_datastore,
        risk="read",
        resources=_datastore,
        summary=lambda a: "datastore usage, GC and verify status" + (f" of {a.store}" if a.store else ""),
        rows=("datastores",),
        words=("datastore", "how full", "space left", "disk space", "room left", "space"),
        # The datastores' names come from the backup server ("is store1 ok?" names one).
        named_by={"store": NameLookup(tool="backup.datastore", value="store")},
        examples=("How full is the backup datastore?",),
    ),
    Tool(
        name="backup.check",
        args_model=NoArgs,
        fn=backup_check,
        risk="read",
        summary=lambda a: "check every VM's backups against the RPO",
        words=(
            "problem",
            "problems",
            "failed",
            "failing",
            "unverified",
            "stale",
            "properly",
            "attention",
            "healthy",
            "issues",
            "wrong",
            "ok",
            "recent",
        ),
        examples=("Which VMs have backup problems?", "Are all our backups ok?", "Which VMs lack a recent backup?"),
    ),
    Tool(
        name="backup.run",
        args_model=RunArgs,
        fn=run_backup,
        risk="write",
        plan=plan_backup,
        resources=_run_resource,
        resource_types=("VM",),
        summary=lambda a: f"back up VM {a.vmid} now ({a.mode} mode)",
        words=("back up now", "backup now", "take a backup", "fresh backup", "new backup"),
        asks=("back up", "take a backup", "run a backup", "make a backup", "start a backup"),
        aliases={"vmid": ("vm_id", "id", "vm", "vm_number")},
        named_by={"vmid": NameLookup(tool="vm.list", value="vmid", name="name")},
        examples=("Back up VM 132 now.", f"Take a fresh backup of {EXAMPLE_NAME}."),
        remedies=("backup:failed", "backup:stale"),
    ),
]

TOOLSET = Toolset(
    name="backup",
    words=("backup", "backups", "backed up", "snapshot", "snapshots", "restore", "pbs", "verify", "verification",
           "datastore", "rpo"),
    title="backups",
    tools=TOOLS,
)  # fmt: skip
