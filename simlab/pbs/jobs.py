"""PBS worker tasks: manual garbage collection and verification, followed by UPID like the real server.

PBS UPIDs carry a task-id field PVE's lack (``UPID:node:pid:pstart:task_id:starttime:type:id:authid:``)
and escape ``:`` and ``-`` in the worker id like systemd does. Tasks finish lazily, as in the PVE
simulator: before each request every task whose time has come is finished and its effect applied.
"""

from __future__ import annotations

from typing import Any

from simlab import clock
from simlab.schedule import verification_result

__all__ = [
    "NODE",
    "finish_due",
    "finished_task",
    "new_task",
    "status_payload",
    "task_log",
    "task_status",
    "upid_for",
    "worker_id",
]

NODE = "pbs01"
_DURATION = {"garbage_collection": 3.0, "verify": 2.0}


def worker_id(text: str) -> str:
    r"""Escape a worker id as PBS does (``:`` → ``\x3a``, ``-`` → ``\x2d``)."""
    return text.replace(":", "\\x3a").replace("-", "\\x2d")


def upid_for(kind: str, wid: str, starttime: int, *, task_id: int = 0, authid: str = "root@pam") -> str:
    """A PBS UPID string."""
    return f"UPID:{NODE}:000003E8:00000A2C:{task_id:08X}:{starttime:08X}:{kind}:{wid}:{authid}:"


def _tasks(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tasks: dict[str, dict[str, Any]] = data["pbs"].setdefault("tasks", {})
    return tasks


def new_task(data: dict[str, Any], *, kind: str, wid: str, authid: str, params: dict[str, Any], speed: float) -> str:
    """Register a running task; returns its UPID."""
    tasks = _tasks(data)
    now = clock.now()
    upid = upid_for(kind, wid, int(now), task_id=len(tasks) + 1, authid=authid)
    tasks[upid] = {
        "upid": upid,
        "node": NODE,
        "pid": 1000,
        "pstart": 2604,
        "starttime": int(now),
        "type": kind,
        "id": wid,
        "user": authid,
        "due": now + _DURATION[kind] / speed,
        "params": params,
        "status": "running",
        "log": [f"starting {kind.replace('_', ' ')} on store '{params.get('store', '')}'"],
    }
    if len(tasks) > 200:
        for old in sorted(tasks, key=lambda u: tasks[u]["starttime"])[:-200]:
            if tasks[old]["status"] == "stopped":
                del tasks[old]
    return upid


def _verify(data: dict[str, Any], task: dict[str, Any]) -> tuple[str | None, list[str]]:
    p = task["params"]
    lines, failed = [], 0
    for snap in data["pbs"]["snapshots"]:
        if snap["backup-time"] > task["starttime"]:
            continue
        if p.get("backup-id") and snap["backup-id"] != p["backup-id"]:
            continue
        if p.get("backup-time") and snap["backup-time"] != int(p["backup-time"]):
            continue
        if p.get("ignore-verified", True) and snap.get("verification"):
            continue
        state = verification_result(data, snap)
        snap["verification"] = {"state": state, "upid": task["upid"]}
        lines.append(f"verify {p.get('store')}:vm/{snap['backup-id']}/{snap['backup-time']} - {state}")
        if state == "failed":
            lines.append(f"  chunk verification failed: vm/{snap['backup-id']} drive-scsi0.img.fidx: bad chunk")
            failed += 1
    if failed:
        return f"verification failed on {failed} snapshot(s)", lines
    return None, lines or ["nothing to verify"]


def _gc(data: dict[str, Any], task: dict[str, Any]) -> tuple[str | None, list[str]]:
    data["pbs"]["gc"]["last"] = task["starttime"]
    return None, ["Start GC phase1 (mark used chunks)", "Start GC phase2 (sweep unused chunks)", "Removed garbage: 0 B"]


_EFFECTS = {"verify": _verify, "garbage_collection": _gc}


def finish_due(data: dict[str, Any]) -> bool:
    """Finish every task whose time has come; True if any did."""
    now = clock.now()
    changed = False
    for task in _tasks(data).values():
        if task["status"] != "running" or task["due"] > now:
            continue
        error, lines = _EFFECTS[task["type"]](data, task)
        task["log"].extend(lines)
        task["status"] = "stopped"
        task["endtime"] = int(task["due"])
        # PBS writes "TASK OK" / "TASK ERROR: <msg>" as the last log line; exitstatus is "OK" or the message.
        task["exitstatus"] = "OK" if error is None else error
        task["log"].append("TASK OK" if error is None else f"TASK ERROR: {error}")
        changed = True
    return changed


def finished_task(upid: str, *, exitstatus: str, log: list[str]) -> dict[str, Any]:
    """A finished task read back from its UPID (a scheduled run the server did not start through this API)."""
    parts = upid.split(":")
    return {
        "upid": upid,
        "node": parts[1],
        "pid": int(parts[2], 16),
        "pstart": int(parts[3], 16),
        "starttime": int(parts[5], 16),
        "type": parts[6],
        "id": parts[7],
        "user": parts[8],
        "status": "stopped",
        "exitstatus": exitstatus,
        "log": [*log, "TASK OK" if exitstatus == "OK" else f"TASK ERROR: {exitstatus}"],
    }


def status_payload(task: dict[str, Any]) -> dict[str, Any]:
    """A task as ``/nodes/{node}/tasks/{upid}/status`` shows it."""
    out = {k: task[k] for k in ("upid", "node", "pid", "pstart", "starttime", "type", "id", "user", "status")}
    if task["status"] == "stopped":
        out["exitstatus"] = task["exitstatus"]
    return out


def task_status(data: dict[str, Any], upid: str) -> dict[str, Any] | None:
    """``/nodes/{node}/tasks/{upid}/status``, or None for an unknown task."""
    task = _tasks(data).get(upid)
    return None if task is None else status_payload(task)


def task_log(data: dict[str, Any], upid: str) -> list[str] | None:
    """The task's log lines, or None for an unknown task."""
    task = _tasks(data).get(upid)
    return None if task is None else list(task["log"])
