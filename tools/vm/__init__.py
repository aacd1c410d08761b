"""VM tools (Proxmox VE through proxmoxer): capacity, inventory, provisioning, power and delete."""

from __future__ import annotations

from typing import Any, cast

from tools.base import ResourceRef, Tool
from tools.context import ToolContext
from tools.vm import power, provision
from tools.vm.inventory import ListArgs, NodesArgs, ShowArgs, list_vms, show_vm, vm_nodes, vm_resource

__all__ = ["TOOLS"]


def _show_resources(ctx: ToolContext, args: ShowArgs) -> list[ResourceRef]:
    return [vm_resource(ctx, args.vmid)]


def _provision_numbers(args: provision.ProvisionArgs) -> dict[str, int]:
    return {"vms": 1, "cores": args.cores, "memory_mib": args.memory_gib * 1024, "gpus": 0}


def _provision_resources(ctx: ToolContext, args: provision.ProvisionArgs) -> list[ResourceRef]:
    return provision.plan_provision(ctx, args).resources


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
    Tool(
        name="vm.provision",
        args_model=provision.ProvisionArgs,
        fn=provision.provision,
        risk="write",
        summary=provision.summary,
        plan=provision.plan_provision,
        numbers=_provision_numbers,
        resources=_provision_resources,
    ),
    Tool(
        name="vm.start",
        args_model=power.PowerArgs,
        fn=power.start_vm,
        risk="write",
        resources=power.vm_ref,
        summary=lambda a: f"start VM {a.vmid}",
        plan=cast(Any, power.plan_power("start")),
    ),
    Tool(
        name="vm.stop",
        args_model=power.StopArgs,
        fn=power.stop_vm,
        risk="write",
        resources=power.vm_ref,
        summary=lambda a: f"{a.mode} VM {a.vmid}",
        plan=cast(Any, power.plan_power("stop")),
    ),
    Tool(
        name="vm.reboot",
        args_model=power.PowerArgs,
        fn=power.reboot_vm,
        risk="write",
        resources=power.vm_ref,
        summary=lambda a: f"reboot VM {a.vmid}",
        plan=cast(Any, power.plan_power("reboot")),
    ),
    Tool(
        name="vm.delete",
        args_model=power.DeleteArgs,
        fn=power.delete_vm,
        risk="destructive",
        resources=power.vm_ref,
        summary=lambda a: f"destroy VM {a.vmid}" + (" (stopping it first)" if a.stop_first else ""),
        plan=power.plan_delete,
    ),
]
