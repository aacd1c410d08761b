"""``labops tool list|plan|call``: the guarded tools without the LLM.

Output: a human summary by default, or with ``--json`` the envelope ``{"status", "data", "message"}``
and nothing else. Exit codes (:data:`channels.cli.common.EXIT_CODES`), the same for every command: 0 ``ok``
/``no_data``/allowed, 1 ``error`` (also a plan that is not feasible), 4 ``needs_approval``, 5 ``denied``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from agent.services import build_services
from channels.cli.common import EXIT_CODES, cli_caller, console, echo_json, get_settings, handle_errors
from core.errors import IdentityError, InvalidArguments
from policies.calls import MAX_ARGS_BYTES
from tools.base import ToolResult
from tools.registry import all_tools

__all__ = ["parse_args", "render_result", "tool"]


def parse_args(raw: str) -> dict[str, Any]:
    """``--args`` as a JSON object; InvalidArguments naming the problem and an example."""
    if len(raw.encode()) > MAX_ARGS_BYTES:
        raise InvalidArguments(f"--args is {len(raw.encode())} bytes; the limit is {MAX_ARGS_BYTES} bytes")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidArguments(
            f"--args is not valid JSON ({exc.msg} at column {exc.colno}); example: --args '{{\"vmid\": 105}}'"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidArguments("--args must be a JSON object, e.g. --args '{\"vmid\": 105}'")
    return value


def _rows(data: Any) -> list[dict[str, Any]] | None:
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return data
    return None


def render_result(result: ToolResult) -> None:
    """The human form: status and message, then a compact table of list data (never raw JSON)."""
    colour = {"ok": "green", "no_data": "yellow", "needs_approval": "yellow"}.get(result.status, "red")
    first, *rest = result.message.splitlines() or [""]
    console.print(f"[{colour}]{result.status}[/{colour}]: {escape(first)}")
    for line in rest:
        console.print(f"  {escape(line)}")
    rows = _rows(result.data)
    if rows:
        keys = [k for k in rows[0] if not isinstance(rows[0][k], dict | list)][:8]
        table = Table(*keys, box=None)
        for row in rows[:50]:
            table.add_row(*(escape(str(row.get(k, ""))) for k in keys))
        console.print(table)
        if len(rows) > 50:
            console.print(f"  … {len(rows) - 50} more rows (use --json for all)")


def _emit(result: ToolResult, as_json: bool) -> None:
    if as_json:
        echo_json(result.model_dump(mode="json"))
    else:
        render_result(result)
    sys.exit(EXIT_CODES[result.status])


@click.group()
def tool() -> None:
    """List, plan (dry-run) and call the guarded tools."""


@tool.command("list")
@click.option("--json", "as_json", is_flag=True, help="Name, risk, description and argument JSON schema.")
def list_tools(as_json: bool) -> None:
    """List every tool with its risk."""
    tools = all_tools(get_settings())
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


_AS_HELP = "Act as this lab user (operators only; default: the user your OS account maps to in lab.toml)."


@tool.command()
@click.argument("name")
@click.option("--args", "raw_args", default="{}", show_default=True, help="Arguments as a JSON object.")
@click.option("--as", "user", default=None, help=_AS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the envelope as JSON.")
@handle_errors
def plan(name: str, raw_args: str, user: str | None, as_json: bool) -> None:
    """Show what a call would do (API calls, capacity, checks) and what policy would decide; changes nothing.

    Exit codes mean what they mean for `tool call`: 0 feasible and allowed; 4 feasible, needs an approval;
    5 policy would deny it; 1 not feasible (the failed checks say why) or bad arguments.
    """
    guard = build_services(get_settings()).guard
    result = guard.plan(name, parse_args(raw_args), caller=cli_caller(user))
    data = result.data if isinstance(result.data, dict) else {}
    checks = data.get("checks", [])
    feasible = all(c.get("passed") for c in checks)
    decision = (data.get("policy") or {}).get("decision")
    if as_json:
        echo_json(result.model_dump(mode="json"))
    elif result.status != "ok":
        render_result(result)
    else:
        _print_plan(data, feasible)
    if result.status != "ok":
        sys.exit(EXIT_CODES[result.status])
    if not feasible:
        sys.exit(EXIT_CODES["error"])
    sys.exit({"deny": EXIT_CODES["denied"], "needs_approval": EXIT_CODES["needs_approval"]}.get(str(decision), 0))


def _print_plan(data: dict[str, Any], feasible: bool) -> None:
    """A plan for people: what it would do, whether it can, why not, the capacity, the API calls, policy."""
    verdict = "[green]feasible[/green]" if feasible else "[red]not feasible[/red]"
    console.print(f"plan: {escape(str(data.get('summary', '')))} — {verdict}")
    for check in data.get("checks", []):
        mark = "[green]✓[/green]" if check.get("passed") else "[red]✗[/red]"
        console.print(f"  {mark} {escape(str(check.get('name')))}: {escape(str(check.get('detail')))}")
    capacity = data.get("capacity") or {}
    if capacity:
        console.print("  capacity: " + ", ".join(f"{escape(str(k))} {escape(str(v))}" for k, v in capacity.items()))
    for line in data.get("api_calls", []):
        console.print(f"  api: {escape(line)}")
    policy = data.get("policy") or {}
    colour = {"allow": "green", "needs_approval": "yellow"}.get(str(policy.get("decision")), "red")
    console.print(f"  policy: [{colour}]{policy.get('decision')}[/{colour}]")
    for reason in policy.get("reasons", []):
        console.print(f"    - {escape(str(reason))}")


@tool.command()
@click.argument("name")
@click.option("--args", "raw_args", default="{}", show_default=True, help="Arguments as a JSON object.")
@click.option("--as", "user", default=None, help=_AS_HELP)
@click.option("--approval", "approval_id", default=None, help="An approved approval id for exactly this call.")
@click.option(
    "--request-key",
    default=None,
    help="Idempotency key: repeating a call with the same key returns the first result.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"status", "data", "message"} as JSON.')
@handle_errors
def call(
    name: str, raw_args: str, user: str | None, approval_id: str | None, request_key: str | None, as_json: bool
) -> None:
    """Call a tool through the guard (policy, approvals, audit log)."""
    guard = build_services(get_settings()).guard
    text = f"labops tool call {name} --args {raw_args[:2000]}"
    try:
        caller = cli_caller(user, request_text=text)
    except IdentityError as exc:
        # Refused before the guard could judge it, but still on record (with who really asked).
        guard.refuse(name, {"as": user}, caller=cli_caller(None, request_text=text), reason=str(exc))
        raise
    try:
        args = parse_args(raw_args)
    except InvalidArguments as exc:
        guard.refuse(name, {"unparsed": raw_args[:500]}, caller=caller, reason=str(exc))
        raise
    result = guard.call(name, args, caller=caller, call_id=request_key, approval_id=approval_id)
    _emit(result, as_json)
