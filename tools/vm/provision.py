"""``vm.provision``: clone a template, size it, tag its owner, start it, and report its address.

Nothing half-made stays behind: if the clone, the configuration or the start fails (or times out),
the new VM is stopped and destroyed before the error is reported. The guard makes a repeat with the same request key
return the first result; a repeat after a crash (``ctx.resuming``) finds the VM by the key written into
its description.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import Field, field_validator

from core.errors import InvalidArguments, ProxmoxError
from tools.base import Check, Plan, ResourceRef, ToolArgs, ToolResult
from tools.context import ToolContext
from tools.proxmox import call, pve_client, wait_task
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
    node: str | None = Field(None, description="Node to place it on, e.g. 'node03'; omit to pick the node with room.")
    template: int | None = Field(None, ge=100, description="Template VMID to clone; omit for the lab's default.")

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
    return f"clone {tpl} to a new VM '{args.name}'{where}, {args.cores} cores, {args.memory_gib} GiB"


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


def _config(api: Any, node: str, vmid: int) -> dict[str, Any]:
    config: dict[str, Any] = call("PVE", lambda: api.nodes(node).qemu(vmid).config.get(), action="reading a VM config")
    return config


def _find_by_key(ctx: ToolContext, key: str) -> dict[str, Any] | None:
    api = ctx.client("pve", pve_client)
    for vm in _resources(ctx, "vm"):
        if vm.get("template"):
            continue
        cfg = _config(api, vm["node"], int(vm["vmid"]))
        if f"request: {key}" in str(cfg.get("description", "")):
            return {"vmid": int(vm["vmid"]), "name": vm.get("name"), "node": vm["node"], "status": vm.get("status")}
    return None


def _cleanup(ctx: ToolContext, node: str, vmid: int, pending: str | None) -> list[str]:
    """Stop and destroy a half-made VM; returns what was done (for the message)."""
    api = ctx.client("pve", pve_client)
    done: list[str] = []
    timeout = max(ctx.settings.pve.task_timeout, 60.0)
    if pending:
        wait_task(api, pending, timeout=timeout)  # a timed-out task must end before its VM can go
    exists = any(int(v["vmid"]) == vmid for v in _resources(ctx, "vm"))
    if not exists:
        return ["nothing to clean up: PVE removed the failed clone"]
    status = call("PVE", lambda: api.nodes(node).qemu(vmid).status.current.get())
    if status.get("status") == "running":
        wait_task(api, call("PVE", lambda: api.nodes(node).qemu(vmid).status.stop.post()), timeout=timeout)
        done.append(f"stopped VM {vmid}")
    result = wait_task(api, call("PVE", lambda: api.nodes(node).qemu(vmid).delete(purge=1)), timeout=timeout)
    done.append(f"destroyed VM {vmid}" if result.ok else f"could NOT destroy VM {vmid}: {result.exitstatus}")
    return done


def _ip(ctx: ToolContext, node: str, vmid: int, attempts: int = 10) -> str | None:
    api = ctx.client("pve", pve_client)
    for _ in range(attempts):
        try:
            ifaces = call("PVE", lambda: api.nodes(node).qemu(vmid).agent("network-get-interfaces").get())
        except ProxmoxError:
            time.sleep(1)  # the guest agent answers a moment after boot
            continue
        for iface in ifaces.get("result", []):
            for addr in iface.get("ip-addresses", []):
                if addr.get("ip-address-type") == "ipv4" and not str(addr["ip-address"]).startswith("127."):
                    return str(addr["ip-address"])
    return None


def provision(ctx: ToolContext, args: ProvisionArgs) -> ToolResult:
    """Create a VM from a template and start it.

    Clones the template (default: the lab's Ubuntu 24.04 cloud template) onto the node with the most room
    (or the named node), sets cores, memory and the owner tag, starts it and returns its id and IP address.
    """
    if ctx.resuming and ctx.request_key:
        # The first attempt with this key was cut off: report what it made rather than make a second VM.
        found = _find_by_key(ctx, ctx.request_key)
        if found:
            return ToolResult.ok(f"this request already created VM {found['vmid']} '{found['name']}'", data=found)
    return _provision(ctx, args)


def _provision(ctx: ToolContext, args: ProvisionArgs) -> ToolResult:
    placement, checks, tpl = _prepare(ctx, args)
    failed = [c.detail for c in checks if not c.passed]
    if failed:
        raise InvalidArguments("cannot provision: " + "; ".join(failed))
    assert placement.node is not None and tpl is not None
    api = ctx.client("pve", pve_client)
    node, src = placement.node, tpl["node"]
    timeout = ctx.settings.pve.task_timeout
    vmid = int(call("PVE", lambda: api.cluster.nextid.get(), action="asking for the next free VM id"))
    description = f"owner: {ctx.user}\ncreated by LabOps" + (f"\nrequest: {ctx.request_key}" if ctx.request_key else "")
    params: dict[str, Any] = {"newid": vmid, "name": args.name, "target": node, "full": 1, "description": description}
    if ctx.settings.pve.storage:
        params["storage"] = ctx.settings.pve.storage
    upid = call("PVE", lambda: api.nodes(src).qemu(tpl["vmid"]).clone.post(**params), action="cloning the template")
    steps: list[str] = []
    pending: str | None = upid
    try:
        clone = wait_task(api, upid, timeout=timeout)
        if not clone.ok:
            return _failed(
                ctx, node, vmid, pending if clone.timed_out else None, "clone", clone.exitstatus, clone.log_tail
            )
        pending = None
        steps.append(f"cloned template {tpl['vmid']} to VM {vmid} on {node}")
        call(
            "PVE",
            lambda: (
                api.nodes(node)
                .qemu(vmid)
                .config.put(cores=args.cores, memory=args.memory_gib * 1024, tags=f"labops;owner-{ctx.user}")
            ),
            action="configuring the VM",
        )
        steps.append(f"set {args.cores} cores, {args.memory_gib} GiB, owner {ctx.user}")
        pending = call("PVE", lambda: api.nodes(node).qemu(vmid).status.start.post(), action="starting the VM")
        start = wait_task(api, pending, timeout=timeout)
        if not start.ok:
            return _failed(
                ctx, node, vmid, pending if start.timed_out else None, "start", start.exitstatus, start.log_tail
            )
        pending = None
    except BaseException as exc:
        # Anything unexpected mid-way: remove what was made, then let the error through.
        cleanup = _cleanup(ctx, node, vmid, pending)
        if isinstance(exc, ProxmoxError | InvalidArguments):
            raise type(exc)(f"{exc} (cleanup: {'; '.join(cleanup)})") from exc
        raise
    ip = _ip(ctx, node, vmid)
    steps.append("started" + (f", IP {ip}" if ip else ", no IP from the guest agent yet"))
    data = {
        "vmid": vmid,
        "name": args.name,
        "node": node,
        "cores": args.cores,
        "memory_gib": args.memory_gib,
        "ip": ip,
        "owner": ctx.user,
        "steps": steps,
    }
    return ToolResult.ok(f"VM {vmid} '{args.name}' is running on {node}" + (f" at {ip}" if ip else ""), data=data)


def _failed(
    ctx: ToolContext, node: str, vmid: int, pending: str | None, step: str, status: str, log: list[str]
) -> ToolResult:
    cleanup = _cleanup(ctx, node, vmid, pending)
    tail = " | ".join(log[-4:])
    return ToolResult.error(
        f"provisioning failed at the {step} step: {status}. Task log: {tail}. Cleanup: {'; '.join(cleanup)}. "
        "Nothing was left behind; try another node or less memory.",
        data={"vmid": vmid, "node": node, "step": step, "exitstatus": status, "log_tail": log, "cleanup": cleanup},
    )
