"""Facts derived from the PVE state: lookups, capacity, and the payloads several endpoints share."""

from __future__ import annotations

from typing import Any

from simlab import clock
from simlab.httpapi import ApiError

__all__ = [
    "CEPH",
    "allocated_mib",
    "ceph_used",
    "find_vm",
    "node_or_error",
    "running_mib",
    "vm_ip",
    "vm_resource",
]

MIB = 1024**2
GIB = 1024**3
# Guess: the lab's "NVMe primary, distributed" storage is modelled as one shared Ceph RBD pool, so a
# template on node01 can be cloned to any node (PVE refuses cross-node clones from local storage).
CEPH: dict[str, Any] = {
    "storage": "ceph-nvme",
    "type": "rbd",
    "content": "images,rootdir",
    "shared": 1,
    "total": 13 * 1024**4,
}


def node_or_error(data: dict[str, Any], node: str) -> dict[str, Any]:
    """The node, or PVE's errors for an unknown or unreachable node."""
    info = data["nodes"].get(node)
    if info is None:
        raise ApiError(
            500, f"hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
        )
    if not info["online"]:
        # pveproxy answers 595 when it cannot reach the node it should proxy to.
        raise ApiError(595, f"Connection refused (node '{node}' is offline)")
    return info


def find_vm(data: dict[str, Any], node: str, vmid: str) -> dict[str, Any]:
    """The VM ``vmid`` on ``node`` (PVE looks the config up on that node only)."""
    node_or_error(data, node)
    vm = data["vms"].get(str(vmid))
    if vm is None or vm["node"] != node:
        raise ApiError(500, f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist")
    return vm


def allocated_mib(data: dict[str, Any], node: str, *, exclude: int | None = None) -> int:
    """Memory configured for the non-template VMs on ``node`` (what the simulator's clone check counts)."""
    return sum(
        vm["memory"]
        for vm in data["vms"].values()
        if vm["node"] == node and not vm["template"] and vm["vmid"] != exclude
    )


def running_mib(data: dict[str, Any], node: str) -> int:
    """Memory of the running VMs on ``node``."""
    return sum(vm["memory"] for vm in data["vms"].values() if vm["node"] == node and vm["status"] == "running")


def ceph_used(data: dict[str, Any]) -> int:
    """Bytes allocated on the shared pool."""
    return sum(vm["disk_gib"] for vm in data["vms"].values()) * GIB


def vm_ip(vm: dict[str, Any]) -> str:
    """The data-network address the guest agent reports."""
    return f"10.25.60.{10 + vm['vmid'] % 240}"


def _load(vm: dict[str, Any]) -> float:
    # A steady, VM-specific load so the numbers look alive but stay deterministic.
    return round(0.02 + (vm["vmid"] * 37 % 100) / 400, 4)


def vm_resource(vm: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """A VM as ``/cluster/resources`` and ``/nodes/{node}/qemu`` list it."""
    now = now or clock.now()
    running = vm["status"] == "running"
    maxmem = vm["memory"] * MIB
    out: dict[str, Any] = {
        "id": f"qemu/{vm['vmid']}",
        "type": "qemu",
        "vmid": vm["vmid"],
        "name": vm["name"],
        "node": vm["node"],
        "status": vm["status"],
        "template": vm["template"],
        "cpu": _load(vm) if running else 0,
        "maxcpu": vm["cores"] * vm["sockets"],
        "mem": int(maxmem * 0.55) if running else 0,
        "maxmem": maxmem,
        "disk": 0,
        "maxdisk": vm["disk_gib"] * GIB,
        "netin": int((now - (vm["started"] or now)) * 900) if running else 0,
        "netout": int((now - (vm["started"] or now)) * 400) if running else 0,
        "diskread": 0,
        "diskwrite": 0,
        "uptime": int(now - vm["started"]) if running and vm["started"] else 0,
    }
    if vm["tags"]:
        out["tags"] = vm["tags"]
    if vm.get("lock"):
        out["lock"] = vm["lock"]
    return out
