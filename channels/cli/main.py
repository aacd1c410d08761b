"""Entry point of the ``labops`` command: global options and the explicit list of sub-commands."""

from __future__ import annotations

from pathlib import Path

import click

from channels.cli.agent_cmds import ask, chat
from channels.cli.common import add_location_options, make_state
from channels.cli.demo import demo
from channels.cli.doctor_cmd import doctor
from channels.cli.eval_cmds import eval_command
from channels.cli.knowledge_cmds import ingest, search
from channels.cli.lab_cmds import lab
from channels.cli.policy_cmds import approvals, audit, policy
from channels.cli.server_cmds import keys, serve
from channels.cli.tool_cmds import tool
from channels.cli.vm_cmds import vm

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


for command in (
    lab,
    doctor,
    ask,
    chat,
    serve,
    keys,
    tool,
    vm,
    policy,
    approvals,
    audit,
    ingest,
    search,
    eval_command,
    demo,
):
    add_location_options(command)
    cli.add_command(command)


def main() -> None:
    """Run the CLI."""
    cli(prog_name="labops")
