"""``docs.search``: the lab's documentation, searched through the service the agent or the CLI hands in.

Tools import nothing of ``knowledge``; the search itself is a ``"docs"`` service in the
:class:`~tools.context.ToolContext` (``knowledge.service.DocsService``), so the same retrieval serves the
agent's retrieve step and this tool.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import Field

from tools.base import Tool, ToolArgs, ToolResult, Toolset
from tools.context import ToolContext

__all__ = ["TOOLS", "TOOLSET", "DocsSearch", "SearchArgs"]


class DocsSearch(Protocol):
    """What the ``"docs"`` service offers."""

    def search(self, query: str, *, k: int) -> list[dict[str, Any]]:
        """Passages as ``{"text", "source", "section", "citation", "score"}``, best first."""
        ...


class SearchArgs(ToolArgs):
    """Arguments of ``docs.search``."""

    query: str = Field(..., min_length=2, max_length=500, description="What to look up, in plain words.")
    k: int = Field(4, ge=1, le=10, description="How many passages to return.")


def docs_search(ctx: ToolContext, args: SearchArgs) -> ToolResult:
    """Search the lab's own documentation (runbooks, policies, cluster, backups, DESI tables).

    Returns passages with their citation [document § section].
    """
    service: DocsSearch = ctx.service("docs")
    hits = service.search(args.query, k=args.k)
    if not hits:
        return ToolResult.no_data(f"no passage of the lab's documentation matches {args.query!r}", data=[])
    cites = ", ".join(dict.fromkeys(h["citation"] for h in hits))
    return ToolResult.ok(f"{len(hits)} passages: {cites}", data=hits)


TOOLS: list[Tool[Any]] = [
    Tool(
        name="docs.search",
        args_model=SearchArgs,
        fn=docs_search,
        risk="read",
        resource_types=("Lab",),
        summary=lambda a: f"search the lab's docs for {a.query!r}",
        aliases={"query": ("q", "question", "text", "search")},
        examples=("What does the runbook say about restoring a VM?",),
    ),
]

TOOLSET = Toolset(
    name="docs",
    words=("how do i", "how to", "policy", "runbook", "documentation", "docs", "who is", "what is the"),
    title="how the lab works (its documentation and runbooks)",
    tools=TOOLS,
)
