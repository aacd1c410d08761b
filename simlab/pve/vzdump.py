"""``POST /nodes/{node}/vzdump``: an on-demand backup of guests on one node to a backup storage.

The task locks the VM (``lock: backup``) while it runs, as PVE does; when it finishes, a snapshot appears in
the PBS datastore (PVE and PBS share the lab's state) and waits for the 11:00 verify job like any other.

Simulator's guess, said here so nobody mistakes it for PBS documentation: a backup made by hand re-sends
every chunk, so it replaces the bad chunk behind the seeded verification failure (VM 132); the daily job's
incremental runs keep referencing it, so the lab's documented problems persist until someone acts. Real
PBS re-uploads chunks a failed verification marked bad on the next backup of any kind.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from simlab import clock
from simlab.auth import Principal
from simlab.httpapi import ApiError, Request, Router
from simlab.pve.model import node_or_error
from simlab.schedule import backup_size, prune, snapshot_record
from simlab.tasks import Effect, new_task
from simlab.validate import Params

__all__ = ["EFFECTS", "register"]

# vzdump's parameters (pve-docs apidata.js, 9.1.3); the ones the simulator acts on are read below.
_ALLOWED = {
    "vmid", "all", "exclude", "exclude-path", "storage", "mode", "compress", "notes-template", "protected", "remove",
    "mailto", "mailnotification", "notification-mode", "bwlimit", "ionice", "lockwait", "stop", "stopwait", "zstd",
    "pigz", "quiet", "fleecing", "performance", "prune-backups", "dumpdir", "tmpdir", "script", "pool", "job-id",
    "maxfiles", "pbs-change-detection-mode", "stdexcludes", "stdout",
}  # fmt: skip
_BACKUP_STORAGES = {"pbs01"}
_VMID_LIST = re.compile(r"^\d+(,\d+)*$")
_SECONDS_PER_GIB = 0.05  # task time at speed 1: a 32 GiB disk in under two seconds (kept short)


def _effect_vzdump(data: dict[str, Any], task: dict[str, Any]) -> tuple[str | None, list[str]]:
    vmid = task["id"]
    vm = data["vms"].get(vmid)
    if vm is None:
        return f"unable to find VM {vmid}", []
    vm["lock"] = None
    when = int(task["due"])
    size = backup_size(data, vm, when)
    data["pbs"]["snapshots"].append(snapshot_record(vm, when, size))
    prune(data)
    # The guess in the module docstring: a manual backup writes the bad chunk afresh.
    data["internal"]["verify_fails_from"].pop(vmid, None)
    stamp = clock_text(when)
    return None, [
        f"INFO: creating Proxmox Backup Server archive 'vm/{vmid}/{stamp}'",
        f"INFO: transferred {size / 1024**3:.2f} GiB in {max(1, int(task['due'] - task['starttime']))} seconds",
        f"INFO: Finished Backup of VM {vmid} ({task['params'].get('mode', 'snapshot')} mode)",
        "INFO: Backup job finished successfully",
    ]


def clock_text(epoch: int) -> str:
    """PBS's snapshot time as it appears in archive names (UTC, ``%FT%TZ``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


EFFECTS: dict[str, Effect] = {"vzdump": _effect_vzdump}


def register(router: Router, data: Callable[[], dict[str, Any]], speed: Callable[[], float]) -> None:
    """Add ``POST /nodes/{node}/vzdump`` to ``router``."""

    @router.route("POST", "/nodes/{node}/vzdump")
    def vzdump(req: Request) -> Any:
        node = req.params["node"]
        node_or_error(data(), node)
        p = Params(req.args(), _ALLOWED, req.params)
        vmids = p.string("vmid", pattern=_VMID_LIST, what="value does not look like a valid VMID list")
        if p.boolean("all"):
            p.errors["all"] = "backing up all guests is not simulated: give vmid"
        storage = p.string("storage")
        mode = p.enum("mode", {"snapshot", "suspend", "stop"}, default="snapshot")
        p.enum("compress", {"0", "1", "gzip", "lzo", "zstd"})
        p.boolean("protected")
        p.boolean("remove")
        p.check()
        if not vmids:
            raise ApiError(400, "Parameter verification failed.", errors={"vmid": "property is missing"})
        if storage is None or storage not in _BACKUP_STORAGES:
            # Guess: a local directory storage works on real PVE; the lab backs up only to pbs01.
            raise ApiError(500, f"storage '{storage or 'local'}' does not support backups in this lab (use pbs01)")
        ids = vmids.split(",")
        if len(ids) != 1:
            raise ApiError(500, "the simulator backs up one guest per task: call vzdump once per VM")
        vm = data()["vms"].get(ids[0])
        if vm is None:
            raise ApiError(500, f"unable to find VM {ids[0]}")
        if vm["node"] != node:
            # PVE skips guests of other nodes ("skip external VMs"); the simulator refuses instead (a guess).
            raise ApiError(500, f"VM {ids[0]} is on node '{vm['node']}', not on '{node}': call vzdump on its node")
        if vm["template"]:
            raise ApiError(500, f"VM {ids[0]} is a template: back up a VM")
        if vm.get("lock"):
            raise ApiError(500, f"VM is locked ({vm['lock']})")
        vm["lock"] = "backup"
        principal: Principal = req.auth
        duration = max(1.0, vm["disk_gib"] * _SECONDS_PER_GIB) / speed()
        return new_task(
            data(),
            node=node,
            kind="vzdump",
            obj_id=ids[0],
            user=principal.authid,
            duration=duration,
            effect="vzdump",
            params={"mode": mode, "storage": storage},
            first_log=[f"INFO: starting new backup job: vzdump {ids[0]} --storage {storage} --mode {mode}",
                       f"INFO: Starting Backup of VM {ids[0]} (qemu)",
                       f"INFO: Backup started at {clock_text(int(clock.now()))}"],
        )  # fmt: skip
