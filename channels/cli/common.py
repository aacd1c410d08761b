"""Shared CLI plumbing: the settings object, JSON output and error reporting."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console

from core.config import Settings, load_settings
from core.errors import LabOpsError

__all__ = ["console", "echo_json", "err_console", "get_settings", "handle_errors"]

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


def echo_json(value: Any) -> None:
    """Print one JSON document to stdout."""
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn LabOpsError into a one-line message and exit code 1 (tracebacks only for bugs)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except LabOpsError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            sys.exit(1)

    return wrapper
