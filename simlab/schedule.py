"""The lab's clock-driven jobs: the 09:00 backup jobs (PVE vzdump to PBS) and the 11:00 PBS verify job.

The simulator does not run timers: before answering a request it replays every scheduled event
between the last one it processed and now (so a simulator that was stopped for two days catches up
with two days of backups, as the real jobs would have run).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BACKUP_AT",
    "DAY",
    "KEEP_LAST",
    "VERIFY_AT",
    "backup_size",
    "prune",
    "run_schedule",
    "snapshot_record",
    "verification_result",
]

DAY = 86400
BACKUP_AT = 9 * 3600  # seconds after midnight UTC (the simulator's guess for the lab's local 09:00)
VERIFY_AT = 11 * 3600
KEEP_LAST = 14  # PBS prune: keep-last per backup group
GIB = 1024**3


def _events(start: float, end: float) -> list[tuple[float, str]]:
    """Scheduled events in ``(start, end]``, oldest first."""
    events: list[tuple[float, str]] = []
    day = int(start // DAY) * DAY
    while day <= end:
        for offset, kind in ((BACKUP_AT, "backup"), (VERIFY_AT, "verify")):
            t = day + offset
            if start < t <= end:
                events.append((t, kind))
        day += DAY
    return events


def _job_enabled_at(data: dict[str, Any], job: dict[str, Any], t: float) -> bool:
    disabled_at = data["internal"]["job_disabled_at"].get(job["id"])
    if disabled_at is not None:
        return t < disabled_at
    return bool(int(job.get("enabled", 1)))


def _job_vmids(data: dict[str, Any], job: dict[str, Any]) -> list[int]:
    if int(job.get("all", 0)):
        excluded = {int(v) for v in str(job.get("exclude", "")).split(",") if v}
        return sorted(int(v) for v in data["vms"] if int(v) not in excluded)
    return [int(v) for v in str(job.get("vmid", "")).split(",") if v]


def _backup(data: dict[str, Any], t: float) -> None:
    snaps: list[dict[str, Any]] = data["pbs"]["snapshots"]
    done: set[int] = set()
    for job in data["backup_jobs"]:
        if not _job_enabled_at(data, job, t):
            continue
        for index, vmid in enumerate(_job_vmids(data, job)):
            vm = data["vms"].get(str(vmid))
            if vm is None or vm["template"] or vmid in done:
                continue
            done.add(vmid)
            size = backup_size(data, vm, t)
            when = int(t) + 45 * index  # jobs back guests up one after another
            snaps.append(snapshot_record(vm, when, size))
    prune(data)


def snapshot_record(vm: dict[str, Any], when: int, size: int) -> dict[str, Any]:
    """A VM snapshot as PBS keeps it (what a vzdump to the PBS storage writes)."""
    return {
        "backup-type": "vm",
        "backup-id": str(vm["vmid"]),
        "backup-time": when,
        "size": size,
        "protected": False,
        "comment": vm["name"],
        "owner": "root@pam",
        "files": [
            {"filename": "qemu-server.conf.blob", "size": 612, "crypt-mode": "none"},
            {"filename": "drive-scsi0.img.fidx", "size": size, "crypt-mode": "none"},
            {"filename": "index.json.blob", "size": 467, "crypt-mode": "none"},
            {"filename": "client.log.blob", "size": 1893, "crypt-mode": "none"},
        ],
    }


def backup_size(data: dict[str, Any], vm: dict[str, Any], t: float) -> int:
    """A VM's backup size at ``t``: about 30% of its disk, growing slowly with the days since seeding."""
    days = int((t - data["seeded_at"]) // DAY)
    return int(vm["disk_gib"] * GIB * 0.3 * (1 + 0.003 * (days + 30)))


def prune(data: dict[str, Any]) -> None:
    """PBS prune: keep the newest ``KEEP_LAST`` snapshots of each group (protected ones stay)."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for snap in data["pbs"]["snapshots"]:
        by_group.setdefault(snap["backup-id"], []).append(snap)
    kept: list[dict[str, Any]] = []
    for group in by_group.values():
        group.sort(key=lambda s: s["backup-time"])
        kept.extend(s for s in group[:-KEEP_LAST] if s.get("protected"))
        kept.extend(group[-KEEP_LAST:])
    data["pbs"]["snapshots"] = sorted(kept, key=lambda s: (s["backup-time"], s["backup-id"]))


def _verify(data: dict[str, Any], t: float) -> None:
    internal = data["internal"]
    # PBS UPIDs carry an extra task-id field; the worker id escapes ':' and '-' like systemd does.
    worker = "store1\\x3av\\x2ddaily"
    upid = f"UPID:pbs01:00000F1E:00000A2C:{int(t) & 0xFFFFFFFF:08X}:{int(t):08X}:verificationjob:{worker}:root@pam:"
    for snap in data["pbs"]["snapshots"]:
        if snap.get("verification") or snap["backup-time"] > t:
            continue
        if snap["backup-id"] in internal["verify_skips"]:
            continue
        snap["verification"] = {"state": verification_result(data, snap), "upid": upid}
    data["pbs"]["verify_job"]["last-run"] = {"time": int(t), "upid": upid}


def verification_result(data: dict[str, Any], snap: dict[str, Any]) -> str:
    """What verifying ``snap`` finds: ``failed`` for the seeded bad chunks, else ``ok``."""
    fails_from = data["internal"]["verify_fails_from"].get(snap["backup-id"])
    return "failed" if fails_from is not None and snap["backup-time"] >= fails_from else "ok"


def run_schedule(data: dict[str, Any], now: float) -> bool:
    """Apply every backup/verify event up to ``now``; True if anything changed."""
    internal = data["internal"]
    events = _events(internal["schedule_from"], now)
    for t, kind in events:
        if kind == "backup":
            _backup(data, t)
        else:
            _verify(data, t)
    internal["schedule_from"] = now
    return bool(events)
