"""The guarded tools over MCP, with the official client: ``labops mcp`` (stdio) and ``/mcp`` on ``labops serve``.

Both transports list every registered tool with its risk as annotations, run reads, and send changes through
the guard: a researcher's provision waits for an approval, an admin approves on the CLI, the repeated call
runs once and a third does nothing new; every call is in the audit log under the MCP channel.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from click.testing import CliRunner
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from channels.cli.main import cli
from core.config import load_settings
from policies.apikeys import ApiKeys
from policies.audit import AuditLog
from tools.context import ToolContext
from tools.registry import all_tools, get_tool
from tools.testing import run_unguarded

from .conftest import ROOT, Serve, make_key, server_env, write_config

Session = Callable[[ClientSession], Awaitable[Any]]
DOC = ROOT / "knowledge" / "docs" / "backup-policy.md"


def _stdio(lab_dir: Path, config: Path, user: str, work: Session) -> Any:
    params = StdioServerParameters(
        command=str(Path(sys.executable).parent / "labops"),
        args=["--config", str(config), "--lab-dir", str(lab_dir), "mcp", "--as", user],
        env=server_env(),
        cwd=str(ROOT),
    )

    async def main() -> Any:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)

    return anyio.run(main)


def _http(server: Serve, key: str, work: Session) -> Any:
    async def main() -> Any:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http,
            streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await work(session)

    return anyio.run(main)


def _vm_names(lab_dir: Path) -> list[str]:
    ctx = ToolContext(settings=load_settings(None, lab_dir=lab_dir))
    return [str(v["name"]) for v in run_unguarded(get_tool("vm.list"), ctx, {}).data]


def _remove_vms(lab_dir: Path, prefix: str) -> None:
    ctx = ToolContext(settings=load_settings(None, lab_dir=lab_dir))
    for vm in run_unguarded(get_tool("vm.list"), ctx, {}).data:
        if str(vm["name"]).startswith(prefix):
            run_unguarded(get_tool("vm.delete"), ctx, {"vmid": vm["vmid"], "stop_first": True})


def _approve(lab_dir: Path, approval_id: str, user: str = "admin1") -> None:
    done = CliRunner().invoke(cli, ["--lab-dir", str(lab_dir), "approvals", "approve", approval_id, "--as", user])
    assert done.exit_code == 0, done.output


def _mcp_entries(lab_dir: Path) -> list[dict[str, Any]]:
    return [
        e for e in AuditLog.from_settings(load_settings(None, lab_dir=lab_dir)).tail(500) if e.get("channel") == "mcp"
    ]


def _text(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


@pytest.fixture(scope="module")
def config(module_lab: Any) -> Path:
    return write_config(module_lab.lab_dir / "mcp.toml", slack_url=None)


@pytest.fixture(scope="module")
def server(module_lab: Any, config: Path) -> Iterator[Serve]:
    # One page of the lab's documentation, indexed by a process of its own: Milvus Lite lets one process at a
    # time hold a directory, and the server opens it next.
    done = subprocess.run(
        [str(Path(sys.executable).parent / "labops"), "--lab-dir", str(module_lab.lab_dir), "ingest", str(DOC)],
        cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    serve = Serve(lab_dir=module_lab.lab_dir, config=config, env=server_env()).start()
    yield serve
    serve.stop()


def _annotations(tools: list[types.Tool]) -> dict[str, tuple[bool | None, bool | None, bool | None]]:
    return {
        t.name: (t.annotations.read_only_hint, t.annotations.destructive_hint, t.annotations.idempotent_hint)
        for t in tools
        if t.annotations is not None
    }


def _check_catalog(tools: list[types.Tool]) -> None:
    registry = all_tools()
    assert len(tools) == len(registry) and {t.title for t in tools} == {t.name for t in registry}
    hints = _annotations(tools)
    assert hints["vm_list"] == (True, None, True)
    assert hints["vm_provision"] == (False, False, False)
    assert hints["vm_delete"] == (False, True, False)
    provision = next(t for t in tools if t.name == "vm_provision")
    assert {"name", "cores", "memory_gib", "approval_id", "request_key"} <= set(provision.input_schema["properties"])
    assert "approval_id" not in next(t for t in tools if t.name == "vm_list").input_schema["properties"]


def _approval_flow(call: Callable[[str, dict[str, Any]], types.CallToolResult], lab_dir: Path, name: str) -> None:
    args = {"name": name, "cores": 1, "memory_gib": 2}
    asked = call("vm_provision", args)
    # Waiting for an approval is a result the model can read, not a protocol error.
    assert not asked.is_error and asked.structured_content["status"] == "needs_approval"
    approval_id = re.search(r"apr_[0-9a-f]{12}", _text(asked)).group(0)  # type: ignore[union-attr]
    assert "admin1" in _text(asked) and f'"approval_id": "{approval_id}"' in _text(asked)
    assert name not in _vm_names(lab_dir)
    _approve(lab_dir, approval_id)
    # The approval covers this exact call only: a bigger VM under the same id is refused, and nothing is made.
    other = call("vm_provision", {**args, "cores": 2, "approval_id": approval_id})
    assert other.is_error and "changed arguments need a new approval" in _text(other)
    assert name not in _vm_names(lab_dir)
    made = call("vm_provision", {**args, "approval_id": approval_id})
    assert not made.is_error and made.structured_content["status"] == "ok", _text(made)
    again = call("vm_provision", {**args, "approval_id": approval_id})
    assert "nothing new was done" in _text(again)
    assert _vm_names(lab_dir).count(name) == 1


def test_stdio_lists_the_tools_reads_and_runs_an_approved_change_once(module_lab: Any, config: Path) -> None:
    lab_dir = module_lab.lab_dir
    results: dict[str, Any] = {}

    async def work(session: ClientSession) -> None:
        results["tools"] = (await session.list_tools()).tools
        results["read"] = await session.call_tool("vm_list", {"owner": "researcher1"})
        results["denied"] = await session.call_tool("vm_stop", {"vmid": 110})
        results["invalid"] = await session.call_tool("vm_show", {"vmid": "abc"})
        results["asked"] = await session.call_tool("vm_provision", {"name": "mcp-stdio-1", "cores": 1, "memory_gib": 2})

    try:
        _stdio(lab_dir, config, "researcher1", work)
        _check_catalog(results["tools"])
        read = results["read"]
        assert not read.is_error and read.structured_content["status"] == "ok"
        assert {vm["name"] for vm in read.structured_content["data"]} >= {"void-analysis"}
        # Denials and invalid arguments are results with isError and the guard's words.
        assert results["denied"].is_error and results["denied"].structured_content["status"] == "denied"
        assert results["invalid"].is_error and "vmid" in _text(results["invalid"])
        assert results["asked"].structured_content["status"] == "needs_approval"

        def call(name: str, args: dict[str, Any]) -> types.CallToolResult:
            out: types.CallToolResult = _stdio(lab_dir, config, "researcher1", lambda s: s.call_tool(name, args))
            return out

        _approval_flow(call, lab_dir, "mcp-stdio-2")
        entries = _mcp_entries(lab_dir)
        assert any(e.get("tool") == "vm.provision" and e.get("event") == "finished" for e in entries)
        assert all(e["origin"]["transport"] == "stdio" for e in entries if e.get("origin", {}).get("os_account"))
    finally:
        _remove_vms(lab_dir, "mcp-stdio-")


def test_http_needs_a_valid_key_and_acts_as_its_user(server: Serve, module_lab: Any) -> None:
    lab_dir = module_lab.lab_dir
    key = make_key(lab_dir, "researcher1")
    tools = _http(server, key, lambda s: s.list_tools()).tools
    _check_catalog(tools)

    def call(name: str, args: dict[str, Any]) -> types.CallToolResult:
        out: types.CallToolResult = _http(server, key, lambda s: s.call_tool(name, args))
        return out

    try:
        _approval_flow(call, lab_dir, "mcp-http-1")
    finally:
        _remove_vms(lab_dir, "mcp-http-")
    entries = [e for e in _mcp_entries(lab_dir) if (e.get("origin") or {}).get("transport") == "streamable-http"]
    assert entries and all(e["user"] == "researcher1" for e in entries)
    assert {e["origin"]["api_client"]["owner"] for e in entries} == {"researcher1"}

    # A wrong key, no key, and a revoked key: 401 before any MCP message is read.
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    assert httpx.post(f"{server.url}/mcp", json=body, headers=headers).status_code == 401
    wrong = {**headers, "Authorization": "Bearer lops_nope"}
    assert httpx.post(f"{server.url}/mcp", json=body, headers=wrong).status_code == 401
    keys = ApiKeys.from_settings(load_settings(None, lab_dir=lab_dir))
    revoked = make_key(lab_dir, "researcher2")
    found = keys.check(revoked)
    assert found is not None
    keys.revoke(found.id)
    answer = httpx.post(f"{server.url}/mcp", json=body, headers={**headers, "Authorization": f"Bearer {revoked}"})
    assert answer.status_code == 401 and "API key" in answer.json()["error"]["message"]


def test_http_serves_the_lab_s_pages_with_their_citations(server: Serve, module_lab: Any) -> None:
    key = make_key(module_lab.lab_dir, "researcher2")

    async def work(session: ClientSession) -> tuple[types.ListResourcesResult, types.ReadResourceResult]:
        listed = await session.list_resources()
        return listed, await session.read_resource(listed.resources[0].uri)

    listed, page = _http(server, key, work)
    assert [r.name for r in listed.resources] == ["backup-policy.md"]
    text = page.contents[0].text
    assert "[backup-policy.md § Schedule]" in text and "11:00" in text
    # The documentation search is a tool like the others.
    found = _http(server, key, lambda s: s.call_tool("docs_search", {"query": "when are backups verified?"}))
    assert not found.is_error and "backup-policy.md" in _text(found)
