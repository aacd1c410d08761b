"""``labops vm reconcile``: LabOps-made VMs that no finished request accounts for."""

from __future__ import annotations

import sys

import click
from rich.markup import escape
from rich.table import Column, Table

from channels.cli.common import console, echo_json, get_settings, handle_errors

__all__ = ["vm"]


@click.group()
def vm() -> None:
    """Operator views of the VMs LabOps made."""


@vm.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@handle_errors
def reconcile(as_json: bool) -> None:
    """List VMs that a cut-off provision left behind, and what to do; exit 1 if there are any."""
    from policies.reconcile import orphans

    found = orphans(get_settings())
    if as_json:
        echo_json(found)
    elif not found:
        console.print("every VM LabOps made is accounted for by a finished (or running) request")
    else:
        table = Table("vmid", "name", "owner", Column("request key", no_wrap=True), "status", "what to do", box=None)
        for o in found:
            table.add_row(str(o["vmid"]), o["name"], o["owner"], str(o["request_key"] or "-"), o["status"],
                          escape(o["reason"]))  # fmt: skip
        console.print(table)
    if found:
        sys.exit(1)
