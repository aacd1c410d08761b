"""The ``labops serve`` application: one FastAPI app with the OpenAI API, MCP, the Slack bot and the ops routes."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import Route

from agent.incidents import DeskEvent
from agent.incidents.schedule import Watching
from agent.runtime import Agent
from channels.server import alerts_http, openai_api, ops, slack_bot
from channels.server.incident_slack import IncidentPoster
from channels.server.mcp_http import McpEndpoint
from channels.server.slack_render import escape
from channels.server.state import ServerState
from core.config import Settings

__all__ = ["create_app", "run"]

log = logging.getLogger(__name__)
lifecycle = logging.getLogger("labops.serve")


def create_app(settings: Settings, *, agent: Agent | None = None) -> FastAPI:
    """The service over ``settings`` (an ``agent`` may be given, e.g. one with a scripted model)."""
    state = ServerState.build(settings, agent=agent)
    mcp = McpEndpoint(state)
    bot = slack_bot.SlackBot(state) if settings.slack.signing_secret is not None else None
    desk = state.services.incidents
    desk.listeners.append(IncidentPoster(settings, desk.store, client=bot.client if bot else None,
                                         mention=bot.mention if bot else escape))  # fmt: skip

    def count(events: list[DeskEvent]) -> None:
        for event in events:
            state.metrics.incident_changes.labels(event.kind).inc()

    desk.listeners.append(count)
    watching = Watching(desk, on_cycle=lambda r: state.metrics.watcher_cycles.labels(r.watcher, "ok" if r.ok
                                                                                      else "failed").inc())  # fmt: skip
    intake = alerts_http.AlertIntake(state)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        watching.start()
        # The model server evaluates the start every tool prompt shares now, not during the first question.
        threading.Thread(target=state.agent.warm_up, name="model-warm-up", daemon=True).start()
        async with mcp.manager.run():
            yield
        lifecycle.info("shutting down: stopping the watchers, closing the agent, its model client and its stores")
        watching.stop()
        intake.close()
        state.close()

    app = FastAPI(title="LabOps", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.labops = state
    app.state.slack = bot
    app.state.alerts = intake
    ops.install_middleware(app)
    app.include_router(ops.router)
    app.include_router(openai_api.router)
    app.include_router(slack_bot.router)
    app.include_router(alerts_http.router)
    # MCP's Streamable HTTP transport is an ASGI app of its own (one endpoint for POST, GET and DELETE).
    app.router.routes.append(Route("/mcp", endpoint=mcp, methods=["GET", "POST", "DELETE"]))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return openai_api.error(400, f"invalid request: {exc.errors()[:3]}", "invalid_request_error")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # Boundary: a bug is logged with its traceback and answered in OpenAI's shape, never as a hang.
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return openai_api.error(500, f"internal error (request id {getattr(request.state, 'request_id', '?')}); "
                                "it is logged", "server_error")  # fmt: skip

    return app


def run(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    port_file: Path | None = None,
    json_logs: bool = True,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted. The socket is bound before the app starts, so port 0 works and is reported."""
    ops.configure_logging(settings, json_logs=json_logs)
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    app = create_app(settings)
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    url = f"http://{host}:{bound}"

    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets=sockets)
        if port_file is not None:
            tmp = port_file.with_suffix(".tmp")
            tmp.write_text(str(bound))
            tmp.replace(port_file)
        if announce is not None:
            announce(url)
        lifecycle.info("listening on %s (OpenAI API %s/v1, Slack %s/slack/events, MCP %s/mcp)", url, url, url, url)

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])
