"""The services the CLI hands to the tools (the documentation search, for ``docs.search``)."""

from __future__ import annotations

from typing import Any

from core.config import Settings

__all__ = ["tool_services"]


def tool_services(settings: Settings) -> dict[str, Any]:
    """``{"docs": DocsService}``; the service opens Milvus only when a search runs."""
    from knowledge.service import DocsService

    return {"docs": DocsService(settings)}
