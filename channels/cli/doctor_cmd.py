"""``labops doctor``: a table of every backend, reachable or not, and the setting to fix."""

from __future__ import annotations

import dataclasses
import sys

import click
from rich.table import Column, Table

from channels.cli.common import console, echo_json, get_settings
from channels.doctor import run_checks

__all__ = ["doctor"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON list.")
def doctor(as_json: bool) -> None:
    """Check every configured backend; exit 1 when a required one is down."""
    checks = run_checks(get_settings())
    if as_json:
        echo_json([dataclasses.asdict(c) for c in checks])
    else:
        # Addresses are never cut short: people copy them.
        table = Table("backend", "status", Column("address", no_wrap=True), "version", "detail / fix", box=None)
        for c in checks:
            if c.ok:
                status = "[green]ok[/green]"
            else:
                status = "[red]down[/red]" if c.required else "[yellow]down (optional)[/yellow]"
            table.add_row(c.backend, status, c.address, c.version, c.detail if c.ok else f"{c.detail}\n→ {c.fix}")
        console.print(table)
    if any(c.required and not c.ok for c in checks):
        sys.exit(1)
