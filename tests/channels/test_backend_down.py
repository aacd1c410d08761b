"""A model server that cannot be reached is reported in OpenAI's error shape (503), not crashed on."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from channels.server.app import create_app
from core.config import load_settings
from policies.apikeys import ApiKeys


def test_an_unreachable_model_server_is_a_503_and_not_ready(module_lab: Any, tmp_path: Any) -> None:
    # Port 9 (discard) refuses connections on this machine: the model server is down.
    settings = load_settings(
        None, lab_dir=module_lab.lab_dir, llm={"provider": "ollama", "ollama_url": "http://127.0.0.1:9"},
        agent={"docs_k": 0},
    )  # fmt: skip
    key = ApiKeys.from_settings(settings).create("down", user="researcher1")[1]
    with TestClient(create_app(settings)) as http:
        auth = {"Authorization": f"Bearer {key}"}
        body = {"model": "labops", "messages": [{"role": "user", "content": "Which VMs are running?"}]}
        r = http.post("/v1/chat/completions", json=body, headers=auth)
        assert r.status_code == 503 and r.headers["Retry-After"]
        error = r.json()["error"]
        assert error["type"] == "server_error" and "llm.ollama_url" in error["message"]
        # Streaming has sent its headers already: the same words arrive as the answer, then [DONE].
        with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}, headers=auth) as s:
            text = "".join(s.iter_text())
        assert "cannot reach the language model" in text and text.rstrip().endswith("data: [DONE]")
        ready = http.get("/readyz")
        assert ready.status_code == 503 and not ready.json()["checks"]["model"]["ok"]
        # The failed request was not stored as answered: once the server is back, asking again runs a turn.
        again = http.post("/v1/chat/completions", json=body, headers=auth)
        assert again.status_code == 503
