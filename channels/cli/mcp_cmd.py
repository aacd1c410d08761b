"""``labops mcp``: the guarded tools over MCP on stdin/stdout, for desktop and editor assistants.

The assistant starts this command; it acts as the operating-system user the CLI maps (``policies/lab.toml``,
``os_users``), like every other command. stdout carries the protocol only: logs go to stderr.
"""

from __future__ import annotations

import dataclasses
import logging
import sys

import click

from channels.cli.common import cli_caller, get_settings, handle_errors

__all__ = ["mcp"]


@click.command()
@click.option("--as", "user", default=None, help="Act as this lab user (operators only; default: your own user).")
@handle_errors
def mcp(user: str | None) -> None:
    """Serve the guarded tools and the lab's pages over MCP on stdin/stdout (a client starts this command)."""
    import anyio
    from mcp.server.stdio import stdio_server

    from agent.services import build_services
    from channels.mcp.server import McpBackend, build_server
    from tools.registry import all_tools

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="labops mcp: %(levelname)s %(message)s")
    settings = get_settings()
    base = cli_caller(user, request_text="labops mcp")
    caller = dataclasses.replace(base, channel="mcp", origin={**(base.origin or {}), "transport": "stdio"})
    services = build_services(settings)
    backend = McpBackend(
        guard=services.guard,
        tools=all_tools(settings),
        docs=services.docs,
        caller_of=lambda _ctx, text: dataclasses.replace(caller, request_text=text),
    )
    server = build_server(backend, version="0.1.0")

    async def serve() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    try:
        anyio.run(serve)
    except KeyboardInterrupt:
        pass
    finally:
        services.close()
