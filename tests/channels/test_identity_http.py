"""Who asks over HTTP and Slack, end to end: forged identities are refused or read-only, and on record."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from channels.server.app import create_app
from core.config import load_settings
from policies.apikeys import ApiKeys
from policies.audit import AuditLog
from policies.guard import Caller, Guard

SECRET = "jwt-secret-for-tests-only-0123456789"


def _jwt(claims: dict[str, Any], *, secret: str = SECRET) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    head, body = part({"alg": "HS256", "typ": "JWT"}), part(claims)
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def _script(path: Path) -> Path:
    rules = [
        {"when": "which vms", "reply": {"call": "vm_list", "args": {}}},
        {"after": "vm_list", "reply": "The VMs: {result}"},
        {"reply": "Ask me about the lab."},
    ]
    path.write_text(json.dumps({"rules": rules}))
    return path


@pytest.fixture
def service(module_lab: Any, tmp_path: Path) -> Iterator[tuple[TestClient, Any, str]]:
    settings = load_settings(
        None, lab_dir=module_lab.lab_dir, llm={"provider": "scripted", "script": str(_script(tmp_path / "s.json"))},
        agent={"docs_k": 0}, server={"forwarded_users": {"ana@lab.example": "admin1"}},
    )  # fmt: skip
    key = ApiKeys.from_settings(settings).create("owui", user="openwebui-svc", trusted_frontend=True)[1]
    with TestClient(create_app(settings)) as http:
        yield http, settings, key


def _pending(settings: Any) -> str:
    guard = Guard.from_settings(settings)
    result = guard.call("vm.provision", {"name": "spoof-target", "cores": 1, "memory_gib": 1},
                        caller=Caller(user="researcher1", channel="cli"))  # fmt: skip
    assert result.status == "needs_approval", result.message
    return str(result.data["approval"]["id"])


def _chat(http: TestClient, key: str, text: str, **headers: str) -> Any:
    body = {"model": "labops", "messages": [{"role": "user", "content": text}]}
    return http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}", **headers})


def _entries(settings: Any) -> list[dict[str, Any]]:
    return AuditLog.from_settings(settings).tail(100_000)


@pytest.mark.parametrize(
    "headers",
    [
        # A display name copied from the mapped admin's e-mail.
        {"X-OpenWebUI-User-Email": "mallory@x.org", "X-OpenWebUI-User-Name": "ana%40lab.example"},
        # An unmapped e-mail that is a lab user's name.
        {"X-OpenWebUI-User-Email": "admin2", "X-OpenWebUI-User-Name": "admin2"},
    ],
)
def test_a_forged_forwarded_user_cannot_approve(service: tuple[TestClient, Any, str], headers: dict[str, str]) -> None:
    http, settings, key = service
    approval = _pending(settings)
    r = _chat(http, key, f"approve {approval}", **headers)
    assert r.status_code == 200
    assert "Not done" in r.json()["choices"][0]["message"]["content"]
    tried = [e for e in _entries(settings) if e.get("tool") == "approval.approve" and e.get("event") == "decision"]
    assert tried and tried[-1]["decision"] == "deny" and tried[-1]["user"].startswith("openwebui-")
    origin = tried[-1]["origin"]
    # Enough to trace the spoof afterwards: the key, the forwarded identity as received, signed or not.
    assert origin["api_client"]["owner"] == "openwebui-svc" and origin["api_client"]["id"].startswith("key_")
    assert origin["forwarded"]["email"] == headers["X-OpenWebUI-User-Email"]
    assert origin["forwarded"]["signed"] is False and origin["mapped_by"].startswith("unmapped")
    guard = Guard.from_settings(settings)
    assert guard.approvals is not None and guard.approvals.get(approval).state == "pending"


def test_with_a_jwt_secret_forged_tokens_and_plain_headers_are_refused_and_recorded(
    module_lab: Any, tmp_path: Path
) -> None:
    settings = load_settings(
        None, lab_dir=module_lab.lab_dir, llm={"provider": "scripted", "script": str(_script(tmp_path / "s.json"))},
        agent={"docs_k": 0},
        server={"forwarded_users": {"ana@lab.example": "admin1"}, "forwarded_jwt_secret": SECRET},
    )  # fmt: skip
    key = ApiKeys.from_settings(settings).create("owui-jwt", user="openwebui-svc", trusted_frontend=True)[1]
    now = int(time.time())
    with TestClient(create_app(settings)) as http:
        forged = _jwt({"sub": "u1", "email": "ana@lab.example", "exp": now + 120}, secret="guessed")
        r = _chat(http, key, "hello", **{"X-OpenWebUI-User-Jwt": forged})
        assert r.status_code == 401 and r.json()["error"]["code"] == "forwarded_identity_refused"
        plain = _chat(http, key, "hello", **{"X-OpenWebUI-User-Email": "ana@lab.example"})
        assert plain.status_code == 401 and "FORWARD_USER_INFO_HEADER_JWT_SECRET" in plain.json()["error"]["message"]
        good = _jwt({"sub": "u1", "email": "ana@lab.example", "name": "Ana", "exp": now + 120})
        assert _chat(http, key, "hello", **{"X-OpenWebUI-User-Jwt": good}).status_code == 200
    refused = [e for e in _entries(settings) if e.get("event") == "identity_refused"]
    assert len(refused) >= 2
    assert {e["channel"] for e in refused} == {"api"} and all(
        e["origin"]["api_client"]["name"] == "owui-jwt" for e in refused
    )


SLACK_SECRET = "slack-signing-secret-for-tests-0123"


def _slack_signed(body: str, *, secret: str = SLACK_SECRET) -> dict[str, str]:
    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body) or ""
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip


def test_slack_bodies_of_the_wrong_shape_are_400_and_unlinked_accounts_are_on_record(
    module_lab: Any, tmp_path: Path
) -> None:
    from urllib.parse import urlencode

    settings = load_settings(
        None, lab_dir=module_lab.lab_dir, llm={"provider": "scripted", "script": str(_script(tmp_path / "s.json"))},
        agent={"docs_k": 0}, slack={"signing_secret": SLACK_SECRET, "users": {"U0ADMIN1": "admin1"}},
    )  # fmt: skip
    deep = "[" * 60_000 + "]" * 60_000
    bodies = [
        "payload=not-json",
        urlencode({"payload": "[1, 2]"}),
        urlencode({"payload": deep}),
        urlencode({"payload": json.dumps({"type": "block_actions", "user": "U0ADMIN1", "actions": []})}),
        urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U0ADMIN1"}, "actions": "x"})}),
        urlencode({"payload": json.dumps({"type": 7, "user": {"id": "U0ADMIN1"}})}),
    ]
    with TestClient(create_app(settings), raise_server_exceptions=False) as http:
        for body in bodies:
            r = http.post("/slack/events", content=body, headers=_slack_signed(body))
            assert r.status_code == 400 and "malformed" in r.json()["error"], (body[:80], r.status_code, r.text)
        # The same bodies unsigned are 401 before anything reads them.
        r = http.post("/slack/events", content=bodies[0], headers=_slack_signed(bodies[0], secret="wrong-secret"))
        assert r.status_code == 401
        command = urlencode({"command": "/lab", "text": "approve apr_1234", "user_id": "U0MALLORY",
                             "user_name": "admin1", "team_id": "T0EVIL", "channel_id": "C1"})  # fmt: skip
        r = http.post("/slack/events", content=command, headers=_slack_signed(command))
        assert r.status_code == 200 and "not linked" in r.text
        # A chat body nested 60,000 deep is a 400 too (json.loads recursed past Python's limit: a 500).
        key = ApiKeys.from_settings(settings).create("deep", user="researcher1")[1]
        r = http.post("/v1/chat/completions", content=deep, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 400 and "nested" in r.json()["error"]["message"]
    refused = [e for e in _entries(settings) if e.get("event") == "identity_refused" and e.get("channel") == "slack"]
    assert refused and refused[-1]["origin"]["slack_user"] == "U0MALLORY"
    assert refused[-1]["origin"]["slack_team"] == "T0EVIL" and refused[-1]["origin"]["slack_user_name"] == "admin1"


def test_the_agent_s_tool_calls_carry_the_request_s_origin(service: tuple[TestClient, Any, str]) -> None:
    http, settings, key = service
    headers = {"X-OpenWebUI-User-Email": "ana@lab.example", "X-OpenWebUI-User-Name": "Ana", "X-OpenWebUI-Chat-Id": "o1"}
    r = _chat(http, key, "which vms are there?", **headers)
    assert r.status_code == 200
    calls = [e for e in _entries(settings) if e.get("tool") == "vm.list" and e.get("event") == "decision"]
    assert calls and calls[-1]["user"] == "admin1" and calls[-1]["channel"] == "api"
    origin = calls[-1]["origin"]
    assert origin["mapped_by"] == "email" and origin["forwarded"] == {
        "email": "ana@lab.example", "id": "", "name": "Ana", "signed": False
    }  # fmt: skip
    assert origin["api_client"]["trusted_frontend"] is True and calls[-1]["request_id"].startswith("req_")
