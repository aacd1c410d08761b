"""``labops tool list|plan|call``: the guarded tools without the LLM."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table

from channels.cli.common import console, echo_json, get_settings, handle_errors
from core.errors import InvalidArguments
from policies.guard import Caller, Guard
from tools.base import ToolResult
from tools.registry import all_tools

__all__ = ["tool"]

# Exit codes a script can branch on; the envelope's status says the same in words.
_EXIT = {"ok": 0, "no_data": 0, "error": 1, "needs_approval": 4, "denied": 5}


def parse_args(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidArguments(
            f"--args is not valid JSON ({exc.msg} at column {exc.colno}); example: --args '{{\"vmid\": 105}}'"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidArguments("--args must be a JSON object, e.g. --args '{\"vmid\": 105}'")
    return value


def _emit(result: ToolResult, as_json: bool) -> None:
    if as_json:
        echo_json(result.model_dump(mode="json"))
    else:
        colour = {"ok": "green", "no_data": "yellow", "needs_approval": "yellow"}.get(result.status, "red")
        console.print(f"[{colour}]{result.status}[/{colour}]: {result.message}")
        if result.data is not None:
            console.print_json(json.dumps(result.data, default=str))
    sys.exit(_EXIT[result.status])


@click.group()
def tool() -> None:
    """List, plan (dry-run) and call the guarded tools."""


@tool.command("list")
@click.option("--json", "as_json", is_flag=True, help="Name, risk, description and argument JSON schema.")
def list_tools(as_json: bool) -> None:
    """List every tool with its risk."""
    tools = all_tools()
    if as_json:
        echo_json(
            [
                {"name": t.name, "risk": t.risk, "description": t.description, "args_schema": t.json_schema()}
                for t in tools
            ]
        )
        return
    table = Table("tool", "risk", "what it does", box=None)
    for t in tools:
        table.add_row(t.name, t.risk, t.description.splitlines()[0])
    console.print(table)


@tool.command()
@click.argument("name")
@click.option("--args", "raw_args", default="{}", show_default=True, help="Arguments as a JSON object.")
@click.option("--as", "user", default="anonymous", show_default=True, help="Who asks (policy is checked).")
@click.option("--json", "as_json", is_flag=True, help="Print the envelope as JSON.")
@handle_errors
def plan(name: str, raw_args: str, user: str, as_json: bool) -> None:
    """Show what a call would do (API calls, capacity, checks) without changing anything."""
    guard = Guard.from_settings(get_settings())
    _emit(guard.plan(name, parse_args(raw_args), caller=Caller(user=user, channel="cli")), as_json)


@tool.command()
@click.argument("name")
@click.option("--args", "raw_args", default="{}", show_default=True, help="Arguments as a JSON object.")
@click.option("--as", "user", required=True, help="Who asks; policy decides what they may do.")
@click.option("--approval", "approval_id", default=None, help="An approved approval id for exactly this call.")
@click.option(
    "--request-key",
    default=None,
    help="Idempotency key: repeating a call with the same key returns the first result.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"status", "data", "message"} as JSON.')
@handle_errors
def call(name: str, raw_args: str, user: str, approval_id: str | None, request_key: str | None, as_json: bool) -> None:
    """Call a tool through the guard (policy, approvals, audit log)."""
    guard = Guard.from_settings(get_settings())
    caller = Caller(user=user, channel="cli", request_text=f"labops tool call {name} --args {raw_args}")
    result = guard.call(name, parse_args(raw_args), caller=caller, call_id=request_key, approval_id=approval_id)
    _emit(result, as_json)
