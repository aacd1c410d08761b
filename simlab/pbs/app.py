"""PBS ``/api2/json``: datastores, usage, groups, snapshots, garbage collection and verify jobs.

PBS is a Rust server: errors come back as the plain message text with the status code (400 for
anything that is not a specific HTTP error), not as PVE's JSON envelope, and UPIDs carry an extra
task-id field.
"""

from __future__ import annotations

import json
import time
from typing import Any

from simlab.auth import Authenticator
from simlab.httpapi import ApiError, HttpApp, Request, Response, Router
from simlab.schedule import DAY, run_schedule
from simlab.state import LabState
from simlab.validate import Params

__all__ = ["PbsApp"]

PREFIX = "/api2/json"
GC_AT = 2 * 3600  # the datastore's daily garbage collection at 02:00
GIB = 1024**3


def _upid(kind: str, worker_id: str, t: int) -> str:
    return f"UPID:pbs01:000003E8:00000A2C:{t & 0xFFFF:08X}:{t:08X}:{kind}:{worker_id}:root@pam:"


class PbsApp(HttpApp):
    """Proxmox Backup Server over the shared lab state."""

    name = "proxmox-backup-api"

    def __init__(self, state: LabState, secrets: dict[str, Any], *, auth_delay: float = 3.0) -> None:
        self.state = state
        self.auth = Authenticator("PBS", secrets["pbs"], fail_delay=auth_delay)
        self.router = Router()
        r = self.router
        r.add("POST", "/access/ticket", lambda req: self.auth.login(req))
        r.add("GET", "/version", lambda req: dict(self.data["pbs_version"]))
        r.add("GET", "/admin/datastore", lambda req: [{"store": self.store, "comment": "pbs01 NVMe, all lab VMs"}])
        r.add("GET", "/admin/datastore/{store}/status", self._status)
        r.add("GET", "/status/datastore-usage", self._usage)
        r.add("GET", "/admin/datastore/{store}/groups", self._groups)
        r.add("GET", "/admin/datastore/{store}/snapshots", self._snapshots)
        r.add("GET", "/admin/datastore/{store}/gc", lambda req: self._gc(self._store(req)))
        r.add("GET", "/admin/gc", lambda req: [{"store": self.store, **self._gc(self.store), **self._gc_job()}])
        r.add("GET", "/admin/verify", self._verify_jobs)
        r.add("GET", "/config/verify", lambda req: [self._verify_config()])

    @property
    def data(self) -> dict[str, Any]:
        """The shared state document."""
        return self.state.data

    @property
    def store(self) -> str:
        """The one datastore's name."""
        return str(self.data["pbs"]["store"])

    def _store(self, req: Request) -> str:
        if req.params["store"] != self.store:
            raise ApiError(400, f"datastore '{req.params['store']}' does not exist")
        return self.store

    def _used(self) -> int:
        pbs = self.data["pbs"]
        # Deduplication: consecutive snapshots of a VM share most chunks (about 5:1 in this lab).
        return int(pbs["base_used"] + sum(s["size"] for s in pbs["snapshots"]) // 5)

    def _gc(self, store: str) -> dict[str, Any]:
        snaps = self.data["pbs"]["snapshots"]
        used = self._used()
        last = int(time.time() // DAY) * DAY + GC_AT
        if last > time.time():
            last -= DAY
        return {
            "upid": _upid("garbage_collection", store, last),
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
        last = int(time.time() // DAY) * DAY + GC_AT
        if last > time.time():
            last -= DAY
        return {
            "schedule": "daily",
            "next-run": last + DAY,
            "last-run-endtime": last + 420,
            "last-run-state": "ok",
            "duration": 420,
        }

    def _status(self, req: Request) -> Any:
        store = self._store(req)
        total = self.data["pbs"]["total"]
        used = self._used()
        groups = {s["backup-id"] for s in self.data["pbs"]["snapshots"]}
        return {
            "total": total,
            "used": used,
            "avail": total - used,
            "gc-status": self._gc(store),
            "counts": {"vm": {"groups": len(groups), "snapshots": len(self.data["pbs"]["snapshots"])}},
        }

    def _usage(self, req: Request) -> Any:
        total = self.data["pbs"]["total"]
        used = self._used()
        now = int(time.time())
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
            }
        ]

    def _filtered(self, req: Request) -> list[dict[str, Any]]:
        self._store(req)
        p = Params(req.args(), {"backup-type", "backup-id", "ns"})
        kind = p.enum("backup-type", {"vm", "ct", "host"})
        p.check()
        snaps = self.data["pbs"]["snapshots"]
        return [
            s
            for s in snaps
            if (kind in (None, s["backup-type"])) and p.raw.get("backup-id", s["backup-id"]) == s["backup-id"]
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

    def _verify_jobs(self, req: Request) -> Any:
        item = self._verify_config()
        last = self.data["pbs"]["verify_job"].get("last-run")
        now = time.time()
        nxt = int(now // DAY) * DAY + 11 * 3600
        item["next-run"] = nxt if nxt > now else nxt + DAY
        if last:
            failed = any(
                (s.get("verification") or {}).get("state") == "failed" and s["backup-time"] > last["time"] - DAY
                for s in self.data["pbs"]["snapshots"]
            )
            item.update(
                {
                    "last-run-upid": last["upid"],
                    "last-run-endtime": last["time"] + 600,
                    "last-run-state": "verification failed" if failed else "ok",
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
                changed = run_schedule(self.data, time.time())
                try:
                    result = handler(request)
                finally:
                    if changed:
                        self.state.save()
        except ApiError as exc:
            # proxmox-rest-server: the body is the plain message, the reason phrase the standard one.
            return Response(status=exc.status, body=exc.message.encode())
        return Response(body=json.dumps({"data": result}).encode())
