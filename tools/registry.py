"""The explicit list of every toolset, and lookup by name."""

from __future__ import annotations

from typing import Any

from core.errors import InvalidArguments
from tools.backup import TOOLS as BACKUP_TOOLS
from tools.base import Tool
from tools.desi import TOOLS as DESI_TOOLS
from tools.docs import TOOLS as DOCS_TOOLS
from tools.ray import TOOLS as RAY_TOOLS
from tools.vm import TOOLS as VM_TOOLS

__all__ = ["all_tools", "get_tool"]

# One explicit entry per toolset.
_TOOLSETS: tuple[list[Tool[Any]], ...] = (VM_TOOLS, RAY_TOOLS, DESI_TOOLS, BACKUP_TOOLS, DOCS_TOOLS)


def all_tools() -> list[Tool[Any]]:
    """Every registered tool, in toolset order."""
    return [tool for toolset in _TOOLSETS for tool in toolset]


def get_tool(name: str) -> Tool[Any]:
    """The tool called ``name``; raises InvalidArguments naming the known tools."""
    for tool in all_tools():
        if tool.name == name:
            return tool
    known = ", ".join(t.name for t in all_tools())
    raise InvalidArguments(f"unknown tool {name!r}; known tools: {known} (see `labops tool list`)")
