"""What a user's VMs use, counted from the live cluster (VMs tagged ``owner-<user>``)."""

from __future__ import annotations

from tools.context import ToolContext
from tools.vm.inventory import _resources, owner_of

__all__ = ["vm_usage"]

MIB = 1024**2


def vm_usage(ctx: ToolContext, user: str) -> dict[str, int]:
    """``{"vms", "cores", "memory_mib", "gpus"}`` of the non-template VMs owned by ``user``."""
    mine = [v for v in _resources(ctx, "vm") if not v.get("template") and owner_of(v.get("tags")) == user]
    return {
        "vms": len(mine),
        "cores": sum(int(v.get("maxcpu", 0)) for v in mine),
        "memory_mib": sum(int(v.get("maxmem", 0)) // MIB for v in mine),
        # GPUs are passed through as hostpci devices; cluster resources do not show them, so a VM
        # counts as GPU-holding when it carries the `gpu` tag (the lab's convention).
        "gpus": sum(1 for v in mine if "gpu" in str(v.get("tags", "")).split(";")),
    }
