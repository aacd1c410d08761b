"""Entry point of the ``labops`` command: global options and the explicit list of sub-commands."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from pathlib import Path

import click

from channels.cli.common import FAST_EXIT, add_location_options, make_state

__all__ = ["cli", "main"]


# Sub-commands are imported when used: `labops search` need not load the agent, Ray or the simulator.
COMMANDS = {
    "lab": "channels.cli.lab_cmds:lab",
    "doctor": "channels.cli.doctor_cmd:doctor",
    "ask": "channels.cli.agent_cmds:ask",
    "chat": "channels.cli.agent_cmds:chat",
    "serve": "channels.cli.server_cmds:serve",
    "keys": "channels.cli.server_cmds:keys",
    "mcp": "channels.cli.mcp_cmd:mcp",
    "tool": "channels.cli.tool_cmds:tool",
    "vm": "channels.cli.vm_cmds:vm",
    "policy": "channels.cli.policy_cmds:policy",
    "approvals": "channels.cli.policy_cmds:approvals",
    "audit": "channels.cli.policy_cmds:audit",
    "incidents": "channels.cli.incidents_cmd:incidents",
    "db": "channels.cli.db_cmds:db",
    "ingest": "channels.cli.knowledge_cmds:ingest",
    "search": "channels.cli.knowledge_cmds:search",
    "eval": "channels.cli.eval_cmds:eval_command",
    "demo": "channels.cli.demo:demo",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every sub-command, in the order of :data:`COMMANDS`."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return one sub-command (None for an unknown name: click then says so)."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        add_location_options(command)
        self.add_command(command, cmd_name)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML configuration file (default: $LABOPS_CONFIG or ./labops.toml).",
)
@click.option(
    "--lab-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    envvar="LABOPS_LAB_DIR",
    help="Directory of the embedded lab's state (default .labops; env LABOPS_LAB_DIR).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None, lab_dir: Path | None) -> None:
    """LabOps: a chat-driven operations assistant for the research computing lab."""
    ctx.obj = make_state(config, lab_dir)


def main() -> None:
    """Run the CLI (the ``labops`` console script; tests drive :data:`cli` instead)."""
    FAST_EXIT.clear()  # a process that runs the CLI more than once
    try:
        cli(prog_name="labops")
    except SystemExit as exc:
        if not FAST_EXIT.is_set():
            raise
        # A read-only command that closed what it opened: skip the interpreter's teardown. Unloading pandas,
        # pyarrow and onnxruntime module by module takes ~0.2 s of a ~1.1 s `labops search` (bench/knowledge.py).
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):  # a reader that went away (`| head`): nothing left to deliver
                stream.flush()
        os._exit(code)
