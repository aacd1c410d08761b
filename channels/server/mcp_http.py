"""``/mcp`` on ``labops serve``: the MCP server over Streamable HTTP, behind the service's API keys.

Every request needs ``Authorization: Bearer <key>`` (401 otherwise, before any MCP message is read); the key's
user acts, or, on a key marked as a trusted front-end, the forwarded OpenWebUI user, exactly as for the
OpenAI-compatible API. The transport is stateless with JSON responses: any replica can answer any request,
and a revoked key stops working on the next request, whatever session the client thinks it has.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from channels.mcp.server import McpBackend, build_server
from channels.server.identity import Identified, identify
from channels.server.state import ServerState
from policies.guard import Caller
from tools.base import ToolResult
from tools.registry import all_tools

__all__ = ["McpEndpoint"]

log = logging.getLogger(__name__)
_IDENTITY = "labops_mcp_identity"


class McpEndpoint:
    """The ASGI endpoint of ``/mcp``; ``manager.run()`` must be entered for the app's lifetime."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        backend = McpBackend(
            guard=state.services.guard,
            tools=all_tools(state.settings),
            docs=state.services.docs,
            caller_of=self._caller,
            on_result=self._result,
        )
        self.manager = StreamableHTTPSessionManager(
            app=build_server(backend, version="0.1.0"),
            stateless=True,
            json_response=True,
            # DNS-rebinding protection guards unauthenticated local servers against web pages; every request
            # here needs a bearer key, which a page cannot send, and the service is reached by many host names.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._app = StreamableHTTPASGIApp(self.manager)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the bearer key, then hand the request to the MCP transport."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        who = await run_in_threadpool(
            identify, self.state.settings, self.state.keys, headers, known=self.state.known_user
        )
        if who is None:
            await _reply(send, 401, "Incorrect or missing API key: send `Authorization: Bearer <key>`; an operator "
                         "creates keys with `labops keys create NAME --as USER`.")  # fmt: skip
            return
        if who.refused is not None:
            caller = Caller(user=who.user, channel="mcp", request_text="POST /mcp", origin=who.origin)
            await run_in_threadpool(self.state.agent.guard.refuse_identity, caller=caller, reason=who.refused)
            log.warning("refused a forwarded identity on key %s: %s", who.key.id, who.refused)
            await _reply(send, 401, f"Forwarded user refused: {who.refused}.")
            return
        scope.setdefault("state", {})[_IDENTITY] = who
        await self._app(scope, receive, send)

    def _caller(self, ctx: ServerRequestContext[Any, Any], text: str) -> Caller | ToolResult:
        request = ctx.request
        who: Identified | None = getattr(getattr(request, "state", None), _IDENTITY, None)
        if who is None:  # every request passed __call__: this is a bug, not an input
            raise RuntimeError("an MCP request reached a tool without the identity of its key")
        return Caller(user=who.user, channel="mcp", request_text=text,
                      origin={**who.origin, "transport": "streamable-http"})  # fmt: skip

    def _result(self, caller: Caller, tool: str, result: ToolResult) -> None:
        """An approval asked for over MCP is announced like one from a chat (the Slack approvals channel)."""
        self.state.result_needs_approval(caller, tool, result)


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"message": message, "code": status}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
