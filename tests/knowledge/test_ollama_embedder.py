"""The Ollama embedder against a small local server speaking Ollama's /api/embed, and an unreachable one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from core.errors import BackendUnavailable, KnowledgeError
from knowledge.embeddings import OllamaEmbedder


class _Ollama(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/api/embed" or body.get("model") != "nomic-embed-text":
            payload: dict[str, Any] = {"error": f"model {body.get('model')!r} not found"}
            status = 404
        else:
            # Deterministic 8-dimensional vectors from the text, not normalised (the client normalises).
            payload = {
                "model": body["model"],
                "embeddings": [[float(len(t)), 1.0, 2.0, 0, 0, 0, 0, 3.0] for t in body["input"]],
            }
            status = 200
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def ollama() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ollama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_embeds_and_normalises(ollama: str) -> None:
    embedder = OllamaEmbedder(url=ollama, model="nomic-embed-text")
    vectors = embedder.embed(["a", "longer text"])
    assert embedder.dim == 8 and vectors.shape == (2, 8)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_unknown_model_and_unreachable_server(ollama: str) -> None:
    with pytest.raises(KnowledgeError, match="ollama_embedding_model"):
        OllamaEmbedder(url=ollama, model="missing")
    with pytest.raises(BackendUnavailable, match=r"llm\.ollama_url"):
        OllamaEmbedder(url="http://127.0.0.1:9", model="nomic-embed-text", timeout=2)
