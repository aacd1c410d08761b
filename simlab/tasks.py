"""PVE worker tasks: a UPID, a duration, and an effect applied when the task finishes.

Tasks finish lazily: before each request the simulator finishes every task whose time has come and
applies its effect (clone, start, ...). The effect decides success or failure at that moment, as a
real worker does, so a clone fails if the node filled up while it was running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simlab import clock

__all__ = ["Effect", "finish_due", "new_task", "task_status"]

# (state data, task) -> (error message or None, log lines)
Effect = Callable[[dict[str, Any], dict[str, Any]], tuple[str | None, list[str]]]


def new_task(
    data: dict[str, Any],
    *,
    node: str,
    kind: str,
    obj_id: str,
    user: str,
    duration: float,
    effect: str,
    params: dict[str, Any] | None = None,
    first_log: list[str] | None = None,
) -> str:
    """Register a running task; returns its UPID (format of pve-common ``upid_encode``)."""
    data["pid"] += 1
    pid = data["pid"]
    now = clock.now()
    pstart = int((now - data["nodes"][node]["boot"]) * 100) & 0xFFFFFFFF
    upid = f"UPID:{node}:{pid:08X}:{pstart:08X}:{int(now):08X}:{kind}:{obj_id}:{user}:"
    data["tasks"][upid] = {
        "upid": upid,
        "node": node,
        "pid": pid,
        "pstart": pstart,
        "starttime": int(now),
        "type": kind,
        "id": obj_id,
        "user": user,
        "due": now + duration,
        "effect": effect,
        "params": params or {},
        "status": "running",
        "log": list(first_log or []),
    }
    _trim(data)
    return upid


def _trim(data: dict[str, Any], keep: int = 500) -> None:
    tasks = data["tasks"]
    if len(tasks) > keep:
        for upid in sorted(tasks, key=lambda u: tasks[u]["starttime"])[: len(tasks) - keep]:
            if tasks[upid]["status"] == "stopped":
                del tasks[upid]


def finish_due(data: dict[str, Any], effects: dict[str, Effect], now: float | None = None) -> bool:
    """Finish every running task whose time has come; True if any finished."""
    now = clock.now() if now is None else now
    changed = False
    for task in sorted(data["tasks"].values(), key=lambda t: t["due"]):
        if task["status"] != "running" or task["due"] > now:
            continue
        error, lines = effects[task["effect"]](data, task)
        task["log"].extend(lines)
        task["status"] = "stopped"
        task["endtime"] = int(task["due"])
        if error is None:
            task["exitstatus"] = "OK"
            task["log"].append("TASK OK")
        else:
            task["exitstatus"] = error
            task["log"].append(f"TASK ERROR: {error}")
        changed = True
    return changed


def task_status(task: dict[str, Any]) -> dict[str, Any]:
    """The ``/tasks/{upid}/status`` payload."""
    keys = ("upid", "node", "pid", "pstart", "starttime", "type", "id", "user", "status")
    out = {k: task[k] for k in keys}
    if task["status"] == "stopped":
        out["exitstatus"] = task["exitstatus"]
    return out
