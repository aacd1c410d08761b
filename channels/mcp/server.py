"""The MCP server: tools/list, tools/call through the guard, and the lab's pages as resources.

One :class:`mcp.server.Server` (the SDK's low-level server: the tools' schemas come from their declarations,
not from function signatures) serves both transports; only who the caller is differs. Over stdio it is the
operating-system user the CLI maps; over HTTP it is the API key's user, read from each request's headers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from channels.mcp.catalog import (
    call_arguments,
    docs_resource,
    docs_resources,
    mcp_name,
    mcp_result,
    mcp_tool,
    source_of,
)
from core.errors import LabOpsError
from knowledge.service import DocsService
from policies.guard import Caller, Guard
from tools.base import Tool, ToolResult

__all__ = ["McpBackend", "build_server"]

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "The tools of a research computing lab (VMs on Proxmox VE, Ray jobs, the DESI DR1 tables, backups), each "
    "call checked by the lab's policy and recorded. A change may need a person's approval: the result then "
    "names the approval id and who may approve it; once approved, repeat the same call with approval_id. The "
    "lab's documentation is searchable with docs_search and readable as resources; cite passages as given."
)

# Who is calling: the channel's identity for a request, or a refusal (the reason in the ToolResult).
CallerOf = Callable[[ServerRequestContext[Any, Any], str], "Caller | ToolResult"]


@dataclass(kw_only=True)
class McpBackend:
    """What the MCP server acts with."""

    guard: Guard
    tools: list[Tool[Any]]
    docs: DocsService | None
    caller_of: CallerOf
    # Told of every call's result (the HTTP service announces approvals asked for to the Slack channel).
    on_result: Callable[[Caller, str, ToolResult], None] | None = None

    def tool(self, name: str) -> Tool[Any] | None:
        """The tool an MCP name stands for (``vm_provision`` or ``vm.provision``)."""
        return next((t for t in self.tools if name in (mcp_name(t), t.name)), None)


def build_server(backend: McpBackend, *, version: str = "") -> Server[Any]:
    """The MCP server over ``backend``."""

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[mcp_tool(t) for t in backend.tools])

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = backend.tool(params.name)
        if tool is None:
            known = ", ".join(mcp_name(t) for t in backend.tools)
            raise MCPError(types.INVALID_PARAMS, f"no tool {params.name!r}; the tools are: {known}")
        caller = backend.caller_of(ctx, f"tools/call {tool.name}")
        if isinstance(caller, ToolResult):
            return mcp_result(caller)
        args, approval_id, request_key = call_arguments(params.arguments)

        def run() -> ToolResult:
            return backend.guard.call(tool.name, args, caller=caller, call_id=request_key, approval_id=approval_id)

        # The guard is synchronous (database transactions, the tools' HTTP clients): a worker thread keeps the
        # event loop serving other sessions meanwhile.
        result = await anyio.to_thread.run_sync(run)
        if backend.on_result is not None:
            backend.on_result(caller, tool.name, result)
        return mcp_result(result)

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        if backend.docs is None:
            return types.ListResourcesResult(resources=[])
        docs = backend.docs
        try:
            documents = await anyio.to_thread.run_sync(docs.documents)
        except LabOpsError as exc:
            raise MCPError(types.INTERNAL_ERROR, f"the documentation index is unavailable: {exc}") from exc
        return types.ListResourcesResult(resources=docs_resources(documents))

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        source = source_of(uri)
        if source is None or backend.docs is None:
            raise MCPError(types.INVALID_PARAMS, f"no resource {uri!r}: the lab's pages are labops://docs/<page>")
        docs = backend.docs
        try:
            chunks = await anyio.to_thread.run_sync(docs.document, source)
        except LabOpsError as exc:
            raise MCPError(types.INTERNAL_ERROR, f"the documentation index is unavailable: {exc}") from exc
        if not chunks:
            raise MCPError(types.INVALID_PARAMS, f"no page {source!r} in the documentation index (resources/list)")
        return docs_resource(uri, chunks)

    return Server(
        "labops",
        version=version,
        title="LabOps",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )
