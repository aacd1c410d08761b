"""The ten-second backup summary: what is failed, missing, stale or unverified, worst first.

Every rule reads the VM's history (see :mod:`tools.backup.collect`), so the same lab gives the same
findings at every hour: a snapshot waiting for the verify job is *pending* and changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from tools.backup.collect import VmBackup

__all__ = ["Finding", "findings", "verdict"]

Problem = Literal["failed", "missing", "stale", "unverified"]
# Worst first: a backup that exists but is corrupt is worse than one that is old.
SEVERITY: dict[Problem, int] = {"failed": 0, "missing": 1, "stale": 2, "unverified": 3}


@dataclass(kw_only=True, frozen=True)
class Finding:
    """One problem with one VM's backups."""

    problem: Problem
    vmid: int
    name: str
    detail: str
    owner: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def _age(hours: float) -> str:
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} h"


def _when(epoch: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) if epoch else "never"


def _failed_detail(vm: VmBackup) -> str:
    text = f"the latest verification (snapshot of {_when(vm.last_result_time)}) failed"
    if vm.verification == "pending":
        text += "; the newest snapshot waits for the next verify run"
    good = f"last good snapshot {_when(vm.last_good_time)}" if vm.last_good_time else "no snapshot verified ok"
    if vm.last_good_time and vm.last_good_size:
        good += f" ({vm.last_good_size / 2**30:.1f} GiB)"  # what a restore from it brings back
    return f"{text}; {good}: restore from it and take a fresh backup"


def findings(vms: list[VmBackup], rpo_hours: float, *, window_days: float = 7.0) -> list[Finding]:
    """Every problem, worst first, then by VM id."""
    out: list[Finding] = []
    for vm in vms:
        if vm.last_result == "failed":
            out.append(Finding(problem="failed", vmid=vm.vmid, name=vm.name, detail=_failed_detail(vm), owner=vm.owner))
        if not vm.jobs:
            detail = "in no enabled backup job" + ("" if vm.last_backup else " and never backed up")
            out.append(Finding(problem="missing", vmid=vm.vmid, name=vm.name, detail=detail, owner=vm.owner))
        if vm.last_backup is not None and vm.age_hours is not None and vm.age_hours > rpo_hours:
            out.append(
                Finding(
                    problem="stale",
                    vmid=vm.vmid,
                    name=vm.name,
                    owner=vm.owner,
                    detail=f"last backup {_age(vm.age_hours)} ago (RPO {rpo_hours:g} h)",
                )
            )
        if not vm.verified_in_window and vm.due_unverified:
            out.append(
                Finding(
                    problem="unverified",
                    vmid=vm.vmid,
                    name=vm.name,
                    owner=vm.owner,
                    detail=f"no snapshot of the last {window_days:g} days was verified "
                    f"({vm.due_unverified} skipped by the verify job)",
                )
            )
    return sorted(out, key=lambda f: (SEVERITY[f.problem], f.vmid))


def verdict(found: list[Finding], total: int) -> str:
    """One line a person reads first."""
    if not found:
        return f"all {total} VMs have a verified backup within the RPO"
    counts: dict[str, int] = {}
    for f in found:
        counts[f.problem] = counts.get(f.problem, 0) + 1
    parts = [f"{counts[p]} {p}" for p in ("failed", "missing", "stale", "unverified") if p in counts]
    affected = len({f.vmid for f in found})
    return f"{affected} of {total} VMs need attention: " + ", ".join(parts)
