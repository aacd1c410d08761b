"""PBS ``/api2/json``: nodes, datastores, usage, groups, snapshots, garbage collection, verification, tasks.

PBS is a Rust server: errors come back as the plain message text with the status code (400 for
anything that is not a specific HTTP error, 404 for an unknown path), not as PVE's JSON envelope, and
UPIDs carry an extra task-id field. Parameters are checked against the schema of each endpoint before
the handler runs; a bad one answers ``parameter verification errors`` with one line per parameter.
"""

from __future__ import annotations

import json
import re
from typing import Any

from simlab import clock
from simlab.auth import Authenticator
from simlab.httpapi import ApiError, HttpApp, Request, Response, Router
from simlab.pbs import jobs
from simlab.schedule import DAY, run_schedule
from simlab.state import LabState

__all__ = ["PbsApp"]

PREFIX = "/api2/json"
GC_AT = 2 * 3600  # the datastore's daily garbage collection at 02:00
GIB = 1024**3

# Schemas of the parameters the simulated endpoints take (proxmox-backup pbs-api-types: SAFE_ID for
# datastore names, 3..32 characters; BACKUP_ID; the node name; the UPID).
_SAFE_ID = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9._\-]*)$")
_BACKUP_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._\-]*$")
_NODE = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)$")
_UPID = re.compile(
    r"^UPID:[^:\s]+:[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8,9}:[0-9A-Fa-f]{8,}:[0-9A-Fa-f]{8}:[^:\s]+:[^:\s]*:[^:\s]+:$"
)


def _check_string(value: str, *, pattern: re.Pattern[str], min_len: int = 1, max_len: int = 256) -> str | None:
    if len(value) < min_len:
        return f"value must be at least {min_len} characters long"
    if len(value) > max_len:
        return f"value may only be {max_len} characters long"
    if not pattern.match(value):
        return "value does not match the regex pattern"
    return None


_PARAM_SCHEMAS: dict[str, dict[str, Any]] = {
    "store": {"pattern": _SAFE_ID, "min_len": 3, "max_len": 32},
    "node": {"pattern": _NODE},
    "backup-id": {"pattern": _BACKUP_ID},
    "upid": {"pattern": _UPID, "max_len": 256},
}


class _Params:
    """One request's parameters checked against an endpoint's declared schema (PBS wording)."""

    def __init__(self, req: Request, allowed: dict[str, str]) -> None:
        self.values: dict[str, Any] = {}
        errors: list[str] = []
        raw = {**req.args(), **req.params}
        for name, value in raw.items():
            kind = allowed.get(name)
            if kind is None:
                errors.append(f"parameter '{name}': schema does not allow additional properties.")
                continue
            problem, parsed = self._check(name, kind, value)
            if problem:
                errors.append(f"parameter '{name}': {problem}")
            else:
                self.values[name] = parsed
        if errors:
            raise ApiError(400, "parameter verification errors\n\n" + "\n".join(errors) + "\n")

    @staticmethod
    def _check(name: str, kind: str, value: str) -> tuple[str | None, Any]:
        if kind == "bool":
            lowered = value.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return None, True
            if lowered in {"0", "false", "no", "off"}:
                return None, False
            return f"unable to parse boolean '{value}'", None
        if kind in {"int", "uint"}:
            if not re.fullmatch(r"[+-]?\d+", value.strip()):
                return f"value '{value}' is not a valid integer", None
            number = int(value)
            if kind == "uint" and number < 0:
                return f"value must have a minimum value of 0 (got {number})", None
            return None, number
        if kind.startswith("enum:"):
            options = kind[5:].split("|")
            return (None, value) if value in options else (f"value '{value}' is not defined in the enumeration.", None)
        schema = _PARAM_SCHEMAS.get(name, {"pattern": re.compile(r"^[^\x00-\x1f]*$")})
        return _check_string(value, **schema), value


class PbsApp(HttpApp):
    """Proxmox Backup Server over the shared lab state."""

    name = "proxmox-backup-api"

    def __init__(
        self, state: LabState, secrets: dict[str, Any], *, auth_delay: float = 3.0, task_speed: float = 1.0
    ) -> None:
        self.state = state
        self.task_speed = task_speed
        self.auth = Authenticator("PBS", secrets["pbs"], fail_delay=auth_delay)
        self.router = Router()
        r = self.router
        r.add("POST", "/access/ticket", lambda req: self.auth.login(req))
        r.add("GET", "/version", lambda req: dict(self.data["pbs_version"]))
        r.add("GET", "/nodes", lambda req: [{"node": jobs.NODE}])
        r.add("GET", "/nodes/{node}/time", self._time)
        r.add("GET", "/nodes/{node}/tasks", self._tasks)
        r.add("GET", "/nodes/{node}/tasks/{upid}/status", self._task_status)
        r.add("GET", "/nodes/{node}/tasks/{upid}/log", self._task_log)
        r.add("GET", "/admin/datastore", self._datastores)
        r.add("GET", "/admin/datastore/{store}/status", self._status)
        r.add("GET", "/status/datastore-usage", self._usage)
        r.add("GET", "/admin/datastore/{store}/groups", self._groups)
        r.add("GET", "/admin/datastore/{store}/snapshots", self._snapshots)
        r.add("GET", "/admin/datastore/{store}/gc", self._gc_status)
        r.add("POST", "/admin/datastore/{store}/gc", self._start_gc)
        r.add("POST", "/admin/datastore/{store}/verify", self._start_verify)
        r.add("GET", "/admin/gc", self._gc_jobs)
        r.add("GET", "/admin/verify", self._verify_jobs)
        r.add("GET", "/config/verify", self._verify_configs)

    @property
    def data(self) -> dict[str, Any]:
        """The shared state document."""
        return self.state.data

    @property
    def store(self) -> str:
        """The one datastore's name."""
        return str(self.data["pbs"]["store"])

    # --- helpers ---------------------------------------------------------------------------------
    def _store(self, req: Request, allowed: dict[str, str] | None = None) -> _Params:
        p = _Params(req, {"store": "str", **(allowed or {})})
        if p.values["store"] != self.store:
            raise ApiError(400, f"datastore '{p.values['store']}' does not exist")
        return p

    def _node(self, req: Request, allowed: dict[str, str] | None = None) -> _Params:
        p = _Params(req, {"node": "str", **(allowed or {})})
        # PBS answers for its own host name and for "localhost".
        if p.values["node"] not in {jobs.NODE, "localhost"}:
            raise ApiError(400, f"no such node '{p.values['node']}'")
        return p

    def _used(self) -> int:
        pbs = self.data["pbs"]
        # Deduplication: consecutive snapshots of a VM share most chunks (about 5:1 in this lab).
        return int(pbs["base_used"] + sum(s["size"] for s in pbs["snapshots"]) // 5)

    def _last_scheduled_gc(self) -> int:
        last = int(clock.now() // DAY) * DAY + GC_AT
        return last - DAY if last > clock.now() else last

    def _gc(self, store: str) -> dict[str, Any]:
        snaps = self.data["pbs"]["snapshots"]
        used = self._used()
        last = max(self._last_scheduled_gc(), int(self.data["pbs"]["gc"].get("last") or 0))
        return {
            "store": store,
            "upid": jobs.upid_for("garbage_collection", store, last),
            "index-file-count": len(snaps) * 2,
            "index-data-bytes": sum(s["size"] for s in snaps),
            "disk-bytes": used,
            "disk-chunks": used // (4 * 1024**2),
            "removed-bytes": 3 * GIB,
            "removed-chunks": 790,
            "pending-bytes": 0,
            "pending-chunks": 0,
            "removed-bad": 0,
            "still-bad": 0,
        }

    def _gc_job(self) -> dict[str, Any]:
        last = self._last_scheduled_gc()
        return {
            "schedule": "daily",
            "next-run": last + DAY,
            "last-run-endtime": last + 420,
            "last-run-state": "ok",
            "duration": 420,
        }

    # --- nodes and tasks -------------------------------------------------------------------------
    def _time(self, req: Request) -> Any:
        self._node(req)
        now = int(clock.now())
        # The lab's servers run on UTC (a guess shared with the simulated schedule).
        return {"timezone": "UTC", "time": now, "localtime": now}

    def _tasks(self, req: Request) -> Any:
        p = self._node(req, {"start": "uint", "limit": "uint", "store": "str", "running": "bool", "errors": "bool"})
        rows = []
        for task in sorted(self.data["pbs"].get("tasks", {}).values(), key=lambda t: -t["starttime"]):
            if p.values.get("running") and task["status"] != "running":
                continue
            if p.values.get("errors") and task.get("exitstatus", "OK") == "OK":
                continue
            if p.values.get("store") and task["id"] != jobs.worker_id(p.values["store"]):
                continue
            item = {k: task[k] for k in ("upid", "node", "pid", "pstart", "starttime", "user")}
            item.update(worker_type=task["type"], worker_id=task["id"])
            if task["status"] == "stopped":
                item.update(endtime=task["endtime"], status=task["exitstatus"])
            rows.append(item)
        start = int(p.values.get("start", 0))
        return rows[start : start + int(p.values.get("limit", 50))]

    def _find_task(self, req: Request, allowed: dict[str, str] | None = None) -> tuple[_Params, str]:
        p = self._node(req, {"upid": "str", **(allowed or {})})
        upid = p.values["upid"]
        if jobs.task_status(self.data, upid) is None and self._scheduled(upid) is None:
            raise ApiError(400, f"task '{upid}' does not exist")
        return p, upid

    def _scheduled(self, upid: str) -> dict[str, Any] | None:
        """The finished task of a scheduled run the server reports (the verify job's, the daily GC's), or None.

        Their UPIDs appear in ``/admin/verify`` (``last-run-upid``) and in the GC status; PBS answers their
        status and log like any other finished task.
        """
        last = self.data["pbs"]["verify_job"].get("last-run") or {}
        if upid == last.get("upid"):
            failed = any(
                (s.get("verification") or {}).get("upid") == upid
                and (s.get("verification") or {}).get("state") == "failed"
                for s in self.data["pbs"]["snapshots"]
            )
            return jobs.finished_task(upid, exitstatus="verification failed" if failed else "OK",
                                      log=["scheduled verification job verify-daily"])  # fmt: skip
        gc = self._gc(self.store)
        if upid == gc["upid"]:
            return jobs.finished_task(upid, exitstatus="OK", log=["scheduled garbage collection"])
        return None

    def _task_status(self, req: Request) -> Any:
        _p, upid = self._find_task(req)
        found = jobs.task_status(self.data, upid)
        scheduled = self._scheduled(upid)
        return found if found is not None else jobs.status_payload(scheduled) if scheduled is not None else None

    def _task_log(self, req: Request) -> Any:
        p, upid = self._find_task(req, {"start": "uint", "limit": "uint", "test-status": "bool", "download": "bool"})
        scheduled = self._scheduled(upid)
        lines = jobs.task_log(self.data, upid) or (scheduled or {}).get("log") or []
        start, limit = int(p.values.get("start", 0)), int(p.values.get("limit", 50))
        return [{"n": i + 1, "t": line} for i, line in enumerate(lines)][start : start + limit]

    # --- datastores ------------------------------------------------------------------------------
    def _datastores(self, req: Request) -> Any:
        _Params(req, {})
        # Current PBS lists the backend and mount state of each datastore (removable-datastore support).
        return [
            {
                "store": self.store,
                "comment": "pbs01 NVMe, all lab VMs",
                "backend-type": "filesystem",
                "mount-status": "nonremovable",
            }
        ]

    def _status(self, req: Request) -> Any:
        store = self._store(req, {"verbose": "bool"}).values["store"]
        total = self.data["pbs"]["total"]
        used = self._used()
        groups = {s["backup-id"] for s in self.data["pbs"]["snapshots"]}
        return {
            "total": total,
            "used": used,
            "avail": total - used,
            "gc-status": self._gc(store),
            "counts": {"vm": {"groups": len(groups), "snapshots": len(self.data["pbs"]["snapshots"])}},
            "backend-type": "filesystem",
        }

    def _usage(self, req: Request) -> Any:
        _Params(req, {})
        total = self.data["pbs"]["total"]
        used = self._used()
        now = int(clock.now())
        return [
            {
                "store": self.store,
                "total": total,
                "used": used,
                "avail": total - used,
                "history": [round((used - i * 2 * GIB) / total, 6) for i in range(30, 0, -1)],
                "history-start": now - 30 * DAY,
                "history-delta": DAY,
                "estimated-full-date": now + int((total - used) / (2 * GIB)) * DAY,
                "gc-status": self._gc(self.store),
                "mount-status": "nonremovable",
                "backend-type": "filesystem",
            }
        ]

    def _filtered(self, req: Request) -> list[dict[str, Any]]:
        p = self._store(req, {"backup-type": "enum:vm|ct|host", "backup-id": "str", "ns": "str"})
        kind, bid = p.values.get("backup-type"), p.values.get("backup-id")
        return [
            s
            for s in self.data["pbs"]["snapshots"]
            if kind in (None, s["backup-type"]) and bid in (None, s["backup-id"])
        ]

    def _snapshots(self, req: Request) -> Any:
        return [json.loads(json.dumps(s)) for s in self._filtered(req)]

    def _groups(self, req: Request) -> Any:
        groups: dict[str, list[dict[str, Any]]] = {}
        for snap in self._filtered(req):
            groups.setdefault(snap["backup-id"], []).append(snap)
        return [
            {
                "backup-type": "vm",
                "backup-id": gid,
                "last-backup": max(s["backup-time"] for s in snaps),
                "backup-count": len(snaps),
                "owner": "root@pam",
                "comment": snaps[-1].get("comment", ""),
                "files": [f["filename"] for f in snaps[-1]["files"]],
            }
            for gid, snaps in sorted(groups.items(), key=lambda kv: int(kv[0]))
        ]

    def _gc_status(self, req: Request) -> Any:
        store = self._store(req).values["store"]
        return {**self._gc(store), **self._gc_job()}

    def _gc_jobs(self, req: Request) -> Any:
        p = _Params(req, {"store": "str"})
        if p.values.get("store") not in (None, self.store):
            raise ApiError(400, f"datastore '{p.values['store']}' does not exist")
        return [{**self._gc(self.store), **self._gc_job()}]

    def _start_gc(self, req: Request) -> Any:
        store = self._store(req).values["store"]
        return jobs.new_task(
            self.data,
            kind="garbage_collection",
            wid=store,
            authid=req.auth.authid,
            params={"store": store},
            speed=self.task_speed,
        )

    def _start_verify(self, req: Request) -> Any:
        p = self._store(
            req,
            {
                "ignore-verified": "bool",
                "outdated-after": "uint",
                "backup-type": "enum:vm|ct|host",
                "backup-id": "str",
                "backup-time": "int",
                "ns": "str",
                "max-depth": "uint",
            },
        )
        store = p.values["store"]
        return jobs.new_task(
            self.data,
            kind="verify",
            wid=jobs.worker_id(store),
            authid=req.auth.authid,
            params={"ignore-verified": True, **p.values},
            speed=self.task_speed,
        )

    # --- verify jobs -----------------------------------------------------------------------------
    def _verify_config(self) -> dict[str, Any]:
        job = self.data["pbs"]["verify_job"]
        return {
            "id": job["id"],
            "store": job["store"],
            "schedule": job["schedule"],
            "ignore-verified": job["ignore-verified"],
            "outdated-after": 30,
            "comment": "verify new snapshots every day at 11:00",
        }

    def _verify_configs(self, req: Request) -> Any:
        _Params(req, {})
        return [self._verify_config()]

    def _verify_jobs(self, req: Request) -> Any:
        p = _Params(req, {"store": "str"})
        if p.values.get("store") not in (None, self.store):
            raise ApiError(400, f"datastore '{p.values['store']}' does not exist")
        item = self._verify_config()
        last = self.data["pbs"]["verify_job"].get("last-run")
        now = clock.now()
        nxt = int(now // DAY) * DAY + 11 * 3600
        item["next-run"] = nxt if nxt > now else nxt + DAY
        if last:
            failed = any(
                (s.get("verification") or {}).get("upid") == last["upid"]
                and (s.get("verification") or {}).get("state") == "failed"
                for s in self.data["pbs"]["snapshots"]
            )
            item.update(
                {
                    "last-run-upid": last["upid"],
                    "last-run-endtime": last["time"] + 600,
                    "last-run-state": "verification failed" if failed else "ok",
                    "duration": 600,
                }
            )
        return [item]

    def handle(self, request: Request) -> Response:
        """Answer one request with PBS's envelope and error conventions."""
        path = request.path[len(PREFIX) :] if request.path.startswith(PREFIX + "/") else None
        try:
            found = self.router.match(request.method, (path or "").rstrip("/")) if path else None
            if found is None:
                raise ApiError(404, f"Path '{request.path}' not found.")
            handler, params = found
            request.params = params
            if path != "/access/ticket":
                request.auth = self.auth.authenticate(request)
            with self.state.lock:
                changed = run_schedule(self.data, clock.now())
                changed = jobs.finish_due(self.data) or changed
                try:
                    result = handler(request)
                finally:
                    if changed or request.method != "GET":
                        self.state.save()
        except ApiError as exc:
            # proxmox-rest-server: the body is the plain message, the reason phrase the standard one.
            return Response(status=exc.status, body=exc.message.encode())
        return Response(body=json.dumps({"data": result}).encode())
