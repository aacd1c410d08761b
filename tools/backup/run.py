"""``backup.run``: an on-demand backup of one VM to the backup server, through PVE's ``vzdump`` API."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tools.base import Check, Plan, ToolArgs, ToolResult
from tools.context import ToolContext
from tools.proxmox import call, pve_client, wait_task
from tools.vm.inventory import find_vm, vm_resource

__all__ = ["RunArgs", "plan_backup", "run_backup"]


class RunArgs(ToolArgs):
    """Arguments of ``backup.run``."""

    vmid: int = Field(..., ge=100, le=999_999_999, description="VM id to back up now, e.g. 132.")
    mode: Literal["snapshot", "suspend", "stop"] = Field(
        "snapshot",
        description="'snapshot' backs the VM up while it runs (default); 'suspend' pauses it meanwhile; 'stop' "
        "shuts it down for the backup and starts it again.",
    )


def plan_backup(ctx: ToolContext, args: RunArgs) -> Plan:
    """What a backup would do: the API calls on the VM's node, and whether the VM can be backed up now."""
    ref = vm_resource(ctx, args.vmid)
    node, storage = ref.attrs["node"], ctx.settings.pbs.pve_storage
    lock = str(find_vm(ctx, args.vmid).get("lock") or "")  # cluster resources show a running task's lock
    return Plan(
        tool="backup.run",
        summary=f"back up VM {args.vmid} '{ref.attrs['name']}' to {storage} now ({args.mode} mode)",
        api_calls=[
            f"POST /nodes/{node}/vzdump vmid={args.vmid} storage={storage} mode={args.mode}",
            f"GET /nodes/{node}/tasks/<UPID>/status",
        ],
        checks=[
            Check(name="exists", passed=True, detail=f"VM {args.vmid} is {ref.attrs['status']} on {node}"),
            Check(
                name="not locked",
                passed=not lock,
                detail="not locked" if not lock else f"locked ({lock}): wait for the running task to finish",
            ),
        ],
        resources=[ref],
    )


def run_backup(ctx: ToolContext, args: RunArgs) -> ToolResult:
    """Back one VM up to the backup server now (PVE 'Backup now'), and wait until the backup task ends.

    The new snapshot is verified by the next scheduled verify run (11:00); until then backup.status shows it
    as pending. Use it for a VM whose backup failed verification, is stale, or has none.
    """
    row = find_vm(ctx, args.vmid)
    node, storage = row["node"], ctx.settings.pbs.pve_storage
    api = ctx.client("pve", pve_client)
    upid = call(
        "PVE",
        lambda: api.nodes(node).vzdump.post(vmid=str(args.vmid), storage=storage, mode=args.mode),
        action=f"starting a backup of VM {args.vmid}",
    )
    result = wait_task(api, upid, timeout=ctx.settings.pve.task_timeout)
    if not result.ok:
        hint = " (it is still running in PVE: check backup.status later)" if result.timed_out else ""
        return ToolResult.error(
            f"the backup of VM {args.vmid} failed: {result.exitstatus}{hint}. Log: {' | '.join(result.log_tail[-3:])}",
            data={"vmid": args.vmid, "node": node, "upid": upid, "log_tail": result.log_tail},
        )
    return ToolResult.ok(
        f"VM {args.vmid} '{row.get('name', '')}' backed up to {storage} ({args.mode} mode); the new snapshot waits "
        "for the next verify run",
        data={"vmid": args.vmid, "node": node, "storage": storage, "upid": upid, "mode": args.mode},
    )
