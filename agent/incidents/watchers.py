"""The watchers: checks LabOps runs itself, through the read tools and the guard, turned into observations.

Each watcher reads the lab as ``alerts.watcher_user`` (a role that may only read), so every check it makes is
in the audit log like anyone else's. A check that fails (PVE down) says so and changes no incident: only a
complete check may resolve what it no longer sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.config import Settings
from core.errors import ToolError
from core.incidents import IncidentStore, Observation
from policies.guard import Caller, Guard

__all__ = ["WATCHERS", "WatchFailed", "Watcher", "watcher_caller"]

Check = Callable[[Guard, Caller, Settings, IncidentStore], list[Observation]]


class WatchFailed(ToolError):
    """A watcher's check could not be made (its tool answered with an error)."""


@dataclass(kw_only=True, frozen=True)
class Watcher:
    """One watcher: its name (a key of ``alerts.watchers``), the incident kind it owns, and its check."""

    name: str
    kind: str
    check: Check


def watcher_caller(settings: Settings, name: str) -> Caller:
    """Who a watcher reads the lab as."""
    return Caller(user=settings.alerts.watcher_user, channel="watcher", request_text=f"watcher {name}")


def _read(guard: Guard, caller: Caller, tool: str, args: dict[str, Any] | None = None) -> Any:
    result = guard.call(tool, args or {}, caller=caller)
    if result.status not in ("ok", "no_data"):
        raise WatchFailed(f"{tool} answered {result.status}: {result.message}")
    return result.data


# --- backups ---------------------------------------------------------------------------------------------------
# Worst first: a snapshot that exists but cannot be restored, then none at all, then old, then unchecked.
_BACKUP_SEVERITY = {"failed": "critical", "missing": "critical", "stale": "warning", "unverified": "warning"}


def _backups(guard: Guard, caller: Caller, settings: Settings, store: IncidentStore) -> list[Observation]:
    data = _read(guard, caller, "backup.check")
    by_vm: dict[int, list[dict[str, Any]]] = {}
    for finding in data.get("findings", []):
        by_vm.setdefault(int(finding["vmid"]), []).append(finding)
    out = []
    for vmid, found in sorted(by_vm.items()):
        problems = [f["problem"] for f in found]
        name = found[0].get("name", "")
        severity = "critical" if any(_BACKUP_SEVERITY[p] == "critical" for p in problems) else "warning"
        out.append(
            Observation(
                fingerprint=f"backup:vm:{vmid}",
                source="watcher",
                kind="backup",
                title=f"VM {vmid} {name}: backup {' and '.join(problems)}",
                severity=severity,
                detail="; ".join(f"{f['problem']}: {f['detail']}" for f in found),
                problems=[f"backup:{p}" for p in problems],
                subject={"vmid": vmid, "name": name, **({"owner": found[0]["owner"]} if found[0].get("owner") else {})},
            )
        )
    return out


# --- nodes -----------------------------------------------------------------------------------------------------
def _nodes(guard: Guard, caller: Caller, settings: Settings, store: IncidentStore) -> list[Observation]:
    rows = _read(guard, caller, "vm.nodes") or []
    # A node is watched once it has been seen online: nodes that never were (ordered, not yet installed) are not
    # incidents. What was seen is kept in the store, so a restart or another replica remembers it.
    seen = set(store.recall("nodes").get("seen_online", []))
    online = {str(r["node"]) for r in rows if r.get("status") == "online"}
    if not online <= seen:
        store.remember("nodes", {"seen_online": sorted(seen | online)})
    out = []
    for row in rows:
        node, status = str(row["node"]), str(row.get("status"))
        if status == "online" or node not in seen | online:
            continue
        out.append(
            Observation(
                fingerprint=f"node:{node}:down",
                source="watcher",
                kind="node",
                title=f"node {node} is {status}",
                severity="critical",
                detail=f"vm.nodes reports node {node} {status}; it was online before",
                problems=["node:offline"],
                subject={"node": node},
            )
        )
    return out


# --- Ray jobs --------------------------------------------------------------------------------------------------
def _ray(guard: Guard, caller: Caller, settings: Settings, store: IncidentStore) -> list[Observation]:
    rows = _read(guard, caller, "ray.list", {"status": "FAILED"}) or []
    since_ms = (time.time() - settings.alerts.ray_failed_window_hours * 3600) * 1000
    out = []
    for row in rows:
        ended = row.get("end_time_ms") or row.get("start_time_ms") or 0
        if ended < since_ms:
            continue
        job = str(row["job_id"])
        what = row.get("template") or row.get("entrypoint") or "job"
        out.append(
            Observation(
                fingerprint=f"ray:job:{job}:failed",
                source="watcher",
                kind="ray",
                title=f"Ray job {job} ({what}) failed",
                severity="warning",
                detail=str(row.get("message") or "the job ended with status FAILED"),
                problems=["ray:failed"],
                subject={"job_id": job, **({"owner": row["owner"]} if row.get("owner") else {})},
            )
        )
    return out


# --- the backup datastore --------------------------------------------------------------------------------------
def _datastore(guard: Guard, caller: Caller, settings: Settings, store: IncidentStore) -> list[Observation]:
    data = _read(guard, caller, "backup.datastore") or {}
    used, limit = float(data.get("used_percent") or 0.0), settings.alerts.datastore_threshold_percent
    if used < limit:
        return []
    name = str(data.get("store", settings.pbs.datastore))
    return [
        Observation(
            fingerprint=f"datastore:{name}:full",
            source="watcher",
            kind="datastore",
            title=f"backup datastore {name} is {used:g}% full",
            severity="critical" if used >= 95 else "warning",
            detail=f"{data.get('used_gib')} of {data.get('total_gib')} GiB used; the limit is {limit:g}%",
            problems=["datastore:full"],
            subject={"store": name},
        )
    ]


WATCHERS: tuple[Watcher, ...] = (
    Watcher(name="backups", kind="backup", check=_backups),
    Watcher(name="nodes", kind="node", check=_nodes),
    Watcher(name="ray", kind="ray", check=_ray),
    Watcher(name="datastore", kind="datastore", check=_datastore),
)
