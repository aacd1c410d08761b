"""``labops serve`` (the HTTP service) and ``labops keys create|list|revoke`` (its API keys)."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Column, Table

from channels.cli.common import cli_caller, console, echo_json, err_console, get_settings, handle_errors
from core.errors import IdentityError
from policies.apikeys import ApiKeys
from policies.audit import AuditLog
from policies.engine import PolicyEngine
from policies.identity import OPERATOR_ROLE

__all__ = ["keys", "serve"]


@click.command()
@click.option("--host", default=None, help="Address to listen on (default server.host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default server.port, 8000; 0 picks a free one).")
@click.option("--port-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the port listened on to this file once the service accepts requests.")  # fmt: skip
@click.option("--plain-logs", is_flag=True, help="Human-readable log lines instead of JSON.")
@handle_errors
def serve(host: str | None, port: int | None, port_file: Path | None, plain_logs: bool) -> None:
    """Run the OpenAI-compatible API (OpenWebUI), the Slack bot, /healthz, /readyz and /metrics."""
    from channels.server.app import run

    settings = get_settings()
    run(settings, host=host, port=port, port_file=port_file, json_logs=not plain_logs,
        announce=lambda url: err_console.print(f"LabOps listening on {url}"))  # fmt: skip


@click.group()
def keys() -> None:
    """API keys of `labops serve` (OpenWebUI and other OpenAI clients)."""


def _me() -> tuple[str, bool]:
    """The CLI's user and whether they are an operator."""
    caller = cli_caller(None)
    directory = PolicyEngine.from_settings(get_settings()).directory
    return caller.user, OPERATOR_ROLE in directory.user(caller.user).roles


def _audit(user: str, event: str, **fields: object) -> None:
    AuditLog.from_settings(get_settings()).append({"user": user, "channel": "cli", "tool": "keys", "event": event,
                                                   **fields})  # fmt: skip


@keys.command("create")
@click.argument("name")
@click.option(
    "--as",
    "user",
    default=None,
    help="The lab user requests with this key act as (default: you; others need the operator role).",
)
@click.option(
    "--trusted-frontend",
    is_flag=True,
    help="OpenWebUI with ENABLE_FORWARD_USER_INFO_HEADERS: requests act as the user it forwards.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the key and its record as JSON.")
@handle_errors
def create_key(name: str, user: str | None, trusted_frontend: bool, as_json: bool) -> None:
    """Create a key; it is printed once (only its hash is stored)."""
    me, operator = _me()
    user = user or me
    directory = PolicyEngine.from_settings(get_settings()).directory
    if directory.user(user).roles == (OPERATOR_ROLE,):
        # An operator account only stands in for others on the command line; a key acting as it could do nothing
        # but read, and would answer "my VMs" for nobody.
        raise IdentityError(
            f"{user} has only the {OPERATOR_ROLE!r} role, which acts for others on the command line: create the key "
            "for the lab user who will use it with --as USER (or --trusted-frontend for OpenWebUI)"
            if not trusted_frontend
            else "a trusted front-end key acts as its forwarded users; give it a service owner with --as (e.g. "
            "--as openwebui-svc)"
        )
    if (user != me or trusted_frontend) and not operator:
        raise IdentityError(
            f"only users with the {OPERATOR_ROLE!r} role may create keys for others or for a trusted "
            f"front-end (you are {me}); drop --as and --trusted-frontend for a key of your own"
        )
    record, key = ApiKeys.from_settings(get_settings()).create(name, user=user, trusted_frontend=trusted_frontend)
    _audit(me, "api_key_created", key_id=record.id, key_user=user, trusted_frontend=trusted_frontend)
    if as_json:
        echo_json({"key": key, **record.as_dict()})
        return
    console.print(f"key {record.id} ({escape(name)}) acts as {escape(user)}"
                  + (" or the user a trusted front-end forwards" if trusted_frontend else ""))  # fmt: skip
    console.print("Store it now; it is not shown again:")
    click.echo(key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON (never the keys themselves).")
@handle_errors
def list_keys(as_json: bool) -> None:
    """Keys, newest first (ids and owners, never the keys)."""
    records = ApiKeys.from_settings(get_settings()).list()
    if as_json:
        echo_json([r.as_dict() for r in records])
        return
    if not records:
        console.print("no keys yet: `labops keys create openwebui --as <user> [--trusted-frontend]`")
        return
    # Ids are never cut short (people copy them): the id column does not wrap, the names do.
    table = Table(Column("id", no_wrap=True), "name", "user", "trusted front-end", "created", "last used", "state",
                  box=None)  # fmt: skip
    for r in records:

        def when(t: float | None) -> str:
            return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)) if t else "-"

        table.add_row(r.id, escape(r.name), escape(r.user), "yes" if r.trusted_frontend else "no", when(r.created),
                      when(r.last_used), "revoked" if r.revoked else "active")  # fmt: skip
    console.print(table)


@keys.command("revoke")
@click.argument("key_id")
@handle_errors
def revoke_key(key_id: str) -> None:
    """Revoke a key by its id (``key_…``, or a unique prefix of it); requests with it get 401 at once."""
    me, operator = _me()
    store = ApiKeys.from_settings(get_settings())
    found = store.find(key_id)
    if found.user != me and not operator:
        raise IdentityError(f"{found.id} acts as {found.user}; only its owner or an operator may revoke it")
    record = store.revoke(found.id)
    _audit(me, "api_key_revoked", key_id=record.id)
    console.print(f"revoked {record.id} ({escape(record.name)}, acting as {escape(record.user)})")
