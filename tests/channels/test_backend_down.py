"""A model server that cannot be reached is reported in OpenAI's error shape (503), not crashed on."""

from __future__ import annotations

import json
from typing import Any

import pytest
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


@pytest.mark.llm
def test_a_model_server_that_moved_is_found_again_without_a_restart(
    module_lab: Any, ollama_server: Any, tmp_path: Any
) -> None:
    # The embedded lab's model server restarted on another port: lab.json says where, the service had the old
    # address. Port 9 stands for the old one (nothing listens there any more).
    lab_json = module_lab.lab_dir / "lab.json"
    before = lab_json.read_text()
    state = json.loads(before)
    try:
        state["parts"]["ollama"] = {"url": "http://127.0.0.1:9", "model": "qwen2.5-coder:1.5b", "pid": None}
        lab_json.write_text(json.dumps(state))
        # The suite's other worker may be using the one CPU model server: a chat can wait behind its calls (a
        # clean-clone run timed out at the default 180 s once), and what is tested here is the address, not speed.
        llm = {"provider": "ollama", "timeout": 900}
        settings = load_settings(None, lab_dir=module_lab.lab_dir, llm=llm, agent={"docs_k": 0})
        key = ApiKeys.from_settings(settings).create("moved", user="researcher1")[1]
        with TestClient(create_app(settings)) as http:
            ready = http.get("/readyz")
            assert ready.status_code == 503 and not ready.json()["checks"]["model"]["ok"]
            state["parts"]["ollama"]["url"] = ollama_server.url
            lab_json.write_text(json.dumps(state))
            # Readiness tells the truth about the address the agent uses, after looking it up again.
            model = http.get("/readyz").json()["checks"]["model"]  # (no docs index in this lab: not ready for that)
            assert model["ok"] and ollama_server.url in model["detail"], model
            # A chat goes to the new address, with no restart of the service.
            body = {"model": "labops", "messages": [{"role": "user", "content": "Which VMs are running?"}]}
            r = http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text
            assert "cannot reach" not in r.json()["choices"][0]["message"]["content"]
    finally:
        lab_json.write_text(before)


@pytest.mark.llm
def test_a_chat_finds_the_moved_model_server_by_itself(module_lab: Any, ollama_server: Any) -> None:
    from agent.runtime import Agent
    from policies.guard import Caller

    lab_json = module_lab.lab_dir / "lab.json"
    before = lab_json.read_text()
    state = json.loads(before)
    try:
        state["parts"]["ollama"] = {"url": "http://127.0.0.1:9", "model": "qwen2.5-coder:1.5b", "pid": None}
        lab_json.write_text(json.dumps(state))
        agent = Agent(load_settings(None, lab_dir=module_lab.lab_dir, llm={"provider": "ollama", "timeout": 900},
                                    agent={"docs_k": 0}))  # fmt: skip
        try:
            state["parts"]["ollama"]["url"] = ollama_server.url
            lab_json.write_text(json.dumps(state))
            result = agent.ask("Which VMs are running?", caller=Caller(user="researcher1", channel="cli"))
            assert result.stop is None and agent.model_info["url"] == ollama_server.url
        finally:
            agent.close()
    finally:
        lab_json.write_text(before)
