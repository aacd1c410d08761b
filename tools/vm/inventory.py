"""Read-only views of the cluster: nodes with free capacity, VMs with owners and tags, one VM's details."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from core.errors import BackendUnavailable, InvalidArguments, ToolError
from tools.base import ResourceRef, ToolArgs, ToolResult
from tools.context import ToolContext
from tools.proxmox import call, pve_client

__all__ = [
    "ListArgs",
    "NodesArgs",
    "ShowArgs",
    "find_vm",
    "list_vms",
    "owner_of",
    "prepare_list",
    "show_vm",
    "vm_nodes",
    "vm_resource",
]

log = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2


def owner_of(tags: str | None) -> str:
    """The VM's owner from its ``owner-<user>`` tag ('' when none)."""
    for tag in (tags or "").replace(",", ";").split(";"):
        if tag.startswith("owner-"):
            return tag[len("owner-") :]
    return ""


def _tags(raw: str | None) -> list[str]:
    return [t for t in (raw or "").replace(",", ";").split(";") if t]


def _resources(ctx: ToolContext, kind: str) -> list[dict[str, Any]]:
    api = ctx.client("pve", pve_client)
    rows: list[dict[str, Any]] = call("PVE", lambda: api.cluster.resources.get(type=kind), action=f"listing {kind}s")
    return rows


def _optional(read: Callable[[], Any], action: str) -> Any:
    """What ``read`` returns from PVE, or None (logged) when it fails: a part of a table that may stay unknown."""
    try:
        return call("PVE", read, action=action)
    except (ToolError, BackendUnavailable) as exc:
        log.info("%s failed; left unknown: %s", action, exc)
        return None


def _gpus(ctx: ToolContext, node: str) -> list[str] | None:
    """The node's GPUs (PCI display controllers) by name; None when the node's PCI list cannot be read.

    ``GET /nodes/{node}/hardware/pci`` needs Sys.Audit on ``/``; a token without it still gets the rest of
    the table, with the GPUs unknown.
    """
    api = ctx.client("pve", pve_client)
    devices = _optional(lambda: api.nodes(node).hardware.pci.get(), f"listing {node}'s PCI devices")
    if devices is None:
        return None
    return [
        str(d.get("device_name") or f"{d.get('vendor')}:{d.get('device')}")
        for d in devices
        if str(d.get("class", "")).startswith("0x03")
    ]


def _cpu_model(ctx: ToolContext, node: str) -> str | None:
    """The node's CPU model (``cpuinfo.model`` of ``GET /nodes/{node}/status``); None when it cannot be read.

    The status needs Sys.Audit on the node, as the PCI list does: without it the rest of the table stands.
    """
    api = ctx.client("pve", pve_client)
    status = _optional(lambda: api.nodes(node).status.get(), f"reading {node}'s status")
    model = (status or {}).get("cpuinfo", {}).get("model")
    return str(model) if model else None


def _node_addresses(ctx: ToolContext) -> dict[str, str]:
    """Each node's cluster (management) address, from ``GET /cluster/status``."""
    api = ctx.client("pve", pve_client)
    rows = call("PVE", lambda: api.cluster.status.get(), action="reading the cluster status")
    return {str(r["name"]): str(r["ip"]) for r in rows if r.get("type") == "node" and r.get("ip")}


def node_capacity(ctx: ToolContext) -> list[dict[str, Any]]:
    """Each node with its totals, what the configured VMs leave free, its address and its GPUs."""
    nodes = _resources(ctx, "node")
    addresses = _node_addresses(ctx)
    vms = [v for v in _resources(ctx, "vm") if not v.get("template")]
    out = []
    for n in sorted(nodes, key=lambda n: n["node"]):
        mine = [v for v in vms if v.get("node") == n["node"]]
        alloc_mem = sum(int(v.get("maxmem", 0)) for v in mine)
        running_mem = sum(int(v.get("maxmem", 0)) for v in mine if v.get("status") == "running")
        alloc_cpu = sum(int(v.get("maxcpu", 0)) for v in mine if v.get("status") == "running")
        out.append(
            {
                "node": n["node"],
                "status": n.get("status", "unknown"),
                "ip": addresses.get(n["node"]),
                "threads": int(n.get("maxcpu", 0)),
                "cores_in_use": alloc_cpu,
                "memory_gib": round(int(n.get("maxmem", 0)) / GIB, 1),
                "memory_allocated_gib": round(alloc_mem / GIB, 1),
                "memory_running_gib": round(running_mem / GIB, 1),
                "memory_free_gib": round((int(n.get("maxmem", 0)) - alloc_mem) / GIB, 1),
                "vms": len(mine),
                "cpu_load": n.get("cpu"),
                "gpus": _gpus(ctx, n["node"]) if n.get("status") == "online" else None,
            }
        )
    return out


class NodesArgs(ToolArgs):
    """No arguments."""


def vm_nodes(ctx: ToolContext, args: NodesArgs) -> ToolResult:
    """Cluster nodes with their status (online/offline).

    CPU model and threads, memory in GiB, memory already allocated to VMs, what is free for new VMs, the node's
    management address, and GPUs.
    """
    # "What CPU does node03 have?": the model each node reports (an offline node reports none); read here, not in
    # node_capacity, which placement calls and which needs no CPU's name.
    rows = [
        {**r, "cpu_model": _cpu_model(ctx, r["node"]) if r["status"] == "online" else None} for r in node_capacity(ctx)
    ]
    online = [r for r in rows if r["status"] == "online"]
    best = max(online, key=lambda r: r["memory_free_gib"], default=None)
    msg = f"{len(online)} of {len(rows)} nodes online"
    if best:
        msg += f"; most free memory: {best['node']} ({best['memory_free_gib']} GiB unallocated)"
    offline = [r["node"] for r in rows if r["status"] != "online"]
    if offline:
        msg += f"; offline: {', '.join(offline)}"
    gpus = [f"{r['node']} ({', '.join(r['gpus'])})" for r in rows if r.get("gpus")]
    if gpus:
        msg += f"; GPU: {'; '.join(gpus)}"
    return ToolResult.ok(msg, data=rows)


class ListArgs(ToolArgs):
    """Filters for ``vm.list`` (all optional; combine them)."""

    node: str | None = Field(
        None,
        max_length=63,
        pattern=r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$",
        description="Only VMs on this node, e.g. 'node03'.",
    )
    status: Literal["running", "stopped"] | None = Field(None, description="Only running or stopped VMs.")
    tag: str | None = Field(None, description="Only VMs carrying this tag, e.g. 'production'.")
    owner: str | None = Field(None, description="Only VMs owned by this user (tag owner-<user>), e.g. 'researcher1'.")
    include_templates: bool = Field(False, description="Also list templates.")


# "VM templates", "OS templates", "templates to clone from": the templates asked for are VMs (a job's template is
# "job template" or "ray template", ray.templates'). English words about templates, not names of this lab.
_VM_TEMPLATES = re.compile(
    r"\b(?:vm|os|cloud|ubuntu|debian|base)\s+templates?\b|\btemplates?\s+(?:to|i can|we can|you can)?\s*clone\b"
    r"|\bclone\s+(?:\w+\s+){0,3}?from\b",
    re.I,
)


def prepare_list(ctx: ToolContext, args: dict[str, Any], said: str) -> dict[str, Any]:
    """``vm.list``'s arguments with ``include_templates`` set when the user asks for VM templates.

    The model called vm.list without it for "what vm templates are there to clone from", and the list it got
    holds no template. Only set, never cleared: a model that asked for them keeps them.
    """
    if _VM_TEMPLATES.search(said) and not args.get("include_templates"):
        return {**args, "include_templates": True}
    return args


def _vm_row(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "vmid": int(v["vmid"]),
        "name": v.get("name", ""),
        "node": v.get("node"),
        "status": v.get("status"),
        "cores": int(v.get("maxcpu", 0)),
        "memory_gib": round(int(v.get("maxmem", 0)) / GIB, 1),
        "disk_gib": round(int(v.get("maxdisk", 0)) / GIB),
        "tags": _tags(v.get("tags")),
        "owner": owner_of(v.get("tags")),
        "template": bool(v.get("template")),
    }


def list_vms(ctx: ToolContext, args: ListArgs) -> ToolResult:
    """List VMs with id, name, node, status, cores.

    Memory in GiB, tags and owner; filter by node, status, tag or owner.
    """
    rows = [_vm_row(v) for v in _resources(ctx, "vm")]
    rows = [r for r in rows if args.include_templates or not r["template"]]
    if args.node:
        rows = [r for r in rows if r["node"] == args.node]
    if args.status:
        rows = [r for r in rows if r["status"] == args.status]
    if args.tag:
        rows = [r for r in rows if args.tag in r["tags"]]
    if args.owner:
        rows = [r for r in rows if r["owner"] == args.owner]
    rows.sort(key=lambda r: r["vmid"])
    if not rows:
        return ToolResult.no_data("no VM matches these filters", data=[])
    # Templates first, by name: asked for, they are what the question is about (sorted by id they came last, cut
    # off after the twelfth VM).
    templates = [r for r in rows if r["template"]]
    vms = [r for r in rows if not r["template"]]
    head = (
        f"{len(templates)} templates: " + ", ".join(f"{r['vmid']} {r['name']} ({r['node']})" for r in templates)
        if templates
        else ""
    )
    running = sum(r["status"] == "running" for r in vms)
    listed = ", ".join(f"{r['vmid']} {r['name']} ({r['status']}, {r['node']})" for r in vms[:12])
    more = f", and {len(vms) - 12} more" if len(vms) > 12 else ""
    body = f"{len(vms)} VMs ({running} running): {listed}{more}" if vms else ""
    return ToolResult.ok("; ".join(p for p in (head, body) if p), data=rows)


def find_vm(ctx: ToolContext, vmid: int) -> dict[str, Any]:
    """The cluster-resources row of VM ``vmid``; InvalidArguments when there is none."""
    for v in _resources(ctx, "vm"):
        if int(v["vmid"]) == vmid:
            return v
    raise InvalidArguments(f"there is no VM {vmid}; find ids with vm.list")


class ShowArgs(ToolArgs):
    """Arguments of ``vm.show``."""

    vmid: int = Field(..., ge=100, le=999_999_999, description="VM id, e.g. 130.")


def show_vm(ctx: ToolContext, args: ShowArgs) -> ToolResult:
    """One VM's details.

    Configuration (cores, memory in MiB, disks, network), status, uptime, tags, owner, protection, and its IP
    address when it runs with the guest agent.
    """
    row = find_vm(ctx, args.vmid)
    api = ctx.client("pve", pve_client)
    node = row["node"]
    config: dict[str, Any] = call(
        "PVE", lambda: api.nodes(node).qemu(args.vmid).config.get(), action="reading the VM config"
    )
    status: dict[str, Any] = call(
        "PVE", lambda: api.nodes(node).qemu(args.vmid).status.current.get(), action="reading the VM status"
    )
    ip = None
    if status.get("status") == "running" and status.get("agent"):
        try:
            ifaces = call("PVE", lambda: api.nodes(node).qemu(args.vmid).agent("network-get-interfaces").get())
        except (ToolError, BackendUnavailable) as exc:
            # The guest agent not answering costs the IP only (a VM still booting): say why in the log.
            log.info("no IP for VM %s from its guest agent: %s", args.vmid, exc)
            ifaces = {}
        for iface in (ifaces or {}).get("result", []):
            for addr in iface.get("ip-addresses", []):
                if addr.get("ip-address-type") == "ipv4" and not addr["ip-address"].startswith("127."):
                    ip = addr["ip-address"]
    data = {
        **_vm_row(row),
        "config": config,
        "uptime_s": status.get("uptime", 0),
        "ip": ip,
        "protection": bool(int(config.get("protection", 0) or 0)),
        "description": config.get("description", ""),
    }
    where = f"on {node}, {data['status']}" + (f", IP {ip}" if ip else "")
    owner = f", owner {data['owner']}" if data["owner"] else ""
    # "Is wazuh-manager protected?": its tags (policy reads `protected` and `production`) and PVE's protection flag
    # are the answer, and the summary is what a read answer shows.
    tags = [t for t in data["tags"] if not t.startswith("owner-")]
    marks = (f", tags {', '.join(tags)}" if tags else "") + (", PVE protection on" if data["protection"] else "")
    return ToolResult.ok(
        f"VM {args.vmid} '{data['name']}' {where}, {data['cores']} cores, {data['memory_gib']} GiB{owner}{marks}",
        data=data,
    )


def vm_resource(ctx: ToolContext, vmid: int) -> ResourceRef:
    """A VM as policy sees it (tags and owner read live from PVE)."""
    v = find_vm(ctx, vmid)
    return ResourceRef(
        type="VM",
        id=str(vmid),
        attrs={
            "name": v.get("name", ""),
            "node": v.get("node", ""),
            "tags": _tags(v.get("tags")),
            "owner": owner_of(v.get("tags")),
            "status": v.get("status", ""),
        },
    )
