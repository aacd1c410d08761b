"""What an MCP client sees: the guarded tools as MCP tools, their results, and the lab's pages as resources.

Everything here derives from the tools' declarations (:class:`tools.base.Tool`): the input schema is the
argument model's JSON schema plus two arguments every call may carry (``approval_id``, ``request_key``), the
title and description come from the tool, and the annotations from its risk. Annotations are hints for
clients, not security: the guard decides.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote, unquote

import mcp_types as types

from tools.base import Tool, ToolResult

__all__ = [
    "DOCS_URI",
    "call_arguments",
    "docs_resource",
    "docs_resources",
    "mcp_name",
    "mcp_result",
    "mcp_tool",
    "source_of",
]

DOCS_URI = "labops://docs/"

_EXTRA = {
    "approval_id": {
        "type": "string",
        "description": "The approval of this exact call (apr_...), once someone allowed to approve it has approved "
        "it: repeat the call with the same arguments and this id. Leave it out otherwise.",
    },
    "request_key": {
        "type": "string",
        "description": "Optional idempotency key for a change: the same call with the same key returns the first "
        "result instead of acting again (for a day). A call with an approval_id gets one by default.",
    },
}


def mcp_name(tool: Tool[Any]) -> str:
    """The MCP tool name: ``vm.provision`` → ``vm_provision`` (clients that map tools to functions allow no dots)."""
    return tool.name.replace(".", "_")


def mcp_tool(tool: Tool[Any]) -> types.Tool:
    """One guarded tool as an MCP tool."""
    schema = copy.deepcopy(tool.json_schema())
    schema.setdefault("type", "object")
    properties = schema.setdefault("properties", {})
    if tool.risk != "read":  # a read changes nothing: it needs no approval, and a key would mean nothing
        for name, spec in _EXTRA.items():
            properties.setdefault(name, dict(spec))
    lines = tool.description.strip().splitlines()
    summary = f"Risk: {tool.risk}. Every call passes the lab's policy and is audited"
    if tool.risk != "read":
        summary += "; a call that needs an approval returns its approval id and who may approve it"
    annotations = types.ToolAnnotations(
        title=tool.name,
        read_only_hint=tool.risk == "read",
        destructive_hint=tool.risk == "destructive" if tool.risk != "read" else None,
        # Reads repeat without effect. A change repeats without effect only with the same request_key, which a
        # client may leave out, so it is not hinted as idempotent.
        idempotent_hint=tool.risk == "read",
        open_world_hint=False,
    )
    return types.Tool(
        name=mcp_name(tool),
        title=tool.name,
        description="\n".join([*lines, "", summary + "."]),
        input_schema=schema,
        annotations=annotations,
    )


def call_arguments(arguments: dict[str, Any] | None) -> tuple[dict[str, Any], str | None, str | None]:
    """A call's tool arguments, and the approval id and request key it carries (not the tool's arguments)."""
    args = dict(arguments or {})
    approval = args.pop("approval_id", None)
    key = args.pop("request_key", None)
    approval_id = str(approval).strip() if isinstance(approval, str) and approval.strip() else None
    request_key = str(key).strip() if isinstance(key, str) and key.strip() else None
    if request_key is None and approval_id is not None:
        # The approved call is made once: repeating it (a client's retry) returns the first result.
        request_key = f"mcp-{approval_id}"
    return args, approval_id, request_key


def mcp_result(result: ToolResult) -> types.CallToolResult:
    """The guard's envelope as an MCP result.

    Refusals and errors are results with ``isError`` (the model reads them, as the protocol intends); a call
    waiting for an approval is a plain result with the approval id and who may approve.
    """
    structured: dict[str, Any] = {"status": result.status, "message": result.message}
    if result.data is not None:
        structured["data"] = result.data
    text = result.message
    if result.status == "needs_approval" and isinstance(result.data, dict):
        approval = result.data.get("approval") or {}
        approvers = [str(a) for a in result.data.get("approvers") or []]
        who = ", ".join(approvers) or f"a user with role {approval.get('role', '?')}"
        text = (
            f"{approval.get('summary') or 'This call'} needs an approval: {approval.get('id')} is pending, and "
            f"{who} may approve it (`labops approvals approve {approval.get('id')}`, the Slack button, or "
            f'"approve {approval.get("id")}" in a LabOps chat). Once it is approved, repeat this exact call with '
            f'"approval_id": "{approval.get("id")}"; it runs once.'
        )
    body = json.dumps(result.data, default=str, ensure_ascii=False) if result.data is not None else ""
    content: list[types.ContentBlock] = [types.TextContent(text=text)]
    if body and result.status in ("ok", "no_data"):
        content.append(types.TextContent(text=body[:200_000]))
    return types.CallToolResult(
        content=content,
        structured_content=structured,
        is_error=result.status in ("error", "denied"),
    )


def docs_resources(documents: dict[str, str]) -> list[types.Resource]:
    """The indexed pages as resources (``labops://docs/<source>``)."""
    return [
        types.Resource(
            uri=DOCS_URI + quote(source, safe=""),
            name=source,
            title=title or source,
            mime_type="text/markdown",
            description=f"The lab's documentation: {title or source}",
        )
        for source, title in sorted(documents.items())
    ]


def docs_resource(uri: str, chunks: list[dict[str, Any]]) -> types.ReadResourceResult:
    """A page's text, section by section, each with the citation an answer should give."""
    text = "\n\n".join(f"{c['citation']}\n{c['text']}" for c in chunks)
    page = types.TextResourceContents(uri=uri, mime_type="text/markdown", text=text)
    return types.ReadResourceResult(contents=[page])


def source_of(uri: str) -> str | None:
    """The document a ``labops://docs/...`` URI names, or None."""
    if not uri.startswith(DOCS_URI):
        return None
    source = unquote(uri[len(DOCS_URI) :])
    return source or None
