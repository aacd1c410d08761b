"""The ten-second backup summary: what is failed, missing, stale or unverified, worst first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tools.backup.collect import VmBackup

__all__ = ["Finding", "findings", "verdict"]

Problem = Literal["failed", "missing", "stale", "unverified"]
# Worst first: a backup that exists but is corrupt is worse than one that is old.
VERIFY_GRACE_HOURS = 6.0
SEVERITY: dict[Problem, int] = {"failed": 0, "missing": 1, "stale": 2, "unverified": 3}


@dataclass(kw_only=True, frozen=True)
class Finding:
    """One problem with one VM's backups."""

    problem: Problem
    vmid: int
    name: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def _age(hours: float) -> str:
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} h"


def findings(vms: list[VmBackup], rpo_hours: float) -> list[Finding]:
    """Every problem, worst first, then by VM id."""
    out: list[Finding] = []
    for vm in vms:
        if vm.verification == "failed":
            out.append(
                Finding(
                    problem="failed",
                    vmid=vm.vmid,
                    name=vm.name,
                    detail="newest snapshot failed verification: restore from an older one is not tested",
                )
            )
        if not vm.jobs:
            detail = "in no enabled backup job" + ("" if vm.last_backup else " and never backed up")
            out.append(Finding(problem="missing", vmid=vm.vmid, name=vm.name, detail=detail))
        if vm.last_backup is not None and vm.age_hours is not None and vm.age_hours > rpo_hours:
            out.append(
                Finding(
                    problem="stale",
                    vmid=vm.vmid,
                    name=vm.name,
                    detail=f"last backup {_age(vm.age_hours)} ago (RPO {rpo_hours:.0f} h)",
                )
            )
        # The verify job runs a couple of hours after the backups: only older snapshots count as unverified.
        if vm.last_backup is not None and vm.verification == "none" and (vm.age_hours or 0) > VERIFY_GRACE_HOURS:
            out.append(
                Finding(problem="unverified", vmid=vm.vmid, name=vm.name, detail="newest snapshot was never verified")
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
