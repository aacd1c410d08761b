"""``vm.provision``: the arguments, the plan (dry run), and the entry point; the steps are in :mod:`tools.vm.build`.

Nothing half-made stays behind: a step that fails cleans up what was made before the error is reported.
A call cut off half-way (the API died, the process was killed) leaves a journal of its steps against its
request key; the retry with the same key resumes from the last finished step (``ctx.resuming``).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from core.errors import InvalidArguments
from tools.base import Check, Plan, ResourceRef, ToolArgs, ToolResult
from tools.context import ToolContext
from tools.proxmox import call, pve_client
from tools.vm.build import create, resume
from tools.vm.inventory import _resources, node_capacity
from tools.vm.placement import Placement, choose_node

__all__ = ["ProvisionArgs", "plan_provision", "provision", "summary"]

_DNS = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
TOOL = "vm.provision"


class ProvisionArgs(ToolArgs):
    """Arguments of ``vm.provision``."""

    name: str = Field(..., description="VM name: lower-case letters, digits and '-', e.g. 'ray-worker-3'.")
    cores: int = Field(2, ge=1, le=32, description="CPU cores.")
    memory_gib: int = Field(4, ge=1, le=256, description="Memory in GiB (whole GiB, e.g. 8).")
    node: str | None = Field(
        None,
        max_length=63,
        pattern=r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$",
        description="Node to place it on, e.g. 'node03'; omit to pick the node with room.",
    )
    template: int | None = Field(
        None, ge=100, le=999_999_999, description="Template VMID to clone; omit for the lab's default."
    )

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not _DNS.match(value):
            raise ValueError("must be a DNS label: lower-case letters, digits and '-', not starting or ending with '-'")
        return value


def summary(args: ProvisionArgs) -> str:
    """One line for approvals, Slack and the audit log."""
    where = f" on {args.node}" if args.node else ""
    tpl = f"template {args.template}" if args.template else "the default template"
    cores = f"{args.cores} core" + ("" if args.cores == 1 else "s")
    return f"clone {tpl} to a new VM '{args.name}'{where}, {cores}, {args.memory_gib} GiB"


def _template(ctx: ToolContext, args: ProvisionArgs) -> int:
    return args.template or ctx.settings.pve.default_template


def _prepare(ctx: ToolContext, args: ProvisionArgs) -> tuple[Placement, list[Check], dict[str, Any] | None]:
    vms = _resources(ctx, "vm")
    template_id = _template(ctx, args)
    tpl = next((v for v in vms if int(v["vmid"]) == template_id), None)
    placement = choose_node(node_capacity(ctx), cores=args.cores, memory_gib=args.memory_gib, wanted=args.node)
    taken = [v for v in vms if v.get("name") == args.name]
    checks = [
        Check(
            name="template",
            passed=bool(tpl and tpl.get("template")),
            detail=f"template {template_id} exists"
            if tpl and tpl.get("template")
            else f"VM {template_id} is not a template; list templates with vm.list include_templates=true",
        ),
        Check(
            name="name free",
            passed=not taken,
            detail=f"no VM is called {args.name}"
            if not taken
            else f"VM {taken[0]['vmid']} is already called {args.name}",
        ),
        Check(
            name="node with room",
            passed=placement.node is not None,
            detail=f"{placement.node}: {placement.reason}" if placement.node else placement.reason,
        ),
    ]
    return placement, checks, tpl


def plan_provision(ctx: ToolContext, args: ProvisionArgs) -> Plan:
    """What a provision would do, without changing anything."""
    placement, checks, tpl = _prepare(ctx, args)
    api = ctx.client("pve", pve_client)
    next_id = call("PVE", lambda: api.cluster.nextid.get(), action="asking for the next free VM id")
    node = placement.node or "<none>"
    src = tpl["node"] if tpl else "<template node>"
    template_id = _template(ctx, args)
    calls = [
        f"POST /nodes/{src}/qemu/{template_id}/clone newid={next_id} name={args.name} target={node} full=1",
        f"GET /nodes/{src}/tasks/<UPID>/status (until stopped, timeout {ctx.settings.pve.task_timeout:.0f} s)",
        f"PUT /nodes/{node}/qemu/{next_id}/config cores={args.cores} memory={args.memory_gib * 1024} "
        f"tags=labops;owner-{ctx.user}",
        f"POST /nodes/{node}/qemu/{next_id}/status/start",
        f"GET /nodes/{node}/qemu/{next_id}/agent/network-get-interfaces",
    ]
    return Plan(
        tool=TOOL,
        summary=f"clone template {template_id} to VM {next_id} '{args.name}' on {node}, {args.cores} cores, "
        f"{args.memory_gib} GiB",
        api_calls=calls,
        capacity={
            "node": placement.node,
            "cores": args.cores,
            "memory_gib": args.memory_gib,
            "node_free_memory_gib_before": placement.free_memory_gib,
            "node_free_memory_gib_after": round(placement.free_memory_gib - args.memory_gib, 1),
        },
        checks=checks,
        resources=[
            ResourceRef(type="Node", id=node),
            ResourceRef(type="VM", id=str(template_id), attrs={"template": True}),
        ],
    )


def provision(ctx: ToolContext, args: ProvisionArgs) -> ToolResult:
    """Create a VM from a template and start it.

    Clones the template (default: the lab's Ubuntu 24.04 cloud template) onto the node with the most room
    (or the named node), sets cores, memory and the owner tag, starts it and returns its id and IP address.
    """
    if ctx.resuming and ctx.request_key:
        resumed = resume(ctx, args)
        if resumed is not None:
            return resumed
    placement, checks, tpl = _prepare(ctx, args)
    failed = [c.detail for c in checks if not c.passed]
    if failed:
        raise InvalidArguments("cannot provision: " + "; ".join(failed))
    assert placement.node is not None and tpl is not None
    return create(ctx, args, node=placement.node, template=tpl)
