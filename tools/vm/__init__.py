"""VM tools (Proxmox VE through proxmoxer): nodes, VM lists and details.

Provisioning, power and delete (with plans and idempotency) are the next step of issue 3.
"""

from __future__ import annotations

from typing import Any

from tools.base import ResourceRef, Tool
from tools.context import ToolContext
from tools.vm.inventory import ListArgs, NodesArgs, ShowArgs, list_vms, show_vm, vm_nodes, vm_resource

__all__ = ["TOOLS"]


def _show_resources(ctx: ToolContext, args: ShowArgs) -> list[ResourceRef]:
    return [vm_resource(ctx, args.vmid)]


TOOLS: list[Tool[Any]] = [
    Tool(
        name="vm.nodes",
        args_model=NodesArgs,
        fn=vm_nodes,
        risk="read",
        summary=lambda a: "list nodes and free capacity",
    ),
    Tool(
        name="vm.list",
        args_model=ListArgs,
        fn=list_vms,
        risk="read",
        summary=lambda a: "list VMs" + "".join(f" {k}={v}" for k, v in a.model_dump(exclude_defaults=True).items()),
    ),
    Tool(
        name="vm.show",
        args_model=ShowArgs,
        fn=show_vm,
        risk="read",
        resources=_show_resources,
        summary=lambda a: f"show VM {a.vmid}",
    ),
]
