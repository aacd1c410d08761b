"""``labops db status|upgrade``: the store's schema version, and bringing an older store up to date."""

from __future__ import annotations

import sys

import click

from channels.cli.common import console, echo_json, get_settings, handle_errors
from core.store import SCHEMA_VERSION, Database, schema_status

__all__ = ["db"]


@click.group()
def db() -> None:
    """The store of approvals, the audit log, keys and chats (SQLite in the lab directory, or audit.database_url)."""


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print {where, version, current, pending} as JSON.")
@handle_errors
def status(as_json: bool) -> None:
    """The store's schema version against this LabOps's; exit 1 when it needs an upgrade or is newer."""
    found = schema_status(Database.from_settings(get_settings()))
    if as_json:
        echo_json({"where": found.where, "version": found.version, "current": found.current,
                   "pending": [m.version for m in found.pending]})  # fmt: skip
    else:
        console.print(found.message)
        if found.pending:
            console.print("Run `labops db upgrade` (every LabOps process also upgrades it when it first opens it).")
    sys.exit(0 if found.version == SCHEMA_VERSION else 1)


@db.command()
@handle_errors
def upgrade() -> None:
    """Apply the schema's pending migrations in place (data kept); a no-op on a current store."""
    database = Database.from_settings(get_settings())
    before = schema_status(database)
    database.ensure_schema()
    after = schema_status(database)
    applied = [m for m in before.pending if m.version <= after.version]
    if not applied:
        console.print(after.message)
        return
    for migration in applied:
        console.print(f"applied {migration.version}: {migration.description}")
    console.print(after.message)
