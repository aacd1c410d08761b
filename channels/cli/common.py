"""Shared CLI plumbing: the settings object, JSON output and error reporting."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.markup import escape as rich_escape

from core.config import Settings, load_settings
from core.errors import LabOpsError

if TYPE_CHECKING:
    from policies.guard import Caller

__all__ = [
    "EXIT_CODES",
    "add_location_options",
    "cli_caller",
    "console",
    "echo_json",
    "err_console",
    "get_settings",
    "handle_errors",
]

# Exit codes a script can branch on; the envelope's status says the same in words.
EXIT_CODES = {"ok": 0, "no_data": 0, "error": 1, "needs_approval": 4, "denied": 5}
# Set by a read-only command once it has closed everything it opened: the console script may then end without
# the interpreter's teardown (see ``channels.cli.main.main``).
FAST_EXIT = threading.Event()


console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)

P = ParamSpec("P")
R = TypeVar("R")


class _State:
    """What the root group parsed; settings are loaded on first use."""

    def __init__(self, config: Path | None, lab_dir: Path | None) -> None:
        self.config = config
        self.lab_dir = lab_dir
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config, lab_dir=self.lab_dir)
            logging.basicConfig(
                level=self._settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
            # Milvus Lite's embedded gRPC server logs a traceback for every call it does not implement
            # (AllocTimestamp, which pymilvus tries first and then does without): noise, not a problem.
            logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        return self._settings


def get_settings(ctx: click.Context | None = None) -> Settings:
    """The settings of this invocation (``--config``, ``--lab-dir``, environment, ``labops.toml``)."""
    ctx = ctx or click.get_current_context()
    state = ctx.find_object(_State)
    if state is None:
        # A sub-group invoked on its own (e.g. in a test): defaults plus the environment.
        state = _State(None, None)
        ctx.obj = state
    return state.settings()


def make_state(config: Path | None, lab_dir: Path | None) -> _State:
    """Root-group state holder."""
    return _State(config, lab_dir)


def _root_state(ctx: click.Context) -> _State:
    root = ctx.find_root()
    if not isinstance(root.obj, _State):
        root.obj = _State(None, None)
    return root.obj


def _set_lab_dir(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _root_state(ctx).lab_dir = value


def _set_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _root_state(ctx).config = value


def add_location_options(command: click.Command) -> None:
    """Let ``--lab-dir`` and ``--config`` also follow the sub-command (``labops lab status --lab-dir X``)."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_location_options(sub)
        return
    names = {opt for param in command.params for opt in getattr(param, "opts", [])}
    if "--lab-dir" not in names:
        command.params.append(
            click.Option(
                ["--lab-dir"],
                type=click.Path(path_type=Path, file_okay=False),
                expose_value=False,
                is_eager=True,
                callback=_set_lab_dir,
                help="Directory of the embedded lab (same as before the sub-command).",
            )
        )
    if "--config" not in names:
        command.params.append(
            click.Option(
                ["--config"],
                type=click.Path(path_type=Path, dir_okay=False),
                expose_value=False,
                is_eager=True,
                callback=_set_config,
                help="TOML configuration file (same as before the sub-command).",
            )
        )


def cli_caller(claimed: str | None, request_text: str | None = None) -> Caller:
    """The CLI's caller: the operating-system account's lab user, or ``--as`` for operators."""
    # Imported here: the policy engine (Cedar, the tool registry) is not needed by every command.
    from policies.engine import PolicyEngine
    from policies.guard import Caller
    from policies.identity import cli_identity, os_account

    account = os_account()
    identity = cli_identity(PolicyEngine.from_settings(get_settings()).directory, claimed=claimed, account=account)
    return Caller(user=identity.user, real_user=identity.real_user, channel="cli", request_text=request_text,
                  origin={"os_account": account})  # fmt: skip


def echo_json(value: Any) -> None:
    """Print one JSON document to stdout."""
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn LabOpsError into a one-line message and exit code 1 (tracebacks only for bugs).

    Under ``--json`` the refusal is the envelope ``{"status": "error", "data": null, "message"}`` on stdout,
    so a script reading JSON gets JSON whatever went wrong.
    """

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except LabOpsError as exc:
            ctx = click.get_current_context(silent=True)
            if ctx is not None and ctx.params.get("as_json"):
                echo_json({"status": "error", "data": None, "message": str(exc)})
            else:
                err_console.print(f"[red]error:[/red] {rich_escape(str(exc))}")
            sys.exit(EXIT_CODES["error"])

    return wrapper
