"""The Ollama API layer with a scripted engine: tool-call tags become ``tool_calls`` for the official client.

The real model rarely writes ``<tool_call>`` tags on its own (it prefers fenced JSON), so the parsing and
streaming of tool calls is pinned down here with an engine that says exactly what the test needs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
import uvicorn

from simlab.ollama.app import OllamaServer, create_app
from simlab.ollama.assets import default_model
from simlab.ollama.engine import Generation

TOOLS = [{"type": "function", "function": {"name": "vm_show", "parameters": {"type": "object", "properties": {}}}}]


class ScriptedEngine:
    """An engine that answers with a fixed text, piece by piece."""

    def __init__(self, model_path: Path, text: str) -> None:
        self.model_path = model_path
        self.text = text
        self.n_ctx = 4096
        self.lock = threading.Lock()
        self.last_used = time.time()
        self.chat_template = "{{ messages }}"
        self.seen: list[dict[str, Any]] = []

    def stream(self, messages: list[dict[str, Any]], **kwargs: Any) -> Iterator[str | Generation]:
        self.seen.append({"messages": messages, **kwargs})
        for i in range(0, len(self.text), 5):
            yield self.text[i : i + 5]
        yield Generation(content=self.text, prompt_eval_count=12, eval_count=7, total_duration=1000, eval_duration=500,
                         prompt_eval_duration=400)  # fmt: skip

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        return [[1.0, 0.0] for _ in texts], len(texts)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start the Ollama app with a scripted engine on a free port; stopped after the test."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(text: str, engine: ScriptedEngine | None = None) -> tuple[str, ScriptedEngine]:
        model = tmp_path / "model.gguf"
        model.write_bytes(b"GGUF")
        engine = engine or ScriptedEngine(model, text)
        app = create_app(OllamaServer(engine, default_model()))  # type: ignore[arg-type]
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        running.append((server, thread))
        return f"http://127.0.0.1:{sock.getsockname()[1]}", engine

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)


def test_tool_call_tags_become_tool_calls_streamed_and_not(serve: Any) -> None:
    url, engine = serve('<tool_call>\n{"name": "vm_show", "arguments": {"vmid": 130}}\n</tool_call>')
    with ollama.Client(host=url) as client:
        whole = client.chat(model="qwen2.5-coder:1.5b", messages=[{"role": "user", "content": "VM 130?"}], tools=TOOLS)
        assert whole.message.tool_calls and whole.message.tool_calls[0].function.name == "vm_show"
        assert whole.message.tool_calls[0].function.arguments == {"vmid": 130}
        assert whole.message.content == "" and whole.prompt_eval_count == 12 and whole.eval_count == 7
        streamed = list(
            client.chat(
                model="qwen2.5-coder:1.5b", messages=[{"role": "user", "content": "VM 130?"}], tools=TOOLS, stream=True
            )
        )
    assert not any("<tool_call>" in (c.message.content or "") for c in streamed), "tags never leak into content"
    calls = [c for c in streamed if c.message.tool_calls]
    assert len(calls) == 1 and calls[0].message.tool_calls[0].function.arguments == {"vmid": 130}
    assert streamed[-1].done and streamed[-1].done_reason == "stop"
    assert engine.seen[0]["tools"][0]["function"]["name"] == "vm_show"


def test_text_around_a_tool_call_and_plain_answers(serve: Any) -> None:
    url, _engine = serve('Checking. <tool_call>{"name": "vm_show", "arguments": {}}</tool_call>')
    with ollama.Client(host=url) as client:
        reply = client.chat(model="qwen2.5-coder:1.5b", messages=[{"role": "user", "content": "x"}], tools=TOOLS)
    assert reply.message.content == "Checking." and reply.message.tool_calls
    url, _engine = serve("Backups run at 09:00 <b>daily</b>.")
    with ollama.Client(host=url) as client:
        pieces = list(
            client.chat(
                model="qwen2.5-coder:1.5b", messages=[{"role": "user", "content": "x"}], tools=TOOLS, stream=True
            )
        )
    assert "".join(p.message.content or "" for p in pieces) == "Backups run at 09:00 <b>daily</b>."


def test_assistant_tool_call_arguments_as_strings_are_accepted(serve: Any) -> None:
    url, engine = serve("ok")
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "vm_show", "arguments": {"vmid": 1}}}],
        },
        {"role": "tool", "content": "{}", "tool_name": "vm_show"},
    ]
    with ollama.Client(host=url) as client:
        assert client.chat(model="qwen2.5-coder:1.5b", messages=messages).message.content == "ok"
    assert engine.seen[0]["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"vmid": 1}


class EndlessEngine(ScriptedEngine):
    """Generates until told to stop; records that its generation was closed."""

    def __init__(self, model_path: Path) -> None:
        super().__init__(model_path, "")
        self.closed = threading.Event()

    def stream(self, messages: list[dict[str, Any]], **kwargs: Any) -> Iterator[str | Generation]:
        try:
            for i in range(1_000_000):
                time.sleep(0.001)  # a token at a time, as the real engine does
                yield f"w{i} "
            yield Generation(content="", prompt_eval_count=1, eval_count=1, total_duration=1, eval_duration=1,
                             prompt_eval_duration=1)  # fmt: skip
        finally:
            self.closed.set()


def test_a_client_that_goes_away_frees_the_model(serve: Any, tmp_path: Path) -> None:
    # Found when an interrupted eval left the embedded GPU node generating for clients that were gone: every
    # later request then waited behind them and timed out. Ollama stops a generation whose client left.
    engine = EndlessEngine(tmp_path / "model.gguf")
    url, _ = serve("", engine)
    body = {"model": default_model().name, "messages": [{"role": "user", "content": "go"}], "stream": True}
    with httpx.Client(timeout=30) as client, client.stream("POST", f"{url}/api/chat", json=body) as resp:
        first = next(resp.iter_lines())
        assert '"done": false' in first or '"done":false' in first
    # The connection is closed: the generation is stopped and the model's lock released.
    assert engine.closed.wait(timeout=60), "the abandoned generation kept running"
    assert engine.lock.acquire(timeout=60), "the abandoned generation kept the model busy"
    engine.lock.release()
