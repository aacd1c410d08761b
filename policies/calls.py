"""What a guarded call is: who calls, a call allowed to run, and how its raw arguments are read.

:class:`Caller` and :class:`Authorization` travel between the channels, the agent and the guard.
:func:`parse_call` looks the tool up by name, bounds the arguments' size and validates them with the
tool's argument model, phrasing each error so that the model or the user can correct it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from core.errors import InvalidArguments
from policies.engine import Decision
from tools.base import Tool, ToolArgs, ToolResult

__all__ = ["MAX_ARGS_BYTES", "Authorization", "Caller", "Channel", "one_line", "parse_call", "validation_errors"]

log = logging.getLogger(__name__)

MAX_ARGS_BYTES = 64 * 1024

Channel = Literal["cli", "chat", "slack", "eval", "api", "mcp", "watcher", "alertmanager"]


@dataclass(kw_only=True, frozen=True)
class Caller:
    """Who is calling, and from where.

    Attributes:
        user: the identity policy judges (from the channel's authentication, never from a model's words).
        channel: where the request came from.
        request_text: the user's words or command line, for the audit log.
        real_user: who is really behind the call when ``user`` was claimed (an operator's ``--as``).
        request_id: the channel's request id (HTTP request, chat turn), carried into the audit log.
        origin: what the channel knows of who asked (API key id and owner, the forwarded identity as received
            and whether it was signed, the Slack team and user, the operating-system account), JSON-safe; every
            audit entry of the request carries it, so a spoof can be traced afterwards.
    """

    user: str
    channel: Channel
    request_text: str | None = None
    real_user: str | None = None
    request_id: str | None = None
    origin: dict[str, Any] | None = None


@dataclass(kw_only=True, frozen=True)
class Authorization:
    """A validated, allowed (or approved) call that :meth:`Guard.execute` may run."""

    tool: Tool[Any]
    args: ToolArgs
    caller: Caller
    call_id: str | None = None
    approval_id: str | None = None
    decision: Decision | None = None


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """A validation error as JSON-safe ``{loc, msg, type}`` items (never the exception objects inside)."""
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def one_line(message: str, limit: int = 500) -> str:
    """A backend's error as one bounded line (its tracebacks belong in the log, not in the answer)."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    if len(message.strip().splitlines()) > 1:
        log.info("backend error (first line shown to the user): %s", message)
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _validation_message(tool: Tool[Any], exc: ValidationError) -> str:
    problems = [f"{'.'.join(e['loc']) or '(arguments)'}: {e['msg']}" for e in validation_errors(exc)]
    return f"invalid arguments for {tool.name}: " + "; ".join(problems) + " (see `labops tool list --json`)"


def parse_call(
    lookup: Callable[[str], Tool[Any]], tool_name: str, raw: dict[str, Any]
) -> tuple[Tool[Any], ToolArgs] | ToolResult:
    """The tool and its validated arguments, or an ``error`` result saying what to fix."""
    try:
        tool = lookup(tool_name)
    except InvalidArguments as exc:
        return ToolResult.error(str(exc))
    size = len(json.dumps(raw, default=str).encode())
    if size > MAX_ARGS_BYTES:
        return ToolResult.error(
            f"the arguments of {tool.name} are {size} bytes; the limit is {MAX_ARGS_BYTES} bytes (send less)"
        )
    try:
        return tool, tool.parse(raw)
    except ValidationError as exc:
        return ToolResult.error(_validation_message(tool, exc), data={"errors": validation_errors(exc)})
