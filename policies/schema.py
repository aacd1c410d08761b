"""The Cedar schema: the hand-written part (entities, context, groups) plus one action per registered tool.

A tool's risk is declared once, on the tool. Its Cedar action and the action's group (``read``,
``write``, ``destructive``) are generated here from the registry, so a write tool can never be filed
under ``read`` by mistake. The hand-written schema may declare only the groups and the guard's own
actions (:data:`GUARD_ACTIONS`); a tool action written by hand, or a dotted action that no tool or guard
function backs, stops loading with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from core.errors import PolicyError
from tools.base import Tool

__all__ = ["GROUPS", "GUARD_ACTIONS", "build_schema", "declared_actions", "tool_actions"]

GROUPS = ("read", "write", "destructive")
# Actions the guard itself performs (deciding an approval, acknowledging or resolving an incident), not tools.
GUARD_ACTIONS = ("approval.approve", "approval.deny", "incident.acknowledge", "incident.resolve")

_ACTION = re.compile(r'^\s*action\s+((?:"[^"]+"\s*,\s*)*"[^"]+")', re.M)


def declared_actions(schema_text: str) -> list[str]:
    """Every action name a schema text declares."""
    names: list[str] = []
    for match in _ACTION.finditer(schema_text):
        names += re.findall(r'"([^"]+)"', match.group(1))
    return names


def tool_actions(tools: Iterable[Tool[Any]]) -> str:
    """One Cedar action per tool, in the group of its risk."""
    lines = ["// Generated from the tool registry (policies/schema.py): one action per tool, grouped by its risk."]
    for tool in tools:
        resources = ", ".join(tool.cedar_resource_types)
        lines.append(
            f'action "{tool.name}" in ["{tool.cedar_group}"] '
            f"appliesTo {{ principal: [User], resource: [{resources}], context: CallContext }};"
        )
    return "\n".join(lines) + "\n"


def build_schema(base_text: str, tools: list[Tool[Any]], *, source: str = "labops.cedarschema") -> str:
    """The full schema; raises PolicyError when the hand-written part declares what the registry owns."""
    names = {t.name for t in tools}
    for action in declared_actions(base_text):
        if action in names:
            raise PolicyError(
                f"{source}: action {action!r} is declared by hand; tool actions are generated from the tool's "
                "risk (remove the declaration)"
            )
        if action not in GROUPS and action not in GUARD_ACTIONS:
            raise PolicyError(
                f"{source}: action {action!r} belongs to no registered tool and is not a guard action "
                f"({', '.join(GUARD_ACTIONS)})"
            )
    missing = [g for g in (*GROUPS, *GUARD_ACTIONS) if g not in declared_actions(base_text)]
    if missing:
        raise PolicyError(f"{source}: the schema must declare the actions {', '.join(missing)}")
    return base_text.rstrip() + "\n\n" + tool_actions(tools)
