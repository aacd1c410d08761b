"""The lab as it is on the first start of the simulator (from ``lab-facts.md``).

Nodes (Proxmox VE 8.4.1, cluster ``radioastro``)
------------------------------------------------
======  =====================  =======  ========  ========================================
node    CPU                    threads  memory    role
======  =====================  =======  ========  ========================================
node01  Intel i9-12900H        20       94 GiB    RKE2, VM templates
node02  Intel i5-12600H        16       94 GiB    RKE2, small services
node03  Intel i9-12900H        20       94 GiB    RKE2, research VMs
node04  Intel i5-12600H        16       94 GiB    arriving: **offline**
node05  Intel i5-12600H        16       94 GiB    strategic VMs (PostgreSQL)
node06  Intel i9-12900H        20       94 GiB    arriving: **offline**
node07  AMD Ryzen 9 5950X      32       128 GiB   GPU node (RTX A4000 passed through), research
======  =====================  =======  ========  ========================================

Management network 10.16.207.0/24 (node0N = 10.16.207.1N), data network 10.25.60.0/24 (a running VM
with the guest agent answers with 10.25.60.(10 + vmid % 240)). Storage: ``local-lvm`` (lvmthin, 1.8 TiB
per node) and ``pbs01`` (type pbs, datastore ``store1`` on pbs01.radioastronomy.io, 4 TB).

VMs
---
9000 ubuntu-2404-cloud and 9001 debian-12-cloud (templates, node01); 100-103 rke2-01..04 (RKE2);
110 proj-pg01 (10 cores, 48 GiB) and 111 proj-pg02 (4 cores, 16 GiB) on node05, tagged ``production``;
120 gpu-ollama on node07 (hostpci0 = the RTX A4000); 130 void-analysis (researcher1), 131 agn-fit
(researcher2), 132 qso-vae-dev (researcher1, stopped), 140 scratch-sandbox (researcher2, stopped);
150 wazuh-manager (``protected`` tag and PVE protection), 151 monitoring. Owners are the tag
``owner-<user>`` plus an ``owner: <user>`` line in the description.

Backups
-------
Job ``backup-daily`` runs every day at 09:00 (UTC in the simulator) to ``pbs01`` for an explicit VM list;
PBS verify job ``verify-daily`` checks new snapshots at 11:00. Snapshots exist for the 14 days before
the first start, and the simulator keeps running both jobs while it is up or catches up when restarted.

Deliberate backup problems
--------------------------
- **stale**: 151 monitoring. It is only in job ``backup-legacy``, which was disabled at 10:00 UTC three
  days before the first start, so its last snapshot is from 09:00 UTC that day: between 2.6 and 3.6 days
  old on the day of the first start (the age depends on the hour), and older every day after.
- **failed**: 132 qso-vae-dev. Its snapshots since 2 days before the first start fail verification
  (a bad chunk); the latest one is ``failed``.
- **unverified**: 131 agn-fit. Its group is not picked up by the verify job, so no snapshot carries a
  ``verification`` field.
- **no_job**: 140 scratch-sandbox. It is in no backup job and has never been backed up
  (``/cluster/backup-info/not-backed-up`` lists it).

These sets are :data:`SEEDED_BACKUP_PROBLEMS`. Templates are in no job and are not problems.
"""

from __future__ import annotations

import random
from typing import Any

from simlab.schedule import BACKUP_AT, DAY, run_schedule

__all__ = ["SEEDED_BACKUP_PROBLEMS", "seed_state"]

GIB = 1024**3

SEEDED_BACKUP_PROBLEMS: dict[str, list[int]] = {
    "stale": [151],
    "failed": [132],
    "unverified": [131],
    "no_job": [140],
}

_NODES = [
    ("node01", "12th Gen Intel(R) Core(TM) i9-12900H", 14, 20, 94, True),
    ("node02", "12th Gen Intel(R) Core(TM) i5-12600H", 12, 16, 94, True),
    ("node03", "12th Gen Intel(R) Core(TM) i9-12900H", 14, 20, 94, True),
    ("node04", "12th Gen Intel(R) Core(TM) i5-12600H", 12, 16, 94, False),
    ("node05", "12th Gen Intel(R) Core(TM) i5-12600H", 12, 16, 94, True),
    ("node06", "12th Gen Intel(R) Core(TM) i9-12900H", 14, 20, 94, False),
    ("node07", "AMD Ryzen 9 5950X 16-Core Processor", 16, 32, 128, True),
]

# vmid, name, node, cores, memory GiB, disk GiB, running, tags, owner, extra config
_VMS: list[tuple[int, str, str, int, int, int, bool, list[str], str | None, dict[str, Any]]] = [
    (9000, "ubuntu-2404-cloud", "node01", 2, 2, 32, False, ["template"], None, {"template": 1}),
    (9001, "debian-12-cloud", "node01", 2, 2, 16, False, ["template"], None, {"template": 1}),
    (100, "rke2-01", "node01", 16, 64, 200, True, ["k8s", "rke2"], None, {}),
    (101, "rke2-02", "node02", 12, 64, 200, True, ["k8s", "rke2"], None, {}),
    (102, "rke2-03", "node03", 16, 64, 200, True, ["k8s", "rke2"], None, {}),
    (103, "rke2-04", "node07", 16, 48, 200, True, ["k8s", "rke2"], None, {}),
    (110, "proj-pg01", "node05", 10, 48, 500, True, ["database", "production"], None, {}),
    (111, "proj-pg02", "node05", 4, 16, 200, True, ["database", "production"], None, {}),
    (120, "gpu-ollama", "node07", 8, 32, 300, True, ["gpu", "ollama"], None, {"hostpci0": "0000:01:00,pcie=1"}),
    (130, "void-analysis", "node03", 4, 16, 100, True, ["owner-researcher1", "research"], "researcher1", {}),
    (131, "agn-fit", "node07", 4, 8, 64, True, ["owner-researcher2", "research"], "researcher2", {}),
    (132, "qso-vae-dev", "node07", 8, 24, 120, False, ["owner-researcher1", "research"], "researcher1", {}),
    (140, "scratch-sandbox", "node02", 2, 4, 32, False, ["owner-researcher2", "sandbox"], "researcher2", {}),
    (150, "wazuh-manager", "node02", 4, 8, 100, True, ["protected", "security"], None, {"protection": 1}),
    (151, "monitoring", "node03", 4, 8, 64, True, ["monitoring"], None, {}),
]

_DAILY = [100, 101, 102, 103, 110, 111, 120, 130, 131, 132, 150]


def _vm(row: tuple[Any, ...], now: float) -> dict[str, Any]:
    vmid, name, node, cores, mem, disk, running, tags, owner, extra = row
    description = f"owner: {owner}" if owner else f"{name} (lab infrastructure)"
    vm: dict[str, Any] = {
        "vmid": vmid,
        "name": name,
        "node": node,
        "cores": cores,
        "sockets": 1,
        "memory": mem * 1024,
        "disk_gib": disk,
        "status": "running" if running else "stopped",
        "started": now - 86400 * 12 if running else None,
        "tags": ";".join(sorted(tags)),
        "description": description,
        "template": 0,
        "protection": 0,
        "agent": 1,
        "ostype": "l26",
        "net0": f"virtio=BC:24:11:00:{vmid // 256 % 256:02X}:{vmid % 256:02X},bridge=vmbr1",
        "scsi0": f"local-lvm:vm-{vmid}-disk-0,size={disk}G",
        "lock": None,
    }
    vm.update(extra)
    if vm["template"]:
        vm["status"] = "stopped"
        vm["started"] = None
        vm["scsi0"] = f"local-lvm:base-{vmid}-disk-0,size={disk}G"
    return vm


def seed_state(now: float) -> dict[str, Any]:
    """A new lab at time ``now`` (epoch seconds), with 14 days of backup history."""
    nodes = {
        name: {
            "node": name,
            "cpu_model": model,
            "cores": cores,
            "maxcpu": threads,
            "maxmem": mem * GIB,
            "maxdisk": 1800 * GIB,
            "rootfs": 100 * GIB,
            "online": online,
            "ip": f"10.16.207.{10 + i}",
            "boot": now - 86400 * 40,
            # The RTX A4000 sits in node07 (listed by GET /nodes/node07/hardware/pci, see simlab.pve.hardware).
            "gpu": name == "node07",
        }
        for i, (name, model, cores, threads, mem, online) in enumerate(_NODES, start=1)
    }
    vms = {str(row[0]): _vm(row, now) for row in _VMS}
    first_day = int(now // DAY) * DAY - 14 * DAY
    data: dict[str, Any] = {
        "version": 1,
        "seeded_at": now,
        "cluster": "radioastro",
        "pve_version": {"version": "8.4.1", "release": "8.4", "repoid": "2a5fa54a8503f96d"},
        "pbs_version": {"version": "3.4.1", "release": "3.4", "repoid": "b7f5f1a2"},
        "nodes": nodes,
        "vms": vms,
        "tasks": {},
        "pid": 0x1A2B00,
        "backup_jobs": [
            {
                "id": "backup-daily",
                "type": "vzdump",
                "schedule": "09:00",
                "storage": "pbs01",
                "vmid": ",".join(str(v) for v in _DAILY),
                "enabled": 1,
                "mode": "snapshot",
                "compress": "zstd",
                "comment": "daily backup of all VMs to pbs01 (verified 11:00)",
                "notes-template": "{{guestname}}",
                # An object of keep-* counts (PVE's schema); the last 14 dailies are kept (backup policy).
                "prune-backups": {"keep-daily": 14},
            },
            {
                "id": "backup-legacy",
                "type": "vzdump",
                "schedule": "09:00",
                "storage": "pbs01",
                "vmid": "151",
                "enabled": 0,
                "mode": "snapshot",
                "compress": "zstd",
                "comment": "old monitoring job, disabled during the Grafana migration",
            },
        ],
        "pbs": {
            "store": "store1",
            "total": 4 * 1000**4,
            "base_used": 310 * GIB,
            "snapshots": [],
            "verify_job": {"id": "verify-daily", "store": "store1", "schedule": "11:00", "ignore-verified": True},
            "gc": {"schedule": "daily", "last": None},
        },
        # Simulator bookkeeping that no API returns as such.
        "internal": {
            "schedule_from": first_day,
            "job_disabled_at": {"backup-legacy": first_day + 11 * DAY + BACKUP_AT + 3600},
            "verify_fails_from": {"132": first_day + 12 * DAY},
            "verify_skips": ["131"],
            "seed": random.Random(7).randrange(1 << 30),
        },
    }
    run_schedule(data, now)
    return data
