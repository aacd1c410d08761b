"""What a user's VMs use, counted from the live cluster (VMs tagged ``owner-<user>``)."""

from __future__ import annotations

from typing import Any

from tools.context import ToolContext
from tools.proxmox import call, pve_client
from tools.vm.inventory import _resources, owner_of

__all__ = ["vm_usage"]

MIB = 1024**2


def _half_made_owner(ctx: ToolContext, vm: dict[str, Any]) -> str:
    """The owner written into a clone's description, for a VM not yet tagged (a clone in progress or cut off)."""
    tags = str(vm.get("tags", "")).split(";")
    if not (vm.get("lock") or "template" in tags):
        return ""
    api = ctx.client("pve", pve_client)
    config = call("PVE", lambda: api.nodes(vm["node"]).qemu(vm["vmid"]).config.get(), action="reading a VM config")
    for line in str(config.get("description", "")).splitlines():
        if line.startswith("owner: "):
            return line[len("owner: ") :].strip()
    return ""


def vm_usage(ctx: ToolContext, user: str) -> dict[str, int]:
    """``{"vms", "cores", "memory_mib", "gpus"}`` of the non-template VMs owned by ``user``.

    A VM counts by its ``owner-<user>`` tag, or, before it is tagged (a clone in progress or cut off),
    by the ``owner:`` line LabOps writes into the clone's description.
    """
    vms = [v for v in _resources(ctx, "vm") if not v.get("template")]
    mine = [v for v in vms if (owner_of(v.get("tags")) or _half_made_owner(ctx, v)) == user]
    return {
        "vms": len(mine),
        "cores": sum(int(v.get("maxcpu", 0)) for v in mine),
        "memory_mib": sum(int(v.get("maxmem", 0)) // MIB for v in mine),
        # GPUs are passed through as hostpci devices; cluster resources do not show them, so a VM
        # counts as GPU-holding when it carries the `gpu` tag (the lab's convention).
        "gpus": sum(1 for v in mine if "gpu" in str(v.get("tags", "")).split(";")),
    }
