"""A user's pending and running Ray jobs, counted from the cluster."""

from __future__ import annotations

from tools.context import ToolContext

__all__ = ["ray_usage"]


def ray_usage(ctx: ToolContext, user: str) -> dict[str, int]:
    """``{"ray_jobs": n}``: the user's jobs that are PENDING or RUNNING."""
    from tools.ray import _api

    jobs = _api(ctx).list()
    active = [
        j for j in jobs if j.get("status") in ("PENDING", "RUNNING") and (j.get("metadata") or {}).get("owner") == user
    ]
    return {"ray_jobs": len(active)}
