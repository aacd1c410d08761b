"""What a user uses now (counted from the live lab), and the words for a quota a call would exceed."""

from __future__ import annotations

from collections.abc import Callable

from tools.context import ToolContext

__all__ = ["UsageProvider", "live_usage", "quota_overruns"]

# (context, user, the amounts the call asks for) -> the user's current usage of those amounts
UsageProvider = Callable[[ToolContext, str, set[str]], dict[str, int]]

_UNITS: dict[str, tuple[str, int]] = {
    "vms": ("VMs", 1),
    "cores": ("cores", 1),
    "memory_mib": ("GiB of memory", 1024),
    "gpus": ("GPUs", 1),
    "ray_jobs": ("running Ray jobs", 1),
}


def live_usage(ctx: ToolContext, user: str, needs: set[str]) -> dict[str, int]:
    """The user's current VMs and/or Ray jobs, counted from the lab (only what the call needs)."""
    from tools.ray.usage import ray_usage
    from tools.vm.usage import vm_usage

    usage: dict[str, int] = {}
    if needs & {"vms", "cores", "memory_mib", "gpus"}:
        usage.update(vm_usage(ctx, user))
    if "ray_jobs" in needs:
        usage.update(ray_usage(ctx, user))
    return usage


def quota_overruns(
    user: str,
    *,
    request: dict[str, int],
    usage: dict[str, int],
    quota: dict[str, int],
    what: str,
    reserved: dict[str, int] | None = None,
) -> list[str]:
    """One sentence per limit the call would pass, e.g. ``researcher1 uses 12 of 16 cores; this VM needs 8 more``."""
    out = []
    for key, (label, scale) in _UNITS.items():
        asked = int(request.get(key, 0))
        if not asked:
            continue
        used, limit = int(usage.get(key, 0)), int(quota.get(key, 0))
        if used + asked > limit:
            out.append(
                f"{user} uses {used / scale:g} of {limit / scale:g} {label}; {what} needs {asked / scale:g} more"
            )
    return out
