"""The embedded GPU node speaks Ollama's API: the official client and ChatOllama work against it unchanged.

These tests run the real model (Qwen2.5-Coder-1.5B through llama.cpp) and check shapes and behaviour,
not wording.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama
import pytest

pytestmark = pytest.mark.llm

MODEL = "qwen2.5-coder:1.5b"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "vm_show",
            "description": "Show one VM's details by its numeric id.",
            "parameters": {
                "type": "object",
                "properties": {"vmid": {"type": "integer", "description": "VM id, e.g. 130"}},
                "required": ["vmid"],
            },
        },
    }
]


def test_model_listing_show_ps_and_version(ollama_server: Any) -> None:
    with ollama.Client(host=ollama_server.url) as client:
        _listing(client)


def _listing(client: ollama.Client) -> None:
    assert [m.model for m in client.list().models] == [MODEL]
    shown = client.show(MODEL)
    assert "tools" in (shown.capabilities or []) and shown.details is not None and shown.details.format == "gguf"
    assert client.ps().models[0].name == MODEL


def test_unknown_model_is_a_404_with_an_error_body(ollama_server: Any) -> None:
    with pytest.raises(ollama.ResponseError) as exc, ollama.Client(host=ollama_server.url) as client:
        client.chat(model="llama9:70b", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 404 and "llama9:70b" in exc.value.error
    bad = httpx.post(f"{ollama_server.url}/api/chat", content=b"{not json")
    assert httpx.get(f"{ollama_server.url}/api/version").json()["version"]
    assert bad.status_code == 400 and "error" in bad.json()


def test_streamed_chat_is_ndjson_with_a_final_chunk_carrying_counts(ollama_server: Any) -> None:
    with httpx.stream(
        "POST",
        f"{ollama_server.url}/api/chat",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "Name one planet."}],
            "options": {"temperature": 0, "num_predict": 24},
        },
        timeout=120,
    ) as resp:
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        chunks = [json.loads(line) for line in resp.iter_lines() if line]
    assert all(not c["done"] for c in chunks[:-1]) and chunks[-1]["done"]
    final = chunks[-1]
    assert final["done_reason"] in ("stop", "length")
    for key in ("prompt_eval_count", "eval_count", "total_duration", "eval_duration", "prompt_eval_duration"):
        assert isinstance(final[key], int) and final[key] > 0, key
    assert "".join(c["message"]["content"] for c in chunks).strip()


def test_a_tool_result_turn_renders_and_is_answered(ollama_server: Any) -> None:
    # The assistant turn carrying a tool call, and the tool's answer, render through the model's own template.
    with ollama.Client(host=ollama_server.url) as client:
        response = client.chat(
            model=MODEL,
            messages=[
                {"role": "user", "content": "Show VM 130."},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "vm_show", "arguments": {"vmid": 130}}}],
                },
                {
                    "role": "tool",
                    "content": '{"vmid": 130, "name": "void-analysis", "status": "running"}',
                    "tool_name": "vm_show",
                },
            ],
            tools=TOOLS,
            options={"temperature": 0, "num_predict": 60},
        )
    assert response.done and (response.message.content or response.message.tool_calls)


def test_server_parses_tool_call_tags_into_tool_calls() -> None:
    from simlab.ollama.engine import split_tool_calls

    content, calls = split_tool_calls(
        'Sure.\n<tool_call>\n{"name": "vm_show", "arguments": {"vmid": 130}}\n</tool_call>'
    )
    assert content == "Sure." and calls == [{"function": {"name": "vm_show", "arguments": {"vmid": 130}}}]
    text = '```json\n{"name": "vm_show"}\n```'
    assert split_tool_calls(text) == (text, []), "only <tool_call> tags are tool calls on the server side"


def test_chat_ollama_streams_and_binds_tools(ollama_server: Any) -> None:
    from langchain_ollama import ChatOllama

    llm = ChatOllama(model=MODEL, base_url=ollama_server.url, temperature=0, num_predict=24)
    try:
        pieces = list(llm.stream("Reply with the single word: ready"))
        assert pieces and "".join(str(p.content) for p in pieces).strip()
        bound = llm.bind_tools(TOOLS)
        reply = bound.invoke("What is VM 130? Use the tool.")
        assert reply.usage_metadata and reply.usage_metadata["input_tokens"] > 0
    finally:
        llm._client.close()  # ChatOllama leaves its httpx client open


def test_embeddings(ollama_server: Any) -> None:
    with ollama.Client(host=ollama_server.url) as client:
        result = client.embed(model=MODEL, input=["backups at 09:00", "verify at 11:00"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0]) == 1536


def test_a_prompt_sharing_a_start_with_an_earlier_one_reports_the_cached_tokens(ollama_server: Any) -> None:
    # The start of the prompt (system message) is long and the same; only the question differs.
    system = "You answer questions about planets in one word. " + "Keep answers short. " * 40

    def ask(question: str) -> dict[str, Any]:
        response = httpx.post(
            f"{ollama_server.url}/api/chat",
            json={
                "model": MODEL, "stream": False,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
                "options": {"temperature": 0, "num_predict": 1},
            },
            timeout=300,
        )  # fmt: skip
        response.raise_for_status()
        return dict(response.json())

    ask("Which planet is the largest?")
    second = ask("Which planet has rings you can see with binoculars?")
    # The whole prompt is counted; the part the server reused is reported beside it, never more than the whole.
    assert 100 < second["prompt_eval_cached_count"] < second["prompt_eval_count"]
