"""The guard: the single entry point for tool calls from every channel.

It validates the arguments against the tool's model (a bad argument becomes an ``error`` envelope
naming each field), builds the per-call context (caller, request key for idempotency), runs the tool,
and turns the errors a user or model can act on into envelopes; a bug raises.

Not built yet (issue 4): Cedar policy decisions, approvals and the hash-chained audit log. Until
then every known tool call is allowed; :meth:`Guard.authorize` is where the decision will be made, so
channels already call the guard the way they will with policy in place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from core.config import Settings
from core.errors import BackendUnavailable, ConfigError, InvalidArguments, ToolError
from tools.base import Tool, ToolArgs, ToolResult
from tools.context import ToolContext
from tools.registry import get_tool

__all__ = ["Authorization", "Caller", "Guard"]

log = logging.getLogger(__name__)

Channel = Literal["cli", "chat", "slack", "eval", "api"]


@dataclass(kw_only=True, frozen=True)
class Caller:
    """Who is calling, and from where."""

    user: str
    channel: Channel
    request_text: str | None = None


@dataclass(kw_only=True, frozen=True)
class Authorization:
    """A validated call that may run: the tool, its parsed arguments, the caller and the request key."""

    tool: Tool[Any]
    args: ToolArgs
    caller: Caller
    call_id: str | None = None


def _validation_message(tool: Tool[Any], exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        problems.append(f"{where}: {err['msg']}")
    return (
        f"invalid arguments for {tool.name}: " + "; ".join(problems) + " (see `labops tool list --json` for the schema)"
    )


@dataclass(kw_only=True)
class Guard:
    """Validates and runs tool calls; one instance per process (it shares the tools' clients)."""

    settings: Settings
    lookup: Callable[[str], Tool[Any]] = get_tool
    context: ToolContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = ToolContext(settings=self.settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        """A guard over the registered toolsets."""
        return cls(settings=settings)

    def _parse(self, tool_name: str, raw_args: dict[str, Any]) -> tuple[Tool[Any], ToolArgs] | ToolResult:
        try:
            tool = self.lookup(tool_name)
        except InvalidArguments as exc:
            return ToolResult.error(str(exc))
        try:
            return tool, tool.parse(raw_args)
        except ValidationError as exc:
            return ToolResult.error(_validation_message(tool, exc), data={"errors": exc.errors(include_url=False)})

    def authorize(
        self, tool_name: str, raw_args: dict[str, Any], *, caller: Caller, call_id: str | None = None
    ) -> Authorization | ToolResult:
        """Validate a call; an :class:`Authorization` when it may run, else the envelope to return."""
        parsed = self._parse(tool_name, raw_args)
        if isinstance(parsed, ToolResult):
            return parsed
        tool, args = parsed
        return Authorization(tool=tool, args=args, caller=caller, call_id=call_id)

    def execute(self, authorization: Authorization) -> ToolResult:
        """Run an authorized call; errors the caller can act on become ``error`` envelopes."""
        tool = authorization.tool
        ctx = self.context.for_call(user=authorization.caller.user, request_key=authorization.call_id)
        started = time.monotonic()
        try:
            result = tool.run(ctx, authorization.args)
        except (ToolError, BackendUnavailable, ConfigError) as exc:
            result = ToolResult.error(str(exc))
        log.info(
            "%s %s by %s via %s -> %s (%.0f ms)",
            tool.name,
            tool.summary(authorization.args),
            authorization.caller.user,
            authorization.caller.channel,
            result.status,
            (time.monotonic() - started) * 1000,
        )
        return result

    def call(
        self,
        tool_name: str,
        raw_args: dict[str, Any],
        *,
        caller: Caller,
        call_id: str | None = None,
        approval_id: str | None = None,
    ) -> ToolResult:
        """Authorize and execute in one step (CLI, scripts)."""
        if approval_id is not None:
            return ToolResult.error("approvals are not available yet (policy and approvals come with issue 4)")
        auth = self.authorize(tool_name, raw_args, caller=caller, call_id=call_id)
        if isinstance(auth, ToolResult):
            return auth
        return self.execute(auth)

    def plan(self, tool_name: str, raw_args: dict[str, Any], *, caller: Caller) -> ToolResult:
        """The dry run of a call: what it would do, without changing anything."""
        parsed = self._parse(tool_name, raw_args)
        if isinstance(parsed, ToolResult):
            return parsed
        tool, args = parsed
        ctx = self.context.for_call(user=caller.user, request_key=None)
        try:
            plan = tool.dry_run(ctx, args)
        except (ToolError, BackendUnavailable, ConfigError) as exc:
            return ToolResult.error(str(exc))
        verdict = (
            "feasible" if plan.feasible else "not feasible: " + "; ".join(c.detail for c in plan.checks if not c.passed)
        )
        return ToolResult.ok(f"plan for {plan.summary}: {verdict}", data=plan.model_dump(mode="json"))
