"""``vm.start``, ``vm.stop``, ``vm.reboot`` and ``vm.delete``: follow the task, report how it ended."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.errors import InvalidArguments
from tools.base import Check, Plan, ResourceRef, ToolArgs, ToolResult
from tools.context import ToolContext
from tools.proxmox import call, pve_client, wait_task
from tools.vm.inventory import find_vm, vm_resource

__all__ = [
    "DeleteArgs",
    "PowerArgs",
    "StopArgs",
    "delete_vm",
    "plan_delete",
    "plan_power",
    "reboot_vm",
    "start_vm",
    "stop_vm",
]


class PowerArgs(ToolArgs):
    """Arguments of ``vm.start`` and ``vm.reboot``."""

    vmid: int = Field(..., ge=100, le=999_999_999, description="VM id, e.g. 130.")


class StopArgs(ToolArgs):
    """Arguments of ``vm.stop``."""

    vmid: int = Field(..., ge=100, le=999_999_999, description="VM id, e.g. 130.")
    mode: Literal["shutdown", "stop"] = Field(
        "shutdown", description="'shutdown' asks the guest OS to power off (clean); 'stop' cuts power at once."
    )


class DeleteArgs(ToolArgs):
    """Arguments of ``vm.delete``."""

    vmid: int = Field(..., ge=100, le=999_999_999, description="VM id to destroy, e.g. 142. This deletes its disks.")
    stop_first: bool = Field(
        False, description="Stop the VM first if it is running (otherwise a running VM is refused)."
    )


def _run(ctx: ToolContext, vmid: int, action: str, what: str) -> ToolResult:
    row = find_vm(ctx, vmid)
    api = ctx.client("pve", pve_client)
    node = row["node"]
    endpoint = getattr(api.nodes(node).qemu(vmid).status, action)
    upid = call("PVE", lambda: endpoint.post(), action=f"asking PVE to {action} VM {vmid}")
    result = wait_task(api, upid, timeout=ctx.settings.pve.task_timeout)
    if not result.ok:
        return ToolResult.error(
            f"{what} of VM {vmid} failed: {result.exitstatus}. Log: {' | '.join(result.log_tail[-3:])}",
            data={"upid": upid, "log_tail": result.log_tail},
        )
    # PVE's task has finished, so the VM is in the state the action leads to: said, so nobody has to ask again.
    now = {"start": "running", "stop": "stopped", "shutdown": "stopped", "reboot": "running"}.get(action)
    return ToolResult.ok(
        f"VM {vmid} '{row.get('name', '')}' {what} done on {node}" + (f"; it is now {now}" if now else ""),
        data={"vmid": vmid, "node": node, "upid": upid, "status": now},
    )


def start_vm(ctx: ToolContext, args: PowerArgs) -> ToolResult:
    """Start a stopped VM and wait until PVE reports it running."""
    row = find_vm(ctx, args.vmid)
    if row.get("status") == "running":
        return ToolResult.ok(f"VM {args.vmid} is already running", data={"vmid": args.vmid, "node": row["node"]})
    return _run(ctx, args.vmid, "start", "start")


def stop_vm(ctx: ToolContext, args: StopArgs) -> ToolResult:
    """Stop a running VM: 'shutdown' (clean, default) or 'stop' (immediate power off)."""
    row = find_vm(ctx, args.vmid)
    if row.get("status") != "running":
        return ToolResult.ok(f"VM {args.vmid} is already stopped", data={"vmid": args.vmid, "node": row["node"]})
    return _run(ctx, args.vmid, args.mode, args.mode)


def reboot_vm(ctx: ToolContext, args: PowerArgs) -> ToolResult:
    """Reboot a running VM (clean reboot through the guest)."""
    return _run(ctx, args.vmid, "reboot", "reboot")


def plan_power(action: str) -> object:
    """The plan function of a power tool."""

    def plan(ctx: ToolContext, args: PowerArgs | StopArgs) -> Plan:
        ref = vm_resource(ctx, args.vmid)
        verb = getattr(args, "mode", action)
        node = ref.attrs["node"]
        return Plan(
            tool=f"vm.{action}",
            summary=f"{verb} VM {args.vmid} '{ref.attrs['name']}' on {node}",
            api_calls=[f"POST /nodes/{node}/qemu/{args.vmid}/status/{verb}", f"GET /nodes/{node}/tasks/<UPID>/status"],
            checks=[Check(name="exists", passed=True, detail=f"VM {args.vmid} is {ref.attrs['status']}")],
            resources=[ref],
        )

    return plan


def plan_delete(ctx: ToolContext, args: DeleteArgs) -> Plan:
    """What a delete would do."""
    ref = vm_resource(ctx, args.vmid)
    api = ctx.client("pve", pve_client)
    node = ref.attrs["node"]
    cfg = call("PVE", lambda: api.nodes(node).qemu(args.vmid).config.get(), action="reading the VM config")
    running = ref.attrs["status"] == "running"
    protected = bool(int(cfg.get("protection", 0) or 0))
    calls = [f"POST /nodes/{node}/qemu/{args.vmid}/status/stop"] if running and args.stop_first else []
    calls += [f"DELETE /nodes/{node}/qemu/{args.vmid}?purge=1", f"GET /nodes/{node}/tasks/<UPID>/status"]
    checks = [
        Check(
            name="not protected",
            passed=not protected,
            detail="PVE protection is off" if not protected else "PVE protection is on: clear it in PVE first",
        ),
        Check(
            name="stopped",
            passed=not running or args.stop_first,
            detail="stopped"
            if not running
            else "running: will be stopped first"
            if args.stop_first
            else "running: set stop_first=true to stop it first",
        ),
    ]
    return Plan(
        tool="vm.delete",
        summary=f"destroy VM {args.vmid} '{ref.attrs['name']}' on {node} and its disks",
        api_calls=calls,
        checks=checks,
        resources=[ref],
    )


def delete_vm(ctx: ToolContext, args: DeleteArgs) -> ToolResult:
    """Destroy a VM and its disks. Refuses protected VMs, and running VMs unless stop_first is true."""
    plan = plan_delete(ctx, args)
    failed = [c.detail for c in plan.checks if not c.passed]
    if failed:
        raise InvalidArguments(f"cannot delete VM {args.vmid}: " + "; ".join(failed))
    api = ctx.client("pve", pve_client)
    node = plan.resources[0].attrs["node"]
    if plan.resources[0].attrs["status"] == "running":
        stopped = _run(ctx, args.vmid, "stop", "stop")
        if stopped.status != "ok":
            return stopped
    upid = call("PVE", lambda: api.nodes(node).qemu(args.vmid).delete(purge=1), action=f"destroying VM {args.vmid}")
    result = wait_task(api, upid, timeout=ctx.settings.pve.task_timeout)
    if not result.ok:
        return ToolResult.error(
            f"destroying VM {args.vmid} failed: {result.exitstatus}", data={"log_tail": result.log_tail}
        )
    return ToolResult.ok(
        f"VM {args.vmid} '{plan.resources[0].attrs['name']}' destroyed", data={"vmid": args.vmid, "upid": upid}
    )


def vm_ref(ctx: ToolContext, args: PowerArgs | StopArgs | DeleteArgs) -> list[ResourceRef]:
    """The VM a power/delete call touches, with live tags and owner (for policy)."""
    return [vm_resource(ctx, args.vmid)]
