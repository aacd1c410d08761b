"""The agent with the real embedded model (Qwen2.5-Coder-1.5B through the simulated Ollama).

These check what happened in the lab and which tools ran, not the wording of the answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import load_settings
from policies.guard import Caller

pytestmark = pytest.mark.llm


@pytest.fixture
def real_agent(lab: Path, docs_index: Path, embedder: Any, ollama_server: Any) -> Any:
    from agent.runtime import Agent

    settings = load_settings(
        None, lab_dir=lab, llm={"provider": "ollama", "ollama_url": ollama_server.url}, milvus={"uri": str(docs_index)}
    )
    agent = Agent(settings, embedder=embedder)
    yield agent
    agent.close()


def test_a_docs_question(real_agent: Any) -> None:
    result = real_agent.ask("When are backups verified?", caller=Caller(user="researcher1", channel="cli"))
    assert result.status == "answered" and result.tool_calls == []
    assert result.citations and "11" in result.answer


def test_a_read_tool_question(real_agent: Any) -> None:
    result = real_agent.ask("Which VMs do I own?", caller=Caller(user="researcher1", channel="cli"))
    calls = [(c["name"], c["args"], c["status"]) for c in result.tool_calls]
    assert ("vm.list", {"owner": "researcher1"}, "ok") in calls, calls


def test_a_write_that_needs_approval(real_agent: Any, lab: Path) -> None:
    from tools.context import ToolContext
    from tools.registry import get_tool
    from tools.testing import run_unguarded

    result = real_agent.ask(
        "Create a VM called llm-vm with 2 cores and 4 gigs", caller=Caller(user="researcher2", channel="cli")
    )
    assert result.status == "needs_approval", result
    assert result.pending["tool"] == "vm.provision" and result.pending["args"]["name"] == "llm-vm"
    ctx = ToolContext(settings=load_settings(None, lab_dir=lab))
    names = [v["name"] for v in run_unguarded(get_tool("vm.list"), ctx, {}).data]
    assert "llm-vm" not in names, "nothing runs before the approval"


def test_a_question_in_german_is_read_in_english_and_answered_from_the_page(real_agent: Any) -> None:
    result = real_agent.ask("Welche Grafikkarte hat das Labor?", caller=Caller(user="researcher1", channel="cli"))
    assert result.read_as != "Welche Grafikkarte hat das Labor?"  # the English the turn was read as
    assert result.tool_calls == [] and any("gpu-node" in c for c in result.citations)
    assert "A4000" in result.answer


class _Counts(httpx.BaseTransport):
    """Keeps the final line of every chat reply (the server's token counts), passing the reply on unchanged."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.finals: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        try:
            body = response.read()
        finally:
            response.close()
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        self.finals += [line for line in lines if line.get("done")]
        return httpx.Response(response.status_code, headers=response.headers, content=body)

    def close(self) -> None:
        self.inner.close()


def test_after_the_warm_up_a_question_reuses_the_cached_start_of_the_prompt(real_agent: Any) -> None:
    assert real_agent.warm_up() is not None
    # The ollama client drops the count of cached tokens (not in its response model): read it off the wire.
    http = real_agent.model._client._client
    counts = http._transport = _Counts(http._transport)
    result = real_agent.ask("Which Ray job templates can I run?", caller=Caller(user="researcher1", channel="cli"))
    assert result.tool_calls, result
    # Its first tool prompt: the system prompt and every tool definition (about 3,200 tokens) came from the cache.
    cached = [f.get("prompt_eval_cached_count", 0) for f in counts.finals]
    assert max(cached) > 3000, counts.finals
