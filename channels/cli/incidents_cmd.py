"""``labops incidents list|show|ack|resolve|watch``: the lab's incidents from the command line."""

from __future__ import annotations

import sys
import time

import click
from rich.markup import escape
from rich.table import Column, Table

from channels.cli.common import EXIT_CODES, cli_caller, console, echo_json, get_settings, handle_errors
from core.incidents import IncidentStore, as_json

__all__ = ["incidents"]

_COLOUR = {"critical": "red", "warning": "yellow", "info": "blue"}


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) if epoch else "-"


@click.group()
def incidents() -> None:
    """What the watchers and Alertmanager found broken: list, show, acknowledge, resolve, watch."""


@incidents.command("list")
@click.option("--all", "every", is_flag=True, help="Resolved incidents too (default: open and acknowledged).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "json_out", is_flag=True, help="Print the incidents as JSON.")
@handle_errors
def list_(every: bool, limit: int, json_out: bool) -> None:
    """Incidents, worst and newest first."""
    found = IncidentStore.from_settings(get_settings()).find(state="all" if every else "active", limit=limit)
    if json_out:
        echo_json([as_json(i) for i in found])
        return
    if not found:
        console.print("no incidents" if every else "no open incidents (`--all` shows resolved ones)")
        return
    table = Table("id", "state", "severity", Column("title", overflow="fold"), "opened", "fixes")
    for i in found:
        colour = _COLOUR[i.severity]
        table.add_row(i.id, i.state, f"[{colour}]{i.severity}[/{colour}]", escape(i.title), _when(i.opened),
                      ", ".join(f.tool for f in i.fixes) or "-")  # fmt: skip
    console.print(table)


@incidents.command()
@click.argument("incident_id")
@click.option("--json", "json_out", is_flag=True, help="Print the incident as JSON.")
@handle_errors
def show(incident_id: str, json_out: bool) -> None:
    """One incident: what was found, the investigation's facts, the runbook, the fixes it offers."""
    incident = IncidentStore.from_settings(get_settings()).get(incident_id)
    if json_out:
        echo_json(as_json(incident))
        return
    console.print(f"[bold]{escape(incident.title)}[/bold]  ({incident.id}, {incident.severity}, {incident.state})")
    console.print(f"opened {_when(incident.opened)} by {incident.source}; seen {incident.seen} times")
    if incident.detail:
        console.print(escape(incident.detail))
    investigation = incident.investigation or {}
    for fact in investigation.get("facts", []):
        console.print("  " + escape(f"[{fact['tool']}] {fact['message']}"))
    runbook = investigation.get("runbook")
    if runbook:
        console.print(f"runbook {escape(runbook['citation'])}:")
        console.print(escape(str(runbook["text"])))
    for fix in incident.fixes:
        console.print(
            f"fix [bold]{fix.id}[/bold]: {escape(fix.summary)}  (`labops incidents fix {incident.id} {fix.id}`)"
        )
    if incident.state == "resolved":
        console.print(
            f"resolved {_when(incident.resolved_at)} by {incident.resolved_by}: {escape(incident.resolution or '')}"
        )


def _decide(incident_id: str, verb: str, user: str | None, reason: str, json_out: bool) -> None:
    from agent.services import build_services

    services = build_services(get_settings())
    try:
        caller = cli_caller(user, request_text=f"labops incidents {verb} {incident_id}")
        if verb == "fix":
            result = services.incidents.fix(incident_id, reason, caller=caller)
        else:
            result = services.incidents.decide(incident_id, verb, caller=caller, reason=reason)  # type: ignore[arg-type]
    finally:
        services.close()
    if json_out:
        echo_json(result.model_dump(mode="json"))
    else:
        colour = "green" if result.status == "ok" else "yellow" if result.status == "needs_approval" else "red"
        console.print(f"[{colour}]{result.status}[/{colour}]: {escape(result.message)}")
    sys.exit(EXIT_CODES.get(result.status, 1))


@incidents.command()
@click.argument("incident_id")
@click.option("--as", "user", default=None, help="Act as this lab user (operators only).")
@click.option("--json", "json_out", is_flag=True)
@handle_errors
def ack(incident_id: str, user: str | None, json_out: bool) -> None:
    """Say you are looking at an incident (policy: lab members)."""
    _decide(incident_id, "acknowledge", user, "", json_out)


@incidents.command()
@click.argument("incident_id")
@click.option("--reason", required=True, help="Why it is resolved (kept on the incident and in the audit log).")
@click.option("--as", "user", default=None, help="Act as this lab user (operators only).")
@click.option("--json", "json_out", is_flag=True)
@handle_errors
def resolve(incident_id: str, reason: str, user: str | None, json_out: bool) -> None:
    """Resolve an incident by hand (policy: admins). A problem still present opens a new one at the next check."""
    _decide(incident_id, "resolve", user, reason, json_out)


@incidents.command()
@click.argument("incident_id")
@click.argument("fix_id")
@click.option("--as", "user", default=None, help="Act as this lab user (operators only).")
@click.option("--json", "json_out", is_flag=True)
@handle_errors
def fix(incident_id: str, fix_id: str, user: str | None, json_out: bool) -> None:
    """Run one of an incident's fixes (the guarded call it stores), as you: policy decides, as for any call."""
    _decide(incident_id, "fix", user, fix_id, json_out)


@incidents.command()
@click.option(
    "--watcher", "names", multiple=True, help="Run only this watcher (repeatable); default: the enabled ones."
)
@click.option("--once", is_flag=True, help="One check of each, then exit (cron, tests); default: until Ctrl-C.")
@click.option("--json", "json_out", is_flag=True, help="With --once: print each watcher's report as JSON.")
@handle_errors
def watch(names: tuple[str, ...], once: bool, json_out: bool) -> None:
    """Run the watchers: findings become incidents, what cleared is resolved (Slack told when configured)."""
    import dataclasses

    from agent.incidents.schedule import Watching
    from agent.services import build_services
    from channels.server.incident_slack import IncidentPoster

    settings = get_settings()
    services = build_services(settings)
    desk = services.incidents
    desk.listeners.append(IncidentPoster(settings, desk.store))
    try:
        if names and not once:
            console.print("--watcher needs --once; to run a watcher all the time, enable it in alerts.watchers")
            sys.exit(1)
        if once:
            reports = desk.run_cycle(list(names) or None)
            if not reports:
                console.print("no watcher is enabled: set alerts.watchers.<name>.enabled, or name one with --watcher")
                sys.exit(1)
            if json_out:
                echo_json([dataclasses.asdict(r) for r in reports])
            else:
                for r in reports:
                    state = "ok" if r.ok else f"[red]failed[/red]: {escape(r.error or '')}"
                    console.print(f"{r.watcher}: {state}; {r.seen} problems seen, {len(r.opened)} opened, "
                                  f"{len(r.changed)} changed, {len(r.resolved)} resolved")  # fmt: skip
            sys.exit(0 if all(r.ok for r in reports) else 1)
        watching = Watching(desk, on_cycle=lambda r: console.print(
            f"{_when(time.time())} {r.watcher}: {'ok' if r.ok else 'failed: ' + (r.error or '')}; "
            f"{len(r.opened)} opened, {len(r.resolved)} resolved"))  # fmt: skip
        if not watching.enabled:
            console.print("no watcher is enabled: set alerts.watchers.<name>.enabled (or use --watcher NAME --once)")
            sys.exit(1)
        console.print(f"watching: {', '.join(watching.enabled)} (Ctrl-C stops)")
        watching.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            watching.stop()
    finally:
        services.close()
