"""VM tools (Proxmox VE through proxmoxer): capacity, inventory, provisioning, power and delete."""

from __future__ import annotations

from typing import Any, cast

from tools.base import EXAMPLE_NAME, NameLookup, OwnThing, ResourceRef, Tool, Toolset
from tools.context import ToolContext
from tools.vm import power, provision
from tools.vm.inventory import (
    ListArgs,
    NodesArgs,
    ShowArgs,
    list_vms,
    prepare_list,
    show_vm,
    vm_nodes,
    vm_resource,
)

__all__ = ["TOOLS", "TOOLSET"]

# Other names a model writes for these tools' arguments.
VMID = {"vmid": ("vm_id", "id", "vm", "vm_number")}
# A VM may be named instead of numbered ("reboot proj-pg01"): vm.list maps names to ids.
BY_NAME = {"vmid": NameLookup(tool="vm.list", value="vmid", name="name")}


def _own(status: str) -> OwnThing:
    """The asker's VMs a power change can act on ("shut down my vm": the one that is running)."""
    return OwnThing(arg="vmid", tool="vm.list", value="vmid", where={"status": (status,)}, what=f"{status} VM")


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
        rows=("nodes", "hosts", "hypervisors", "servers"),
        words=("free", "capacity", "room", "offline", "online", "hypervisor", "hypervisors", "memory free"),
        examples=("Which nodes have room for a new VM?", "Are any nodes offline?", "Which node has a GPU?"),
    ),
    Tool(
        name="vm.list",
        args_model=ListArgs,
        fn=list_vms,
        risk="read",
        summary=lambda a: "list VMs" + "".join(f" {k}={v}" for k, v in a.model_dump(exclude_defaults=True).items()),
        # VM templates are VMs (PVE lists them with template=1); the Ray job templates are ray.templates's.
        rows=("vms", "virtual machines", "machines", "guests", "vm templates"),
        words=("my vms", "which vms", "list", "stopped", "running", "owned", "own"),
        examples=("What VMs do I have?", "Which VMs are stopped?", "List the VMs on node03.", "List the VM templates."),
        prepare=prepare_list,
        mine="owner",
        # Lab members are named by the owners the listing shows ("what does researcher2 have running").
        named_by={"owner": NameLookup(tool="vm.list", value="owner")},
    ),
    Tool(
        name="vm.show",
        args_model=ShowArgs,
        fn=show_vm,
        risk="read",
        resources=_show_resources,
        summary=lambda a: f"show VM {a.vmid}",
        words=("show", "details", "ip", "address", "config"),
        aliases=VMID,
        named_by=BY_NAME,
        examples=(
            "Show me VM 130.",
            f"What is the IP of {EXAMPLE_NAME}?",
            f"How much memory does {EXAMPLE_NAME} have?",
            f"Is {EXAMPLE_NAME} running?",
        ),
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
        words=("create", "provision", "new vm", "spin up"),
        asks=(
            "provision",
            "create",
            "make",
            "spin up",
            "set up",
            "setup",
            "launch",
            "new vm",
            "new machine",
            "need a vm",
            "need a machine",
            "need a new",
            "give me a vm",
            "build",
            "deploy",
            "clone",
            "want a vm",
            "would like a vm",
            "request a vm",
            "get a vm",
            "allocate",
        ),
        aliases={
            "memory_gib": (
                "memory",
                "ram",
                "mem",
                "memory_gb",
                "ram_gb",
                "memory_mb",
                "ram_mb",
                "memory_mib",
                "mem_gb",
            ),
            "cores": ("cpus", "vcpus", "cpu", "num_cores", "cpu_cores", "core", "num_cpus"),
            "node": ("host", "hypervisor", "on_node"),
        },
        named_by={"node": NameLookup(tool="vm.nodes", value="node")},
        examples=("Create a VM called analysis-2 with 2 cores and 8 GiB.", "I need a VM on the GPU node."),
    ),
    Tool(
        name="vm.start",
        args_model=power.PowerArgs,
        fn=power.start_vm,
        risk="write",
        resources=power.vm_ref,
        summary=lambda a: f"start VM {a.vmid}",
        plan=cast(Any, power.plan_power("start")),
        asks=("start", "boot", "power on", "turn on", "bring up", "resume", "fire up"),
        aliases=VMID,
        named_by=BY_NAME,
        own=_own("stopped"),
        examples=("Start VM 132.", f"Please boot {EXAMPLE_NAME}."),
    ),
    Tool(
        name="vm.stop",
        args_model=power.StopArgs,
        fn=power.stop_vm,
        risk="write",
        resources=power.vm_ref,
        summary=lambda a: f"{a.mode} VM {a.vmid}",
        plan=cast(Any, power.plan_power("stop")),
        asks=("stop", "shut", "power off", "turn off", "halt", "bring down", "pause", "pull the plug"),
        aliases=VMID,
        # "hard power off void-analysis": the model kept the default clean shutdown. PVE's 'stop' cuts power.
        values={
            "mode": {
                **dict.fromkeys(("hard", "force", "forced", "forcibly", "forcefully", "pull the plug"), "stop"),
                **dict.fromkeys(("cut the power", "cut power", "power cut"), "stop"),
                **dict.fromkeys(("clean", "cleanly", "gracefully", "graceful"), "shutdown"),
            }
        },
        named_by=BY_NAME,
        own=_own("running"),
        examples=("Stop VM 130.", f"Shut down {EXAMPLE_NAME}."),
    ),
    Tool(
        name="vm.reboot",
        args_model=power.PowerArgs,
        fn=power.reboot_vm,
        risk="write",
        resources=power.vm_ref,
        summary=lambda a: f"reboot VM {a.vmid}",
        plan=cast(Any, power.plan_power("reboot")),
        asks=("reboot", "restart", "bounce", "power cycle"),
        aliases=VMID,
        named_by=BY_NAME,
        own=_own("running"),
        examples=("Reboot VM 131.",),
    ),
    Tool(
        name="vm.delete",
        args_model=power.DeleteArgs,
        fn=power.delete_vm,
        risk="destructive",
        resources=power.vm_ref,
        summary=lambda a: f"destroy VM {a.vmid}" + (" (stopping it first)" if a.stop_first else ""),
        plan=power.plan_delete,
        asks=("delete", "remove", "destroy", "get rid of", "tear down", "purge", "wipe", "decommission", "drop"),
        aliases=VMID,
        named_by=BY_NAME,
        examples=("Delete VM 140.",),
    ),
]

TOOLSET = Toolset(
    name="vm",
    words=("vm", "vms", "virtual machine", "virtual machines", "node", "nodes", "provision", "reboot", "shut down",
           "machine", "machines"),
    title="VMs and nodes (capacity, provisioning, power)",
    tools=TOOLS,
)  # fmt: skip
