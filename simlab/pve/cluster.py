"""Version, nodes, cluster resources and status, next free id, backup jobs, storage, and tasks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from simlab import clock
from simlab.httpapi import ApiError, Request, Router
from simlab.pve.hardware import pci_devices
from simlab.pve.model import CEPH, GIB, MIB, ceph_used, node_or_error, running_mib, vm_resource
from simlab.schedule import BACKUP_AT, DAY
from simlab.tasks import task_status
from simlab.validate import Params

__all__ = ["register"]

LOCAL_LVM_TOTAL = 1800 * GIB


def _node_payload(data: dict[str, Any], name: str, now: float) -> dict[str, Any]:
    node = data["nodes"][name]
    out: dict[str, Any] = {
        "id": f"node/{name}",
        "type": "node",
        "node": name,
        "level": "",
        "status": "online" if node["online"] else "offline",
        "maxcpu": node["maxcpu"],
        "maxmem": node["maxmem"],
        "maxdisk": node["rootfs"],
        "ssl_fingerprint": "5A:1D:" + ":".join(f"{(i * 37 + len(name)) % 256:02X}" for i in range(30)),
    }
    if node["online"]:
        busy = sum(vm["cores"] for vm in data["vms"].values() if vm["node"] == name and vm["status"] == "running")
        out.update(
            cpu=round(min(0.95, 0.03 + busy * 0.15 / node["maxcpu"]), 4),
            mem=running_mib(data, name) * MIB + 3 * GIB,
            disk=int(node["rootfs"] * 0.21),
            uptime=int(now - node["boot"]),
        )
    return out


def _storages(data: dict[str, Any], node: str) -> list[dict[str, Any]]:
    local_used = 0
    ceph_total = CEPH["total"]
    used = ceph_used(data)
    pbs = data["pbs"]
    pbs_used = pbs["base_used"] + sum(s["size"] for s in pbs["snapshots"]) // 5
    rows = [
        {
            "storage": "local-lvm",
            "type": "lvmthin",
            "content": "images,rootdir",
            "shared": 0,
            "total": LOCAL_LVM_TOTAL,
            "used": local_used,
        },
        {
            "storage": CEPH["storage"],
            "type": CEPH["type"],
            "content": CEPH["content"],
            "shared": 1,
            "total": ceph_total,
            "used": used,
        },
        {"storage": "pbs01", "type": "pbs", "content": "backup", "shared": 1, "total": pbs["total"], "used": pbs_used},
    ]
    for row in rows:
        row.update(
            active=1, enabled=1, avail=row["total"] - row["used"], used_fraction=round(row["used"] / row["total"], 6)
        )
    return rows


def _not_backed_up(data: dict[str, Any]) -> list[dict[str, Any]]:
    covered: set[int] = set()
    for job in data["backup_jobs"]:
        if int(job.get("all", 0)):
            excluded = {int(v) for v in str(job.get("exclude", "")).split(",") if v}
            covered.update(int(v) for v in data["vms"] if int(v) not in excluded)
        else:
            covered.update(int(v) for v in str(job.get("vmid", "")).split(",") if v)
    return [
        {"vmid": vm["vmid"], "name": vm["name"], "type": "qemu"}
        for vm in sorted(data["vms"].values(), key=lambda v: v["vmid"])
        if vm["vmid"] not in covered and not vm["template"]
    ]


def _next_run(schedule: str, now: float) -> int:
    hour, _, minute = schedule.partition(":")
    try:
        offset = int(hour) * 3600 + int(minute or 0) * 60
    except ValueError:
        offset = BACKUP_AT
    day = int(now // DAY) * DAY
    return day + offset if day + offset > now else day + DAY + offset


def register(router: Router, data: Callable[[], dict[str, Any]]) -> None:
    """Add the cluster, node, storage and task endpoints."""

    @router.route("GET", "/version")
    def version(req: Request) -> Any:
        return dict(data()["pve_version"])

    @router.route("GET", "/nodes")
    def nodes(req: Request) -> Any:
        now = clock.now()
        return [_node_payload(data(), name, now) for name in sorted(data()["nodes"])]

    @router.route("GET", "/nodes/{node}/status")
    def node_status(req: Request) -> Any:
        name = req.params["node"]
        node = node_or_error(data(), name)
        payload = _node_payload(data(), name, clock.now())
        used = payload["mem"]
        return {
            "cpu": payload["cpu"],
            "uptime": payload["uptime"],
            "loadavg": ["0.52", "0.61", "0.58"],
            "wait": 0.0012,
            "memory": {
                "total": node["maxmem"],
                "used": used,
                "free": node["maxmem"] - used,
                "available": node["maxmem"] - used,
            },
            "swap": {"total": 8 * GIB, "used": 0, "free": 8 * GIB},
            "rootfs": {
                "total": node["rootfs"],
                "used": payload["disk"],
                "free": node["rootfs"] - payload["disk"],
                "avail": node["rootfs"] - payload["disk"],
            },
            "cpuinfo": {"model": node["cpu_model"], "cores": node["cores"], "cpus": node["maxcpu"], "sockets": 1},
            "boot-info": {"mode": "efi", "secureboot": 0},
            "current-kernel": {
                "sysname": "Linux",
                "release": "6.8.12-9-pve",
                "machine": "x86_64",
                "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.8.12-9",
            },
            "kversion": "Linux 6.8.12-9-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-9",
            "pveversion": f"pve-manager/{data()['pve_version']['version']}/{data()['pve_version']['repoid']}",
        }

    @router.route("GET", "/nodes/{node}/hardware/pci")
    def node_pci(req: Request) -> Any:
        node = node_or_error(data(), req.params["node"])
        params = Params(req.args(), {"pci-class-blacklist", "verbose"}, req.params)
        blacklist = params.string("pci-class-blacklist", max_length=256) or ""
        if not params.has("pci-class-blacklist"):
            blacklist = "05;06;0b"
        verbose = bool(params.boolean("verbose", default=1))
        params.check()
        # Older saved states have no "gpu" flag: the seed's GPU node is node07.
        return pci_devices({**node, "gpu": node.get("gpu", req.params["node"] == "node07")}, blacklist=blacklist,
                           verbose=verbose)  # fmt: skip

    @router.route("GET", "/nodes/{node}/time")
    def node_time(req: Request) -> Any:
        node_or_error(data(), req.params["node"])
        Params(req.args(), set(), req.params).check()
        now = int(clock.now())
        # The lab's nodes keep UTC (the simulator's guess; the schedule times are UTC too).
        return {"timezone": "UTC", "time": now, "localtime": now}

    @router.route("GET", "/cluster/status")
    def cluster_status(req: Request) -> Any:
        rows: list[dict[str, Any]] = [
            {
                "id": "cluster",
                "type": "cluster",
                "name": data()["cluster"],
                "version": 7,
                "nodes": len(data()["nodes"]),
                "quorate": 1,
            }
        ]
        for i, (name, node) in enumerate(sorted(data()["nodes"].items()), start=1):
            rows.append(
                {
                    "id": f"node/{name}",
                    "type": "node",
                    "name": name,
                    "nodeid": i,
                    "ip": node["ip"],
                    "online": int(node["online"]),
                    "local": int(i == 1),
                    "level": "",
                }
            )
        return rows

    @router.route("GET", "/cluster/resources")
    def resources(req: Request) -> Any:
        p = Params(req.args(), {"type"})
        kind = p.enum("type", {"vm", "storage", "node", "sdn"})
        p.check()
        now = clock.now()
        out: list[dict[str, Any]] = []
        if kind in (None, "vm"):
            out += [vm_resource(vm, now) for vm in sorted(data()["vms"].values(), key=lambda v: v["vmid"])]
        if kind in (None, "node"):
            out += [_node_payload(data(), name, now) for name in sorted(data()["nodes"])]
        if kind in (None, "storage"):
            for name, node in sorted(data()["nodes"].items()):
                for st in _storages(data(), name):
                    out.append(
                        {
                            "id": f"storage/{name}/{st['storage']}",
                            "type": "storage",
                            "storage": st["storage"],
                            "node": name,
                            "plugintype": st["type"],
                            "content": st["content"],
                            "shared": st["shared"],
                            "status": "available" if node["online"] else "unknown",
                            "disk": st["used"],
                            "maxdisk": st["total"],
                        }
                    )
        return out

    @router.route("GET", "/cluster/nextid")
    def nextid(req: Request) -> Any:
        p = Params(req.args(), {"vmid"})
        wanted = p.integer("vmid", minimum=100, maximum=999999999)
        p.check()
        if wanted is not None:
            if str(wanted) in data()["vms"]:
                raise ApiError(400, "Parameter verification failed.", errors={"vmid": f"VM {wanted} already exists"})
            return str(wanted)
        vmid = 100
        while str(vmid) in data()["vms"]:
            vmid += 1
        # PVE serialises the id as a string on the wire.
        return str(vmid)

    @router.route("GET", "/cluster/backup")
    def backup_jobs(req: Request) -> Any:
        now = clock.now()
        jobs = []
        for job in data()["backup_jobs"]:
            item = dict(job)
            if int(item.get("enabled", 1)):
                item["next-run"] = _next_run(item["schedule"], now)
            jobs.append(item)
        return jobs

    @router.route("GET", "/cluster/backup/{id}")
    def backup_job(req: Request) -> Any:
        for job in data()["backup_jobs"]:
            if job["id"] == req.params["id"]:
                return dict(job)
        raise ApiError(500, f"job '{req.params['id']}' does not exist")

    @router.route("GET", "/cluster/backup-info/not-backed-up")
    def not_backed_up(req: Request) -> Any:
        return _not_backed_up(data())

    @router.route("GET", "/nodes/{node}/storage")
    def storage(req: Request) -> Any:
        node_or_error(data(), req.params["node"])
        p = Params(req.args(), {"content", "enabled", "storage", "target", "format"}, req.params)
        p.check()
        rows = _storages(data(), req.params["node"])
        if "content" in p.raw:
            rows = [r for r in rows if p.raw["content"] in r["content"].split(",")]
        if "storage" in p.raw:
            rows = [r for r in rows if r["storage"] == p.raw["storage"]]
        return rows

    @router.route("GET", "/nodes/{node}/storage/{storage}/status")
    def storage_status(req: Request) -> Any:
        node_or_error(data(), req.params["node"])
        for row in _storages(data(), req.params["node"]):
            if row["storage"] == req.params["storage"]:
                return row
        raise ApiError(500, f"storage '{req.params['storage']}' does not exist")

    @router.route("GET", "/nodes/{node}/storage/{storage}/content")
    def storage_content(req: Request) -> Any:
        node_or_error(data(), req.params["node"])
        p = Params(req.args(), {"content", "vmid"}, req.params)
        content = p.enum("content", {"images", "rootdir", "backup", "iso", "vztmpl", "snippets", "import"})
        vmid = p.integer("vmid", minimum=100)
        p.check()
        name = req.params["storage"]
        if name not in {"local-lvm", CEPH["storage"], "pbs01"}:
            raise ApiError(500, f"storage '{name}' does not exist")
        rows: list[dict[str, Any]] = []
        if name == "pbs01" and content in (None, "backup"):
            for snap in data()["pbs"]["snapshots"]:
                if vmid is not None and int(snap["backup-id"]) != vmid:
                    continue
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(snap["backup-time"]))
                row: dict[str, Any] = {
                    "volid": f"pbs01:backup/vm/{snap['backup-id']}/{stamp}",
                    "content": "backup",
                    "format": "pbs-vm",
                    "subtype": "qemu",
                    "vmid": int(snap["backup-id"]),
                    "ctime": snap["backup-time"],
                    "size": snap["size"],
                    "protected": bool(snap["protected"]),
                    "notes": snap.get("comment", ""),
                }
                if snap.get("verification"):
                    row["verification"] = dict(snap["verification"])
                rows.append(row)
        elif name == CEPH["storage"] and content in (None, "images"):
            for vm in sorted(data()["vms"].values(), key=lambda v: v["vmid"]):
                if vmid is None or vm["vmid"] == vmid:
                    prefix = "base" if vm["template"] else "vm"
                    rows.append(
                        {
                            "volid": f"{name}:{prefix}-{vm['vmid']}-disk-0",
                            "content": "images",
                            "format": "raw",
                            "size": vm["disk_gib"] * GIB,
                            "vmid": vm["vmid"],
                        }
                    )
        return rows

    @router.route("GET", "/nodes/{node}/tasks")
    def tasks(req: Request) -> Any:
        node = req.params["node"]
        node_or_error(data(), node)
        p = Params(
            req.args(),
            {
                "source",
                "vmid",
                "typefilter",
                "statusfilter",
                "errors",
                "since",
                "until",
                "start",
                "limit",
                "userfilter",
            },
            req.params,
        )
        source = p.enum("source", {"archive", "active", "all"}, default="archive")
        vmid = p.integer("vmid", minimum=100)
        limit = p.integer("limit", minimum=0, default=50) or 50
        p.check()
        rows = []
        for task in sorted(data()["tasks"].values(), key=lambda t: -t["starttime"]):
            if task["node"] != node or (vmid is not None and task["id"] != str(vmid)):
                continue
            if source == "archive" and task["status"] == "running":
                continue
            if source == "active" and task["status"] != "running":
                continue
            if "typefilter" in p.raw and task["type"] != p.raw["typefilter"]:
                continue
            item = task_status(task)
            if task["status"] == "stopped":
                item["endtime"] = task["endtime"]
                item["status"] = task["exitstatus"]
            else:
                item.pop("status")
            rows.append(item)
        return rows[:limit]

    def find_task(req: Request) -> dict[str, Any]:
        node_or_error(data(), req.params["node"])
        task = data()["tasks"].get(req.params["upid"])
        if task is None or task["node"] != req.params["node"]:
            if not req.params["upid"].startswith("UPID:"):
                raise ApiError(400, "Parameter verification failed.", errors={"upid": "unable to parse worker upid"})
            raise ApiError(500, f"no such task '{req.params['upid']}'")
        return task

    @router.route("GET", "/nodes/{node}/tasks/{upid}/status")
    def task_status_route(req: Request) -> Any:
        return task_status(find_task(req))

    @router.route("GET", "/nodes/{node}/tasks/{upid}/log")
    def task_log(req: Request) -> Any:
        task = find_task(req)
        p = Params(req.args(), {"start", "limit", "download"}, req.params)
        start = p.integer("start", minimum=0, default=0) or 0
        limit = p.integer("limit", minimum=0, default=50) or 50
        p.check()
        lines = task["log"] or ["no content"]
        return [{"n": i + 1, "t": line} for i, line in enumerate(lines)][start : start + limit]

    @router.route("DELETE", "/nodes/{node}/tasks/{upid}")
    def task_stop(req: Request) -> Any:
        task = find_task(req)
        if task["status"] == "running":
            task["status"] = "stopped"
            task["exitstatus"] = "unexpected status"
            task["endtime"] = int(clock.now())
            task["log"].append("received interrupt")
            task["log"].append("TASK ERROR: interrupted by signal")
        return None
