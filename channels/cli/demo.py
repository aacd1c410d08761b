"""``labops demo``: start the embedded lab and walk through a scripted session of what is built so far.

The demo is a script of real calls, not a recording: tool calls go through the same guard a chat or
Slack request uses, against the embedded lab (or a real lab when configured). A failing step is
reported and the demo goes on; the exit code is 1 if any step did not behave as scripted. Later
issues (policy and approvals, knowledge, the agent) add their steps here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import click
import psycopg
from rich.panel import Panel

from channels.cli.common import console, get_settings, handle_errors
from core.config import Settings
from core.endpoints import postgres_dsn
from core.errors import LabOpsError
from policies.guard import Caller, Guard
from tools.base import ToolResult

__all__ = ["demo"]


@dataclass(kw_only=True)
class _Session:
    """The demo's guard, and what did not go as scripted."""

    settings: Settings
    guard: Guard
    failures: list[str] = field(default_factory=list)

    def call(self, user: str, text: str, tool: str, args: dict[str, Any], *, expect: set[str]) -> ToolResult:
        """One request through the guard, printed as the user's words and the envelope."""
        console.print(f"\n[bold cyan]{user}[/bold cyan] asks: [italic]{text}[/italic]")
        console.print(f"  → {tool} {json.dumps(args)}")
        result = self.guard.call(tool, args, caller=Caller(user=user, channel="cli", request_text=text))
        colour = {"ok": "green", "no_data": "yellow"}.get(result.status, "red")
        first, *rest = result.message.splitlines() or [""]
        console.print(f"  [{colour}]{result.status}[/{colour}]: {first}")
        for line in rest[:8]:
            console.print(f"    {line}")
        if result.status not in expect:
            self.failures.append(f"{tool} as {user}: expected {'/'.join(sorted(expect))}, got {result.status}")
        return result

    def expect(self, ok: bool, what: str) -> None:
        """Record and print a scripted expectation."""
        console.print(f"  {'[green]✓[/green]' if ok else '[red]✗[/red]'} {what}")
        if not ok:
            self.failures.append(what)


def _vms(s: _Session) -> None:
    nodes = s.call("researcher1", "Which nodes have room for a new VM?", "vm.nodes", {}, expect={"ok"})
    s.expect(any(n["status"] == "offline" for n in nodes.data or []), "the two arriving nodes show as offline")
    mine = s.call("researcher1", "Which VMs are mine?", "vm.list", {"owner": "researcher1"}, expect={"ok"})
    s.expect(all(v["owner"] == "researcher1" for v in mine.data or []), "only researcher1's VMs, by their owner tag")
    s.call("researcher2", "Tell me about proj-pg01", "vm.show", {"vmid": 110}, expect={"ok"})
    s.call("researcher2", "Show VM 4242", "vm.show", {"vmid": 4242}, expect={"error"})


def _backups(s: _Session) -> None:
    check = s.call("admin1", "Are our backups healthy?", "backup.check", {}, expect={"ok"})
    found = (check.data or {}).get("by_problem", {})
    s.expect(
        bool(found.get("failed")) and bool(found.get("stale")), "the failed and stale backups are found, worst first"
    )
    s.call("admin1", "Show me the backup schedule", "backup.jobs", {}, expect={"ok"})
    s.call("admin1", "How full is the backup datastore?", "backup.datastore", {}, expect={"ok"})


def _desi(s: _Session) -> None:
    schema = s.settings.postgres.schema_name
    dsn = postgres_dsn(s.settings)  # the SELECT-only role the DESI tools use
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT spectype, count(*) FROM {schema}.zpix WHERE zcat_primary AND zwarn = 0 "
            "GROUP BY spectype ORDER BY 2 DESC"
        ).fetchall()
        console.print(
            "\n  good unique redshifts by class (as the read-only role): " + ", ".join(f"{t} {n:,}" for t, n in rows)
        )
        s.expect(len(rows) == 3, "GALAXY, QSO and STAR are all present")
        conn.rollback()
        try:
            conn.execute(f"DELETE FROM {schema}.zpix")
            s.expect(False, "the read-only role must not delete")
        except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
            s.expect(True, f"a DELETE as the read-only role is refused by PostgreSQL ({exc.diag.message_primary})")


def _step(s: _Session, title: str, body: Any) -> None:
    console.print()
    console.print(Panel(title, style="bold"))
    try:
        body(s)
    except (LabOpsError, psycopg.Error) as exc:
        # A failing backend is reported and the demo goes on with the next step.
        console.print(f"  [red]error:[/red] {exc}")
        s.failures.append(f"{title}: {exc}")


@click.command()
@click.option("--rows", default=200_000, show_default=True, help="Synthetic DESI objects to load.")
@click.option("--down-after", is_flag=True, help="Stop the lab at the end (default: leave it running).")
@handle_errors
def demo(rows: int, down_after: bool) -> None:
    """Start the embedded lab and run a scripted session through every part built so far."""
    from channels.cli.lab_cmds import print_status
    from channels.doctor import run_checks
    from simlab.supervisor import lab_down, lab_up

    settings = get_settings()
    console.print(Panel("1. The embedded lab", style="bold"))
    print_status(lab_up(settings.lab_dir, rows=rows, progress=lambda msg: console.print(f"  {msg} …")))

    session = _Session(settings=settings, guard=Guard.from_settings(settings))
    console.print()
    console.print(Panel("2. Doctor: every backend reachable?", style="bold"))
    for check in run_checks(settings):
        mark = "[green]ok[/green]" if check.ok else "[red]down[/red]"
        console.print(f"  {check.backend:11} {mark}  {check.address}  {check.version}")
        if check.required and not check.ok:
            session.failures.append(f"doctor: {check.backend} is down ({check.detail})")

    _step(session, "3. VMs on the Proxmox VE cluster (simulated, over HTTPS with proxmoxer)", _vms)
    _step(session, "4. Backups (PBS and PVE APIs): the ten-second check", _backups)
    _step(session, "5. The DESI DR1 tables in PostgreSQL", _desi)

    if down_after:
        lab_down(settings.lab_dir)
    console.print()
    if session.failures:
        console.print(Panel("\n".join(session.failures), title="steps that did not go as scripted", style="red"))
        raise SystemExit(1)
    after = (
        "The lab is stopped."
        if down_after
        else "The lab is still running: try `labops tool list`, "
        "`labops tool call backup.check --as admin1`, or stop it with `labops lab down`."
    )
    console.print(Panel(f"Every step behaved as scripted. {after}", style="green"))
