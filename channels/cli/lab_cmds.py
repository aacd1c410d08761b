"""``labops lab up|status|down|reset``: the embedded lab in the background."""

from __future__ import annotations

import sys
from typing import cast

import click
from rich.table import Column, Table

from channels.cli.common import console, echo_json, err_console, get_settings
from core.config import Settings, remember_lab_dir
from core.errors import LabOpsError
from simlab import supervisor

__all__ = ["lab"]

_PART_CHOICE = click.Choice(list(supervisor.PARTS))


def _progress(message: str) -> None:
    err_console.print(f"[dim]… {message}[/dim]")


def print_status(status: dict[str, dict[str, object]]) -> None:
    table = Table("part", "status", Column("address", no_wrap=True), "pid", box=None)
    for part, info in status.items():
        colour = "green" if info["status"] == "up" else "red"
        table.add_row(
            part, f"[{colour}]{info['status']}[/{colour}]", str(info["address"] or "-"), str(info["pid"] or "-")
        )
    console.print(table)


@click.group()
def lab() -> None:
    """Run the embedded lab: simulated PVE/PBS/Kubernetes, PostgreSQL, Ray and Milvus."""


@lab.command()
@click.option(
    "--part",
    "parts",
    multiple=True,
    type=_PART_CHOICE,
    help="Start only these parts (repeatable; default all).",
)
@click.option(
    "--rows",
    type=click.IntRange(1_000, 20_000_000),
    default=200_000,
    show_default=True,
    help="Synthetic DESI DR1 objects to load (reloaded when it changes).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def up(parts: tuple[str, ...], rows: int, as_json: bool) -> None:
    """Start the embedded lab in the background and print where each part listens."""
    settings = get_settings()
    chosen = cast(tuple[supervisor.Part, ...], tuple(parts)) or supervisor.PARTS
    if settings.ray.address and "ray" in chosen and not parts:
        # A configured Ray cluster replaces the local head.
        chosen = tuple(p for p in chosen if p != "ray")
    try:
        status = supervisor.lab_up(
            settings.lab_dir,
            parts=chosen,
            rows=rows,
            ray_cpus=settings.ray.num_cpus,
            progress=_progress,
        )
    except supervisor.LabStartError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        err_console.print("What did start is recorded; `labops lab down` stops it.")
        sys.exit(1)
    remember_lab_dir(settings)
    if "milvus" in chosen and status.get("milvus", {}).get("status") == "up":
        _index_shipped_docs(settings)
    if as_json:
        echo_json(status)
        return
    console.print(f"Embedded lab in [bold]{settings.lab_dir}[/bold]:")
    print_status(status)


def _index_shipped_docs(settings: Settings) -> None:
    """Index the lab's own pages (``knowledge/docs``) so that a new lab answers documentation questions at once.

    Only changed pages are embedded again, so a second ``lab up`` costs a moment. A failure is reported and
    the lab stays up: `labops ingest knowledge/docs` can be run by hand.
    """
    from knowledge.ingest import SHIPPED_DOCS, ingest_paths

    _progress("indexing the lab's documentation (knowledge/docs)")
    try:
        report = ingest_paths(settings, [SHIPPED_DOCS])
    except LabOpsError as exc:
        err_console.print(f"[yellow]warning:[/yellow] the documentation was not indexed: {exc}; run "
                          "`labops ingest knowledge/docs` once the lab is up")  # fmt: skip
        return
    _progress(f"documentation: {report.summary()}")


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {part: {status, address, pid}}.")
def status(as_json: bool) -> None:
    """Report each part (pve, pbs, kube, postgres, ray, milvus, ollama) as up or down with its address."""
    settings = get_settings()
    result = supervisor.lab_status(settings.lab_dir)
    if as_json:
        echo_json(result)
    else:
        console.print(f"Embedded lab in [bold]{settings.lab_dir.resolve()}[/bold]:")
        print_status(result)


@lab.command()
def down() -> None:
    """Stop every part the lab started (state and data are kept)."""
    settings = get_settings()
    stopped = supervisor.lab_down(settings.lab_dir, progress=_progress)
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@lab.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(yes: bool) -> None:
    """Stop the lab and wipe its directory (simulated VMs, backups, database, secrets)."""
    settings = get_settings()
    if not yes:
        click.confirm(f"Delete {settings.lab_dir} and everything in it?", abort=True)
    supervisor.lab_reset(settings.lab_dir, progress=_progress)
    console.print(f"wiped {settings.lab_dir}")
