"""The OpenAI-compatible API through the official ``openai`` SDK against a running ``labops serve``."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import openai
import pytest

from core.config import load_settings
from policies.audit import AuditLog

from .conftest import openai_client

OPENWEBUI_TOOLS = [  # the shape OpenWebUI's web UI sends its own built-in functions in
    {"type": "function", "function": {"name": "search_web", "description": "Search the web",
                                      "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "get_current_timestamp", "description": "Now",
                                      "parameters": {"type": "object", "properties": {}}}},
]  # fmt: skip


def task(key: str) -> str:
    """A background-task prompt shaped like OpenWebUI's (task, guidelines, wanted JSON, embedded history)."""
    what = {
        "title": "Write a short title for the chat below.",
        "tags": "Give a few broad tags for the chat below.",
        "follow_ups": "Propose questions the user could ask next.",
        "queries": "Decide on web search queries.",
    }[key]
    return (f"### Task:\n{what}\n### Guidelines:\n- Be brief.\n### Output:\nJSON format: {{ \"{key}\": ... }}\n"
            "### Chat History:\n<chat_history>\nUSER: Which VMs have failed backups?\nASSISTANT: VM 132.\n"
            "</chat_history>")  # fmt: skip


def client(serve: Any, key: str, **headers: str) -> openai.OpenAI:
    result: openai.OpenAI = openai_client(serve, key, **headers)
    return result


def audit_entries(serve: Any) -> list[dict[str, Any]]:
    return AuditLog.from_settings(load_settings(None, lab_dir=serve.lab_dir)).tail(100_000)


def tool_decisions(serve: Any, tool: str, user: str) -> list[dict[str, Any]]:
    return [e for e in audit_entries(serve) if e.get("tool") == tool and e.get("user") == user
            and e.get("event") == "decision"]  # fmt: skip


def test_models_and_errors_in_openai_shape(serve: Any, keys: dict[str, str]) -> None:
    assert [m.id for m in client(serve, keys["researcher1"]).models.list()] == ["labops"]
    with pytest.raises(openai.AuthenticationError):
        client(serve, "lops_key_000000000000_not-a-key").models.list()
    with pytest.raises(openai.NotFoundError) as missing:
        client(serve, keys["researcher1"]).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert "labops" in str(missing.value)
    auth = {"Authorization": f"Bearer {keys['researcher1']}"}
    for body, param in (
        (b"{not json", None),
        (json.dumps({"model": "labops"}).encode(), "messages"),
        (json.dumps({"model": "labops", "messages": [{"role": "wizard", "content": "x"}]}).encode(),
         "messages[0].role"),
        (json.dumps({"model": "labops", "messages": [{"role": "system", "content": "x"}]}).encode(), "messages"),
        (json.dumps({"model": "labops", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}).encode(),
         "stream"),
    ):  # fmt: skip
        r = httpx.post(f"{serve.url}/v1/chat/completions", content=body, headers=auth, timeout=30)
        assert r.status_code == 400, (body, r.text)
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"] and error["param"] == param


def test_a_question_with_a_tool_streamed_and_not(serve: Any, keys: dict[str, str]) -> None:
    api = client(serve, keys["researcher1"])
    reply = api.chat.completions.create(model="labops", messages=[{"role": "user", "content": "Which VMs exist?"}])
    text = reply.choices[0].message.content or ""
    assert "rke2-01" in text and "vm.list: ok" in text and reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens > 0 and reply.id.startswith("chatcmpl-")

    stream = api.chat.completions.create(
        model="labops", messages=[{"role": "user", "content": "list the VMs please"}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "rke2-01" in content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

    # The raw stream ends with [DONE], and every event is a line "data: {json}" followed by a blank line.
    body = {"model": "labops", "stream": True, "messages": [{"role": "user", "content": "hello"}]}
    with httpx.stream("POST", f"{serve.url}/v1/chat/completions", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {keys['researcher2']}"}) as r:  # fmt: skip
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = "".join(r.iter_text())
    events = [e for e in raw.split("\n\n") if e]
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)
    assert all(json.loads(e[6:])["object"] == "chat.completion.chunk" for e in events[:-1])


def test_history_is_followed_not_replayed_and_a_repeat_runs_once(serve: Any, keys: dict[str, str]) -> None:
    api = client(serve, keys["admin2"])
    first: list[Any] = [{"role": "system", "content": "You are helpful. Today is 2026-11-25."},
             {"role": "user", "content": "Which VMs are there?"}]  # fmt: skip
    a1 = api.chat.completions.create(model="labops", messages=first).choices[0].message.content or ""
    calls_after_first = len(tool_decisions(serve, "vm.list", "admin2"))
    # A client retry (or OpenWebUI's regenerate) sends the same request again: the stored reply, no new call.
    again = api.chat.completions.create(model="labops", messages=first).choices[0].message.content
    assert again == a1 and len(tool_decisions(serve, "vm.list", "admin2")) == calls_after_first

    # The next turn sends the whole history (with a changed system prompt, as OpenWebUI's variables do).
    second: list[Any] = [{"role": "system", "content": "You are helpful. Today is 2026-11-26."},
              {"role": "user", "content": "Which VMs are there?"}, {"role": "assistant", "content": a1},
              {"role": "user", "content": "and the backups?"}]  # fmt: skip
    a2 = api.chat.completions.create(model="labops", messages=second).choices[0].message.content or ""
    # The read tools' own summaries are the answer (agent.read_answers = tools): no model sentence after them.
    assert "backup.check" in a2 and "need attention" in a2
    # Only the new question ran: vm.list was not called again for the replayed history.
    assert len(tool_decisions(serve, "vm.list", "admin2")) == calls_after_first
    assert len(tool_decisions(serve, "backup.check", "admin2")) == 1


def test_openwebui_background_tasks_are_answered_without_the_agent(serve: Any, keys: dict[str, str]) -> None:
    api = client(serve, keys["frontend"], **{"X-OpenWebUI-Chat-Id": "chat-bg-1"})
    before = len(audit_entries(serve))
    title = api.chat.completions.create(model="labops", messages=[{"role": "user", "content": task("title")}],
                                        tools=OPENWEBUI_TOOLS, max_tokens=1000)  # type: ignore[arg-type]  # fmt: skip
    assert json.loads(title.choices[0].message.content or "")["title"] == "Which vms have failed backups"
    tags = api.chat.completions.create(model="labops", messages=[{"role": "user", "content": task("tags")}])
    assert json.loads(tags.choices[0].message.content or "")["tags"]
    follow = api.chat.completions.create(model="labops", messages=[{"role": "user", "content": task("follow_ups")}])
    assert json.loads(follow.choices[0].message.content or "") == {"follow_ups": []}
    queries = api.chat.completions.create(model="labops", messages=[{"role": "user", "content": task("queries")}],
                                          stream=True)  # fmt: skip
    assert json.loads("".join(c.choices[0].delta.content or "" for c in queries if c.choices)) == {"queries": []}
    assert len(audit_entries(serve)) == before, "housekeeping reached the guard"

    # The main chat's request carries OpenWebUI's own tools: accepted, and the lab's tools still answer.
    main = api.chat.completions.create(model="labops", messages=[{"role": "user", "content": "which VMs exist"}],
                                       tools=OPENWEBUI_TOOLS, stream=True)  # type: ignore[arg-type]  # fmt: skip
    assert "rke2-01" in "".join(c.choices[0].delta.content or "" for c in main if c.choices)  # type: ignore[union-attr]


def test_forwarded_users_only_count_on_a_trusted_key(serve: Any, keys: dict[str, str]) -> None:
    forwarded = {"X-OpenWebUI-User-Email": "ana@lab.example", "X-OpenWebUI-User-Name": "Ana%20Lima",
                 "X-OpenWebUI-User-Id": "1b2c", "X-OpenWebUI-User-Role": "admin"}  # fmt: skip
    untrusted = client(serve, keys["researcher2"], **forwarded, **{"X-OpenWebUI-Chat-Id": "fw-1"})
    untrusted.chat.completions.create(model="labops", messages=[{"role": "user", "content": "backups please"}])
    users = {e["user"] for e in audit_entries(serve) if e.get("tool") == "backup.check" and e.get("channel") == "api"}
    assert "researcher2" in users and "admin1" not in users, "a forwarded user on an untrusted key was believed"

    trusted = client(serve, keys["frontend"], **forwarded, **{"X-OpenWebUI-Chat-Id": "fw-2"})
    trusted.chat.completions.create(model="labops", messages=[{"role": "user", "content": "backups please"}])
    users = {e["user"] for e in audit_entries(serve) if e.get("tool") == "backup.check" and e.get("channel") == "api"}
    assert "admin1" in users, "the trusted front-end's mapped user (ana@lab.example → admin1) was not used"


def test_a_full_queue_answers_429_and_housekeeping_still_passes(serve: Any, keys: dict[str, str]) -> None:
    # The server runs one turn at a time with one waiting (max_concurrent_turns = max_queued_turns = 1).
    results: list[Any] = []

    def ask(user: str) -> None:
        try:
            client(serve, keys[user]).chat.completions.create(
                model="labops",
                messages=[{"role": "user", "content": f"slow question: how much room do the nodes have, asks {user}"}],
            )
            results.append("ok")
        except openai.RateLimitError as exc:
            results.append(exc)

    threads = [threading.Thread(target=ask, args=(u,)) for u in ("researcher1", "researcher2", "admin1")]
    for t in threads:
        t.start()
        time.sleep(0.3)
    # While the queue is full, an OpenWebUI title request is answered at once.
    title = client(serve, keys["frontend"]).chat.completions.create(
        model="labops", messages=[{"role": "user", "content": task("title")}]
    )
    assert "title" in (title.choices[0].message.content or "")
    for t in threads:
        t.join(60)
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert results.count("ok") == 2 and len(refused) == 1, results
    assert int(refused[0].response.headers["Retry-After"]) >= 1
    assert refused[0].body and "busy" in str(refused[0].body)


def test_two_users_at_once_get_their_own_answers(serve: Any, keys: dict[str, str]) -> None:
    answers: dict[str, str] = {}

    def ask(user: str, question: str) -> None:
        reply = client(serve, keys[user]).chat.completions.create(
            model="labops", messages=[{"role": "user", "content": question}]
        )
        answers[user] = reply.choices[0].message.content or ""

    threads = [threading.Thread(target=ask, args=("researcher1", "list the VMs")),
               threading.Thread(target=ask, args=("admin1", "check the backups"))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert "rke2-01" in answers["researcher1"] and "backup.check" not in answers["researcher1"]
    assert "backup.check" in answers["admin1"] and "vm.list" not in answers["admin1"]


def test_health_readiness_metrics_and_request_ids(serve: Any, keys: dict[str, str]) -> None:
    assert httpx.get(f"{serve.url}/healthz", timeout=10).json() == {"status": "ok"}
    ready = httpx.get(f"{serve.url}/readyz", timeout=30)
    # This lab has no documentation index: not ready, and the answer says what to run.
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["store"]["ok"] and checks["model"]["ok"] and not checks["docs"]["ok"]
    assert "labops ingest" in checks["docs"]["detail"]

    headers = {"Authorization": f"Bearer {keys['researcher1']}", "X-Request-ID": "trace-0001-abcdef"}
    body = {"model": "labops", "messages": [{"role": "user", "content": "which vms (trace)"}]}
    r = httpx.post(f"{serve.url}/v1/chat/completions", headers=headers, json=body, timeout=60)
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "trace-0001-abcdef"
    assert any(e.get("request_id") == "trace-0001-abcdef" and e.get("tool") == "vm.list" for e in audit_entries(serve))
    assert httpx.get(f"{serve.url}/healthz", timeout=10).headers["X-Request-ID"].startswith("req_")

    metrics = httpx.get(f"{serve.url}/metrics", timeout=10).text
    assert 'labops_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}' in metrics
    assert 'labops_tool_calls_total{outcome="ok",tool="vm.list"}' in metrics
    assert "labops_approvals_pending " in metrics and "labops_agent_turn_seconds_bucket" in metrics
    assert "labops_model_tokens_total" in metrics and "labops_housekeeping_answers_total" in metrics

    # Every log line is one JSON object; the request's lines carry its id.
    records = [json.loads(line) for line in serve.log_lines() if line.startswith("{")]
    assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    # One line per request, with its method, path, status and time (the README promises request logs).
    served = [r for r in records if r["logger"] == "labops.access"]
    traced = [r for r in served if r.get("request_id") == "trace-0001-abcdef"]
    assert traced and traced[0]["method"] == "POST" and traced[0]["status"] == 200 and traced[0]["ms"] > 0
    assert any(r["path"] == "/healthz" for r in served)
    assert any(r["logger"] == "labops.serve" and "listening on" in r["msg"] for r in records)
