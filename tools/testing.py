"""The explicitly unguarded path: run a tool without policy, approvals or audit (tests, benchmarks, eval setup).

Production code calls tools through ``policies.guard.Guard``; :meth:`tools.base.Tool.run` refuses a
context that no audit entry records. A test that exercises a tool's own logic, or a benchmark that
times it without the guard's overhead, says so by calling :func:`run_unguarded`.
"""

from __future__ import annotations

from typing import Any

from tools.base import Tool, ToolResult
from tools.context import ToolContext

__all__ = ["UNGUARDED_SEQ", "run_unguarded"]

UNGUARDED_SEQ = -1  # no real audit entry has a negative sequence number


def run_unguarded(tool: Tool[Any], ctx: ToolContext, raw_args: dict[str, Any]) -> ToolResult:
    """Validate ``raw_args`` and run ``tool`` directly (no policy, no approval, no audit entry)."""
    call_ctx = ctx.for_call(user=ctx.user, request_key=ctx.request_key, audit_seq=UNGUARDED_SEQ)
    return tool.run(call_ctx, tool.parse(raw_args))
