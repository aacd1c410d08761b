"""``/nodes/{node}/qemu``: create, clone, configure, power and destroy VMs, and the task effects behind them."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from simlab import clock
from simlab.auth import Principal
from simlab.httpapi import ApiError, Request, Router
from simlab.pve.model import (
    CEPH,
    MIB,
    allocated_mib,
    ceph_used,
    find_vm,
    node_or_error,
    running_mib,
    vm_ip,
    vm_resource,
)
from simlab.tasks import Effect, new_task
from simlab.validate import Params

__all__ = ["EFFECTS", "register"]

_CONFIG_KEYS = {
    "name",
    "cores",
    "sockets",
    "memory",
    "description",
    "tags",
    "protection",
    "onboot",
    "agent",
    "cpu",
    "net0",
    "ipconfig0",
    "ciuser",
    "sshkeys",
    "balloon",
    "ostype",
    "delete",
    "digest",
    "scsi0",
    "boot",
    "scsihw",
}
# Durations in seconds at task speed 1 (a real clone of a 32 GiB cloud image takes longer; kept short).
_DURATION = {
    "qmclone": 4.0,
    "qmstart": 2.0,
    "qmstop": 1.0,
    "qmshutdown": 2.5,
    "qmreboot": 3.0,
    "qmdestroy": 1.5,
    "qmcreate": 1.0,
    "qmconfig": 0.3,
}


def _owner_check_lock(vm: dict[str, Any]) -> None:
    if vm.get("lock"):
        raise ApiError(500, f"VM is locked ({vm['lock']})")


# --- task effects ------------------------------------------------------------------------------


def _effect_clone(data: dict[str, Any], task: dict[str, Any]) -> tuple[str | None, list[str]]:
    p = task["params"]
    vm = data["vms"].get(str(p["newid"]))
    if vm is None:
        return "clone failed: target VM config vanished", []
    node = data["nodes"][vm["node"]]
    lines = [
        f"create full clone of drive scsi0 ({CEPH['storage']}:base-{p['source']}-disk-0)",
        f"transferred 0.0 B of {vm['disk_gib']}.0 GiB (0.00%)",
    ]
    need = vm["memory"]
    have = node["maxmem"] // MIB - allocated_mib(data, vm["node"], exclude=vm["vmid"])
    error = None
    if need > have:
        error = (
            f"clone failed: not enough memory on node '{vm['node']}' "
            f"(VM needs {need} MiB, {max(have, 0)} MiB not yet allocated)"
        )
    elif ceph_used(data) > int(CEPH["total"]):
        error = f"clone failed: not enough space on storage '{CEPH['storage']}'"
    if error:
        # As PVE does: a failed clone removes the half-made VM's config and disks.
        del data["vms"][str(vm["vmid"])]
        lines.append(f"clone failed, removing VM {vm['vmid']}")
        return error, lines
    vm["lock"] = None
    lines.append(f"transferred {vm['disk_gib']}.0 GiB of {vm['disk_gib']}.0 GiB (100.00%)")
    return None, lines


def _effect_start(data: dict[str, Any], task: dict[str, Any]) -> tuple[str | None, list[str]]:
    vm = data["vms"].get(task["id"])
    if vm is None:
        return f"Configuration file 'qemu-server/{task['id']}.conf' does not exist", []
    if vm["status"] == "running":
        return None, [f"VM {vm['vmid']} already running"]
    free = data["nodes"][vm["node"]]["maxmem"] // MIB - running_mib(data, vm["node"])
    if vm["memory"] > free:
        return (
            f"start failed: not enough memory on node '{vm['node']}' "
            f"(VM needs {vm['memory']} MiB, {max(free, 0)} MiB free)"
        ), []
    vm["status"] = "running"
    vm["started"] = clock.now()
    return None, [f"start VM {vm['vmid']}: UPID ok", "generating cloud-init ISO"]


def _effect_stop(data: dict[str, Any], task: dict[str, Any]) -> tuple[str | None, list[str]]:
    vm = data["vms"].get(task["id"])
    if vm is None:
        return f"Configuration file 'qemu-server/{task['id']}.conf' does not exist", []
    vm["status"] = "stopped"
    vm["started"] = None
    return None, []


def _effect_reboot(data: dict[str, Any], task: dict[str, Any]) -> tuple[str | None, list[str]]:
    vm = data["vms"].get(task["id"])
    if vm is None or vm["status"] != "running":
        return f"VM {task['id']} not running", []
    vm["started"] = clock.now()
    return None, ["guest rebooted"]


def _effect_destroy(data: dict[str, Any], task: dict[str, Any]) -> tuple[str | None, list[str]]:
    vm = data["vms"].pop(task["id"], None)
    if vm is None:
        return f"Configuration file 'qemu-server/{task['id']}.conf' does not exist", []
    return None, [f'  Logical volume "vm-{vm["vmid"]}-disk-0" successfully removed', "purging VM from backup jobs"]


def _effect_unlock(data: dict[str, Any], task: dict[str, Any]) -> tuple[str | None, list[str]]:
    vm = data["vms"].get(task["id"])
    if vm is not None:
        vm["lock"] = None
    return None, []


EFFECTS: dict[str, Effect] = {
    "clone": _effect_clone,
    "start": _effect_start,
    "stop": _effect_stop,
    "reboot": _effect_reboot,
    "destroy": _effect_destroy,
    "unlock": _effect_unlock,
    "noop": lambda data, task: (None, []),
}


# --- routes --------------------------------------------------------------------------------------


def register(router: Router, data: Callable[[], dict[str, Any]], speed: Callable[[], float]) -> None:
    """Add the qemu endpoints to ``router``; ``data()`` is the locked state document."""

    def task(
        req: Request,
        node: str,
        kind: str,
        obj_id: str,
        effect: str,
        params: dict[str, Any] | None = None,
        first_log: list[str] | None = None,
    ) -> str:
        principal: Principal = req.auth
        return new_task(
            data(),
            node=node,
            kind=kind,
            obj_id=obj_id,
            user=principal.authid,
            duration=_DURATION[kind] / speed(),
            effect=effect,
            params=params,
            first_log=first_log,
        )

    @router.route("GET", "/nodes/{node}/qemu")
    def list_vms(req: Request) -> Any:
        node = req.params["node"]
        node_or_error(data(), node)
        out = []
        for vm in data()["vms"].values():
            if vm["node"] == node:
                item = vm_resource(vm)
                for key in ("id", "type", "node"):
                    item.pop(key)
                item["cpus"] = item.pop("maxcpu")
                out.append(item)
        return out

    @router.route("POST", "/nodes/{node}/qemu")
    def create_vm(req: Request) -> Any:
        node = req.params["node"]
        p = Params(req.args(), _CONFIG_KEYS | {"vmid", "start", "storage", "pool", "template", "scsi0"}, req.params)
        vmid = p.integer("vmid", minimum=100, maximum=999999999, required=True)
        name = p.dns_name("name")
        cores = p.integer("cores", minimum=1, maximum=8192, default=1)
        memory = p.memory("memory") or 512
        tags = p.tags("tags")
        start = p.boolean("start")
        p.check()
        node_or_error(data(), node)
        if str(vmid) in data()["vms"]:
            raise ApiError(
                500,
                f"unable to create VM {vmid} - VM {vmid} already exists on node '{data()['vms'][str(vmid)]['node']}'",
            )
        size = 32
        disk = p.raw.get("scsi0", "")
        match = re.match(r"^[\w-]+:(\d+)", disk)
        if match:
            size = int(match.group(1))
        data()["vms"][str(vmid)] = {
            "vmid": vmid,
            "name": name or f"VM{vmid}",
            "node": node,
            "cores": cores,
            "sockets": 1,
            "memory": memory,
            "disk_gib": size,
            "status": "stopped",
            "started": None,
            "tags": tags or "",
            "description": p.raw.get("description", ""),
            "template": 0,
            "protection": 0,
            "agent": 1,
            "ostype": p.raw.get("ostype", "other"),
            "net0": p.raw.get("net0", "virtio,bridge=vmbr1"),
            "scsi0": f"{CEPH['storage']}:vm-{vmid}-disk-0,size={size}G",
            "lock": "create",
        }
        upid = task(req, node, "qmcreate", str(vmid), "unlock")
        if start:
            task(req, node, "qmstart", str(vmid), "start")
        return upid

    @router.route("POST", "/nodes/{node}/qemu/{vmid}/clone")
    def clone_vm(req: Request) -> Any:
        node, vmid = req.params["node"], req.params["vmid"]
        allowed = {"newid", "name", "full", "target", "storage", "format", "pool", "snapname", "description", "bwlimit"}
        p = Params(req.args(), allowed, req.params)
        newid_or_none = p.integer("newid", minimum=100, maximum=999999999, required=True)
        name = p.dns_name("name")
        p.boolean("full")
        target = p.string("target")
        p.enum("format", {"raw", "qcow2", "vmdk"})
        if p.has("storage") and p.raw["storage"] != CEPH["storage"]:
            p.errors["storage"] = f"storage '{p.raw['storage']}' does not exist"
        p.check()
        assert newid_or_none is not None  # p.check() raised if it was missing
        newid = newid_or_none
        src = find_vm(data(), node, vmid)
        target = target or node
        node_or_error(data(), target)
        if str(newid) in data()["vms"]:
            raise ApiError(500, f"unable to create VM {newid}: config file already exists")
        _owner_check_lock(src)
        vm = {
            **src,
            "vmid": newid,
            "name": name or f"Copy-of-VM-{src['name']}",
            "node": target,
            "template": 0,
            "status": "stopped",
            "started": None,
            "protection": 0,
            "lock": "clone",
            "description": p.raw.get("description", src["description"] if not src["template"] else ""),
            "scsi0": f"{CEPH['storage']}:vm-{newid}-disk-0,size={src['disk_gib']}G",
            "net0": f"virtio=BC:24:11:00:{newid // 256 % 256:02X}:{newid % 256:02X},bridge=vmbr1",
        }
        data()["vms"][str(newid)] = vm
        return task(
            req,
            node,
            "qmclone",
            vmid,
            "clone",
            {"newid": newid, "source": int(vmid)},
            [f"create full clone of VM {vmid} to VM {newid} on node '{target}'"],
        )

    @router.route("GET", "/nodes/{node}/qemu/{vmid}/config")
    def get_config(req: Request) -> Any:
        vm = find_vm(data(), req.params["node"], req.params["vmid"])
        out: dict[str, Any] = {
            "name": vm["name"],
            "cores": vm["cores"],
            "sockets": vm["sockets"],
            "memory": str(vm["memory"]),
            "ostype": vm["ostype"],
            "net0": vm["net0"],
            "scsi0": vm["scsi0"],
            "scsihw": "virtio-scsi-single",
            "boot": "order=scsi0;net0",
            "agent": str(vm["agent"]),
            "digest": hashlib.sha1(json.dumps(vm, sort_keys=True).encode()).hexdigest(),
            "ide2": f"{CEPH['storage']}:vm-{vm['vmid']}-cloudinit,media=cdrom",
        }
        for key in ("description", "tags", "hostpci0", "ipconfig0", "ciuser"):
            if vm.get(key):
                out[key] = vm[key]
        for key in ("template", "protection"):
            if vm.get(key):
                out[key] = vm[key]
        if vm.get("lock"):
            out["lock"] = vm["lock"]
        return out

    def update_config(req: Request) -> None:
        vm = find_vm(data(), req.params["node"], req.params["vmid"])
        p = Params(req.args(), _CONFIG_KEYS | {"skiplock"}, req.params)
        cores = p.integer("cores", minimum=1, maximum=8192)
        sockets = p.integer("sockets", minimum=1, maximum=4)
        memory = p.memory("memory")
        name = p.dns_name("name")
        tags = p.tags("tags")
        protection = p.boolean("protection", default=vm["protection"])
        agent = p.string("agent")
        desc = p.string("description", max_length=8192)
        p.check()
        if vm.get("lock") and not p.boolean("skiplock"):
            _owner_check_lock(vm)
        for key, value in (
            ("cores", cores),
            ("sockets", sockets),
            ("memory", memory),
            ("name", name),
            ("tags", tags),
            ("description", desc),
        ):
            if value is not None:
                vm[key] = value
        vm["protection"] = protection
        if agent is not None:
            vm["agent"] = 1 if agent.split(",")[0].replace("enabled=", "") in {"1", "true"} else 0
        for key in ("ipconfig0", "ciuser", "sshkeys", "onboot", "cpu"):
            if key in p.raw:
                vm[key] = p.raw[key]
        for key in [k for k in p.raw.get("delete", "").split(",") if k]:
            if key in {"tags", "description", "ipconfig0", "ciuser"}:
                vm[key] = "" if key in {"tags", "description"} else None
            elif key == "protection":
                vm["protection"] = 0

    @router.route("PUT", "/nodes/{node}/qemu/{vmid}/config")
    def put_config(req: Request) -> Any:
        update_config(req)
        return None

    @router.route("POST", "/nodes/{node}/qemu/{vmid}/config")
    def post_config(req: Request) -> Any:
        update_config(req)
        return task(req, req.params["node"], "qmconfig", req.params["vmid"], "noop", first_log=["update VM config"])

    @router.route("GET", "/nodes/{node}/qemu/{vmid}/status/current")
    def status_current(req: Request) -> Any:
        vm = find_vm(data(), req.params["node"], req.params["vmid"])
        res = vm_resource(vm)
        out = {
            k: res[k]
            for k in (
                "vmid",
                "name",
                "status",
                "cpu",
                "mem",
                "maxmem",
                "maxdisk",
                "disk",
                "uptime",
                "netin",
                "netout",
                "diskread",
                "diskwrite",
            )
        }
        out.update(cpus=res["maxcpu"], qmpstatus=vm["status"], agent=vm["agent"], ha={"managed": 0})
        if vm["status"] == "running":
            out["pid"] = 10000 + vm["vmid"]
            out["running-machine"] = "pc-i440fx-9.2+pve1"
            out["running-qemu"] = "9.2.0"
        for key in ("tags", "lock"):
            if key in res:
                out[key] = res[key]
        if vm["template"]:
            out["template"] = 1
        return out

    def power(kind: str, effect: str, needs: str | None) -> Callable[[Request], Any]:
        def handler(req: Request) -> Any:
            vm = find_vm(data(), req.params["node"], req.params["vmid"])
            allowed = {"timeout", "skiplock", "forceStop", "keepActive", "overrule-shutdown", "machine", "force-cpu"}
            p = Params(req.args(), allowed, req.params)
            p.integer("timeout", minimum=0)
            p.check()
            if vm["template"]:
                raise ApiError(500, "you can't start a vm if it's a template")
            if not p.boolean("skiplock"):
                _owner_check_lock(vm)
            if needs == "running" and vm["status"] != "running":
                raise ApiError(500, f"VM {vm['vmid']} not running")
            return task(req, vm["node"], kind, str(vm["vmid"]), effect)

        return handler

    router.add("POST", "/nodes/{node}/qemu/{vmid}/status/start", power("qmstart", "start", None))
    router.add("POST", "/nodes/{node}/qemu/{vmid}/status/stop", power("qmstop", "stop", None))
    router.add("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown", power("qmshutdown", "stop", "running"))
    router.add("POST", "/nodes/{node}/qemu/{vmid}/status/reboot", power("qmreboot", "reboot", "running"))

    @router.route("DELETE", "/nodes/{node}/qemu/{vmid}")
    def destroy(req: Request) -> Any:
        vm = find_vm(data(), req.params["node"], req.params["vmid"])
        p = Params(req.args(), {"purge", "destroy-unreferenced-disks", "skiplock"}, req.params)
        p.boolean("purge")
        p.boolean("destroy-unreferenced-disks")
        p.check()
        if not p.boolean("skiplock"):
            _owner_check_lock(vm)
        if vm["protection"]:
            raise ApiError(500, f"can't remove VM {vm['vmid']} - protection mode enabled")
        if vm["status"] == "running":
            raise ApiError(500, f"VM {vm['vmid']} is running - destroy failed")
        vm["lock"] = "destroyed"
        return task(req, vm["node"], "qmdestroy", str(vm["vmid"]), "destroy")

    @router.route("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces")
    def agent_interfaces(req: Request) -> Any:
        vm = find_vm(data(), req.params["node"], req.params["vmid"])
        if vm["status"] != "running":
            raise ApiError(500, f"VM {vm['vmid']} is not running")
        if not vm["agent"]:
            raise ApiError(500, "No QEMU guest agent configured")
        mac = vm["net0"].split(",")[0].partition("=")[2].lower() or "bc:24:11:00:00:00"
        return {
            "result": [
                {
                    "name": "lo",
                    "hardware-address": "00:00:00:00:00:00",
                    "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}],
                },
                {
                    "name": "eth0",
                    "hardware-address": mac,
                    "ip-addresses": [{"ip-address": vm_ip(vm), "ip-address-type": "ipv4", "prefix": 24}],
                },
            ]
        }
