"""``incidents.list``: the lab's open incidents (from the watchers and Alertmanager), worst first."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field

from core.incidents import IncidentStore
from tools.base import Tool, ToolArgs, ToolResult, Toolset
from tools.context import ToolContext

__all__ = ["TOOLS", "TOOLSET", "ListArgs"]


class ListArgs(ToolArgs):
    """Arguments of ``incidents.list``."""

    state: Literal["active", "all", "open", "acknowledged", "resolved"] = Field(
        "active", description="'active' (open or acknowledged, the default), or one state, or 'all'."
    )
    limit: int = Field(20, ge=1, le=200, description="At most this many, worst and newest first.")


def list_incidents(ctx: ToolContext, args: ListArgs) -> ToolResult:
    """The lab's incidents: what LabOps's watchers and Alertmanager found broken, worst first.

    Each has an id (inc_...), a title, its severity, its state (open, acknowledged, resolved), when it was opened,
    and the fixes it offers. Start here for "what is broken right now?".
    """
    found = IncidentStore.from_settings(ctx.settings).find(state=args.state, limit=args.limit)

    def runbook(investigation: dict[str, Any] | None) -> dict[str, str]:
        cited = (investigation or {}).get("runbook")
        return {"runbook": str(cited["citation"])} if cited else {}

    rows = [
        {
            "id": i.id,
            "title": i.title,
            "severity": i.severity,
            "state": i.state,
            "source": i.source,
            "opened": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(i.opened)),
            "fixes": [f.summary for f in i.fixes],
            **runbook(i.investigation),
        }
        for i in found
    ]
    if not rows:
        what = "active" if args.state == "active" else args.state
        return ToolResult.no_data(f"no {what} incidents (the watchers and Alertmanager found nothing open)", data=[])
    lines = [f"{len(rows)} {args.state} incident{'s' if len(rows) != 1 else ''}:"]
    lines += [f"- {r['id']} [{r['state']}] {r['severity']}: {r['title']} (opened {r['opened']})" for r in rows]
    return ToolResult.ok("\n".join(lines), data=rows)


TOOLS: list[Tool[Any]] = [
    Tool(
        name="incidents.list",
        args_model=ListArgs,
        fn=list_incidents,
        risk="read",
        resource_types=("Lab",),
        summary=lambda a: f"list {a.state} incidents",
        rows=("incidents", "alerts", "outages"),
        words=("incident", "incidents", "broken", "alerts", "alert", "firing", "outage"),
        aliases={"state": ("status",), "limit": ("n", "count", "max")},
        examples=("What is broken right now?", "Which incidents are open?", "Any alerts firing?"),
    ),
]

TOOLSET = Toolset(
    name="incidents",
    words=("incident", "incidents", "broken", "alert", "alerts", "firing", "outage"),
    title="incidents",
    tools=TOOLS,
)
