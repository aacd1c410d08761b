"""The explicit list of every toolset, and lookup by name.

The shipped toolsets are listed here, one entry each. A lab adds its own (``tools.extra`` in the settings,
``"module:ATTRIBUTE"`` naming a :class:`~tools.base.Toolset`); everything else about a tool (its Cedar action,
the CLI, what the agent needs to pick and fill it) follows from its declaration.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from core.config import Settings
from core.errors import ConfigError, InvalidArguments
from tools.backup import TOOLSET as BACKUP
from tools.base import Tool, Toolset
from tools.desi import TOOLSET as DESI
from tools.docs import TOOLSET as DOCS
from tools.incidents import TOOLSET as INCIDENTS
from tools.ray import TOOLSET as RAY
from tools.vm import TOOLSET as VM

__all__ = ["Registry", "all_tools", "get_tool", "registry", "toolsets"]

# One explicit entry per shipped toolset.
SHIPPED: tuple[Toolset, ...] = (VM, RAY, DESI, BACKUP, INCIDENTS, DOCS)


class Registry:
    """The toolsets in use: their tools in order, lookup by name, and the family words."""

    def __init__(self, sets: tuple[Toolset, ...]) -> None:
        names = [t.name for s in sets for t in s.tools]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"two toolsets register {', '.join(twice)}; tool names must be unique", setting="tools")
        self.toolsets = sets
        self.tools: list[Tool[Any]] = [tool for toolset in sets for tool in toolset.tools]
        self._by_name = {t.name: t for t in self.tools}

    def get(self, name: str) -> Tool[Any]:
        """The tool called ``name``; raises InvalidArguments naming the known tools."""
        tool = self._by_name.get(name)
        if tool is None:
            known = ", ".join(self._by_name)
            raise InvalidArguments(f"unknown tool {name!r}; known tools: {known} (see `labops tool list`)")
        return tool


def _load(spec: str) -> Toolset:
    module, _, attribute = spec.partition(":")
    try:
        value = getattr(importlib.import_module(module), attribute or "TOOLSET")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"tools.extra: cannot load {spec!r}: {exc}", setting="tools.extra") from exc
    if not isinstance(value, Toolset):
        raise ConfigError(f"tools.extra: {spec!r} is a {type(value).__name__}, not a Toolset", setting="tools.extra")
    return value


@functools.cache
def _registry(extra: tuple[str, ...]) -> Registry:
    return Registry((*SHIPPED, *(_load(spec) for spec in extra)))


def registry(settings: Settings | None = None) -> Registry:
    """The toolsets of ``settings`` (the shipped ones, plus ``tools.extra``)."""
    return _registry(tuple(settings.tools.extra) if settings is not None else ())


def toolsets(settings: Settings | None = None) -> tuple[Toolset, ...]:
    """Every toolset in use."""
    return registry(settings).toolsets


def all_tools(settings: Settings | None = None) -> list[Tool[Any]]:
    """Every registered tool, in toolset order."""
    return registry(settings).tools


def get_tool(name: str, settings: Settings | None = None) -> Tool[Any]:
    """The tool called ``name``; raises InvalidArguments naming the known tools."""
    return registry(settings).get(name)
