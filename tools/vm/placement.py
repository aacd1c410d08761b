"""Where a new VM goes: the online node with the most unallocated memory that also has the cores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Placement", "choose_node"]


@dataclass(kw_only=True, frozen=True)
class Placement:
    """The chosen node (or None) and why."""

    node: str | None
    reason: str
    free_memory_gib: float = 0.0


def _fits(row: dict[str, Any], cores: int, memory_gib: int) -> str | None:
    if row["status"] != "online":
        return f"node {row['node']} is {row['status']}"
    if row["threads"] < cores:
        return f"node {row['node']} has only {row['threads']} CPU threads, {cores} cores asked"
    if row["memory_free_gib"] < memory_gib:
        return f"node {row['node']} has {row['memory_free_gib']} GiB unallocated, {memory_gib} GiB asked"
    return None


def choose_node(nodes: list[dict[str, Any]], *, cores: int, memory_gib: int, wanted: str | None) -> Placement:
    """Pick a node from :func:`tools.vm.inventory.node_capacity` rows.

    Memory is counted as allocated by every configured VM (running or not), so a VM that is started
    later still fits: the lab does not overcommit memory.
    """
    if wanted is not None:
        row = next((n for n in nodes if n["node"] == wanted), None)
        if row is None:
            known = ", ".join(n["node"] for n in nodes)
            return Placement(node=None, reason=f"there is no node {wanted!r}; nodes: {known}")
        problem = _fits(row, cores, memory_gib)
        if problem:
            return Placement(node=None, reason=f"{problem}; choose another node or omit `node`")
        return Placement(node=wanted, reason="named in the request", free_memory_gib=row["memory_free_gib"])
    fitting = [n for n in nodes if _fits(n, cores, memory_gib) is None]
    if not fitting:
        most = max((n for n in nodes if n["status"] == "online"), key=lambda n: n["memory_free_gib"], default=None)
        room = f"; the most unallocated memory is {most['memory_free_gib']} GiB on {most['node']}" if most else ""
        return Placement(node=None, reason=f"no online node has {cores} cores and {memory_gib} GiB free{room}")
    best = max(fitting, key=lambda n: (n["memory_free_gib"], -n["cores_in_use"]))
    return Placement(
        node=best["node"],
        reason=f"most unallocated memory ({best['memory_free_gib']} GiB) among {len(fitting)} nodes that fit",
        free_memory_gib=best["memory_free_gib"],
    )
