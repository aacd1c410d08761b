"""``labops policy check|test``, ``labops approvals list|show|approve|deny``, ``labops audit verify|tail``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Column, Table

from agent.services import Services, build_services
from channels.cli.common import EXIT_CODES, cli_caller, console, echo_json, get_settings, handle_errors
from channels.cli.tool_cmds import parse_args, render_result
from core.errors import IdentityError
from policies.approvals import ApprovalService
from policies.audit import AuditLog
from policies.engine import PolicyEngine
from policies.policytest import load_cases, run_cases
from tools.base import ToolResult

__all__ = ["approvals", "audit", "policy"]


@click.group()
def policy() -> None:
    """Check what the Cedar policies decide, and run the lab's policy test cases."""


@policy.command()
@click.option("--as", "user", default=None, help="Who asks (operators only; default: your own user).")
@click.argument("tool")
@click.option("--args", "raw_args", default="{}", show_default=True, help="Arguments as a JSON object.")
@click.option("--json", "as_json", is_flag=True, help='Print {"decision", "reasons", ...} as JSON.')
@handle_errors
def check(user: str | None, tool: str, raw_args: str, as_json: bool) -> None:
    """Show the decision (allow, needs_approval, deny) for a call, and why. Nothing runs.

    Exit codes as for `tool call`: 0 allow, 4 needs_approval, 5 deny, 1 an error in the request.
    """
    guard = build_services(get_settings()).guard
    decision = guard.check(tool, parse_args(raw_args), caller=cli_caller(user))
    if isinstance(decision, ToolResult):
        if as_json:
            echo_json(decision.model_dump(mode="json"))
        else:
            console.print(f"[red]error[/red]: {decision.message}")
        sys.exit(EXIT_CODES["error"])
    out = {**decision.as_dict(), "policy_version": guard.engine.version if guard.engine else None}
    if as_json:
        echo_json(out)
    else:
        colour = {"allow": "green", "needs_approval": "yellow"}.get(decision.decision, "red")
        console.print(f"[{colour}]{decision.decision}[/{colour}]")
        for reason in decision.reasons:
            console.print(f"  - {reason}")
        if decision.approval:
            a = decision.approval
            console.print(f"  approval by role {a.role}" + (", not the requester" if a.four_eyes else ""))
    sys.exit({"deny": EXIT_CODES["denied"], "needs_approval": EXIT_CODES["needs_approval"]}.get(decision.decision, 0))


@policy.command("test")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@handle_errors
def test_cmd(files: tuple[Path, ...]) -> None:
    """Run policy test cases (default: policies/tests/*.yaml); exit 1 if any fails."""
    engine = PolicyEngine.from_settings(get_settings())
    results = run_cases(engine, load_cases(list(files) or None))
    failed = [r for r in results if not r.passed]
    for r in failed:
        console.print(
            f"[red]FAIL[/red] {r.file}: {r.name}: expected {r.expected}, got {r.got} ({'; '.join(r.reasons)})"
        )
    console.print(
        f"{len(results) - len(failed)} of {len(results)} policy cases passed (policy version {engine.version})"
    )
    if failed:
        sys.exit(1)


@click.group()
def approvals() -> None:
    """List, show, approve and deny approval requests (ids may be shortened to a unique prefix)."""


def _service() -> ApprovalService:
    return ApprovalService.from_settings(get_settings())


@approvals.command("list")
@click.option(
    "--state",
    type=click.Choice(["pending", "approved", "used", "denied", "expired"]),
    default=None,
    help="Only approvals in this state (default: all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the approvals as JSON (every field, ids whole).")
@handle_errors
def list_approvals(state: str | None, as_json: bool) -> None:
    """Approval requests, newest first."""
    items = _service().list(state=state)  # type: ignore[arg-type]
    if as_json:
        echo_json([a.as_dict() for a in items])
        return
    # Ids are never cut short: people copy them into `approvals approve`.
    table = Table(Column("id", no_wrap=True, min_width=16), "state", "requester", "call", "needs", "expires", box=None)
    for a in items:
        left = max(0, int(a.expires - time.time())) // 60
        table.add_row(
            a.id, a.state, a.requester, escape(a.summary), a.role + (" (4 eyes)" if a.four_eyes else ""), f"{left} min"
        )
    console.print(table)


@approvals.command()
@click.argument("approval_id")
@handle_errors
def show(approval_id: str) -> None:
    """One approval request with its exact arguments."""
    echo_json(_service().get(approval_id).as_dict())


def _decide(approve: bool, approval_id: str, user: str | None, reason: str, as_json: bool) -> None:
    settings = get_settings()
    services = build_services(settings)
    guard = services.guard
    verb = "approve" if approve else "deny"
    caller = cli_caller(user, request_text=f"labops approvals {verb} {approval_id}")
    if approve:
        result = guard.approve(approval_id, caller=caller, reason=reason)
    else:
        result = guard.deny(approval_id, caller=caller, reason=reason)
    if as_json:
        echo_json(result.model_dump(mode="json"))
    else:
        render_result(result)
    if result.status == "ok":
        _continue_conversation(services, result.data["approval"], caller.user, reason)
    services.close()
    sys.exit(EXIT_CODES[result.status])


def _continue_conversation(services: Services, approval: dict[str, Any], by: str, reason: str) -> None:
    """If an agent conversation waits for this approval, let it go on (it runs as its requester)."""
    from agent.waits import Waits

    if approval["state"] not in ("approved", "denied") or Waits(services.store).find(approval["id"]) is None:
        return
    from channels.cli.agent_cmds import resume_after_approval

    resume_after_approval(services.agent, approval["id"], approval["state"], by, reason)


@approvals.command()
@click.argument("approval_id")
@click.option("--as", "user", default=None, help="Approve as this user (operators only; default: your own user).")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@click.option("--json", "as_json", is_flag=True, help="Print the envelope as JSON.")
@handle_errors
def approve(approval_id: str, user: str | None, reason: str, as_json: bool) -> None:
    """Approve a request (policy decides who may; the requester cannot where four eyes apply)."""
    _decide(True, approval_id, user, reason, as_json)


@approvals.command()
@click.argument("approval_id")
@click.option("--as", "user", default=None, help="Deny as this user (operators only; default: your own user).")
@click.option("--reason", required=True, help="Why; the requester sees it.")
@click.option("--json", "as_json", is_flag=True, help="Print the envelope as JSON.")
@handle_errors
def deny(approval_id: str, user: str | None, reason: str, as_json: bool) -> None:
    """Deny a request with a reason."""
    _decide(False, approval_id, user, reason, as_json)


@click.group()
def audit() -> None:
    """Verify and read the hash-chained audit log."""


@audit.command()
@handle_errors
def verify() -> None:
    """Check that no entry was edited, removed or reordered; exit 1 and name the entry if one was."""
    report = AuditLog.from_settings(get_settings()).verify()
    console.print(("[green]ok[/green]: " if report.ok else "[red]TAMPERED[/red]: ") + report.message)
    if not report.ok:
        sys.exit(1)


@audit.command()
@click.option("--reason", required=True, help="What happened and what was done about it (kept in the log).")
@click.option("--as", "user", default=None, help="Acknowledge as this user (operators only; default: your own user).")
@handle_errors
def acknowledge(reason: str, user: str | None) -> None:
    """Record that you have seen the break `audit verify` reports, so the log may be written again.

    Only users with the admin or operator role may. The break stays visible in `audit verify`, marked as
    acknowledged, with who acknowledged it and why.
    """
    settings = get_settings()
    caller = cli_caller(user)
    roles = PolicyEngine.from_settings(settings).user(caller.user).roles
    if not {"admin", "operator"} & set(roles):
        raise IdentityError(f"{caller.user} may not acknowledge a broken audit log: it needs the admin role")
    report = AuditLog.from_settings(settings).acknowledge(user=caller.user, reason=reason)
    console.print(("[green]ok[/green]: " if report.ok else "[red]still broken[/red]: ") + report.message)
    if not report.ok:
        sys.exit(1)


@audit.command()
@click.option("-n", "count", default=20, show_default=True, help="How many entries.")
@click.option("--json", "as_json", is_flag=True, help="Export as a JSON list.")
@handle_errors
def tail(count: int, as_json: bool) -> None:
    """The last entries of the audit log."""
    entries = AuditLog.from_settings(get_settings()).tail(count)
    if as_json:
        echo_json(entries)
        return
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["ts"]))
        what = e.get("decision") or e.get("result") or e.get("state") or ""
        console.print(
            f"{e['seq']:>5} {when} {e.get('user', '')}@{e.get('channel', '')} {e.get('event', '')} "
            f"{e.get('tool', '')} {what} {json.dumps(e.get('args', {}))[:80]}"
        )
