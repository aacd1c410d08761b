"""A running ``labops serve`` (a real process on a free port), a stand-in Slack, and signed Slack requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from core.config import load_settings
from policies.apikeys import ApiKeys

ROOT = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"  # test-only: the stand-in Slack and the server share it

# The scripted model's rules: the same question always gets the same answer, in any order and concurrently.
SCRIPT = {
    "rules": [
        {"when": "which vms|list (the )?vms", "reply": {"call": "vm_list", "args": {}}},
        {"when": "backups?", "reply": {"call": "backup_check", "args": {}}},
        {"when": "create a vm called chat-vm-2",
         "reply": {"call": "vm_provision", "args": {"name": "chat-vm-2", "cores": 1, "memory_gib": 1}}},
        {"when": "create a vm called ([a-z0-9-]+)",
         "reply": {"call": "vm_provision", "args": {"name": "chat-vm", "cores": 1, "memory_gib": 1}}},
        {"when": "slow question", "delay": 3, "reply": {"call": "vm_nodes", "args": {}}},
        {"after": "*", "reply": "Done: {result}"},
        {"reply": "Ask me about the lab's VMs, backups, Ray jobs or the DESI tables."},
    ]
}  # fmt: skip


class SlackStandIn:
    """The Slack Web API (``chat.postMessage``) and ``response_url`` endpoints, recording what they receive."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    body = json.loads(raw or "{}")
                else:
                    from urllib.parse import parse_qsl

                    body = dict(parse_qsl(raw))
                    for key in ("blocks",):
                        if key in body:
                            body[key] = json.loads(body[key])
                with outer.cond:
                    auth = self.headers.get("Authorization") or ""
                    outer.posts.append({"path": self.path, "body": body, "auth": auth})
                    outer.cond.notify_all()
                answer = {"ok": True, "channel": body.get("channel"), "ts": f"{time.time():.6f}"}
                data = json.dumps(answer).encode() if self.path.startswith("/api/") else b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "application/json" if self.path.startswith("/api/") else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._hooks = 0

    def response_url(self) -> str:
        """A fresh response_url (one per Slack request, as Slack gives)."""
        self._hooks += 1
        return f"{self.url}/hooks/{self._hooks}/{os.urandom(4).hex()}"

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        """The first recorded post ``match`` accepts (waiting for it)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for post in self.posts:
                    if match(post):
                        return post
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching post within {timeout} s; got {self.posts}")
                self.cond.wait(left)

    def to(self, url: str) -> list[dict[str, Any]]:
        """Posts received at one response_url."""
        path = url.removeprefix(self.url)
        with self.cond:
            return [p for p in self.posts if p["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def signed(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's headers for ``body``, signed with slack_sdk's own code."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body) or ""
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip


def slash(text: str, *, user: str, response_url: str, command: str = "/lab", channel: str = "C0OPS") -> str:
    """A slash command's form body as Slack sends it."""
    return urlencode({"token": "deprecated", "team_id": "T0LAB", "team_domain": "lab", "channel_id": channel,
                      "channel_name": "ops", "user_id": user, "user_name": user.lower(), "command": command,
                      "text": text, "api_app_id": "A0LABOPS", "is_enterprise_install": "false",
                      "response_url": response_url, "trigger_id": "1.2.3"})  # fmt: skip


def click(verb: str, approval_id: str, *, user: str, response_url: str) -> str:
    """A block_actions form body (one field, ``payload``) for an Approve/Deny click."""
    return button(f"labops_{verb}", approval_id, user=user, response_url=response_url,
                  block_id=f"approval_{approval_id}", label=verb.title())  # fmt: skip


def button(action_id: str, value: str, *, user: str, response_url: str, block_id: str = "actions",
           label: str = "Button", channel: str = "C0APPROVALS") -> str:  # fmt: skip
    """A block_actions form body (one field, ``payload``) for a click on any LabOps button."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T0LAB"},
        "api_app_id": "A0LABOPS", "token": "deprecated", "team": {"id": "T0LAB", "domain": "lab"},
        "container": {"type": "message", "message_ts": "1719936116.634509", "channel_id": channel,
                      "is_ephemeral": False},
        "trigger_id": "7.2.f3", "channel": {"id": channel, "name": "ops"}, "enterprise": None,
        "is_enterprise_install": False, "message": {"type": "message", "ts": "1719936116.634509", "text": "message"},
        "state": {"values": {}}, "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": block_id,
                     "text": {"type": "plain_text", "text": label}, "value": value,
                     "action_ts": f"{time.time():.6f}"}],
    }  # fmt: skip
    return urlencode({"payload": json.dumps(payload)})


@dataclass
class Serve:
    """A ``labops serve`` process."""

    lab_dir: Path
    config: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    log: Path = field(default_factory=Path)

    def start(self, timeout: float = 90.0) -> Serve:
        port_file = self.lab_dir / f"serve-{os.urandom(3).hex()}.port"
        self.log = port_file.with_suffix(".log")
        cmd = [str(Path(sys.executable).parent / "labops"), "--config", str(self.config), "--lab-dir",
               str(self.lab_dir), "serve", "--port", "0", "--port-file", str(port_file)]  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"labops serve did not start: {self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


def write_config(path: Path, *, slack_url: str | None, extra: str = "") -> Path:
    """A labops.toml for the server under test."""
    script = path.parent / "script.json"
    script.write_text(json.dumps(SCRIPT))
    text = f"""
[llm]
provider = "scripted"
script = "{script}"

[agent]
docs_k = 0

[server]
max_concurrent_turns = 1
max_queued_turns = 1

[server.forwarded_users]
"ana@lab.example" = "admin1"
{extra}
"""
    if slack_url:
        text += f"""
[slack]
signing_secret = "{SIGNING_SECRET}"
bot_token = "xoxb-test-only"
approvals_channel = "C0APPROVALS"
api_base_url = "{slack_url}/api/"

[slack.users]
U0ADMIN1 = "admin1"
U0RES2 = "researcher2"
U0RES1 = "researcher1"
"""
    path.write_text(text)
    return path


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABOPS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def make_key(lab_dir: Path, user: str, *, trusted: bool = False, database_url: str | None = None) -> str:
    overrides: dict[str, Any] = {"audit": {"database_url": database_url}} if database_url else {}
    keys = ApiKeys.from_settings(load_settings(None, lab_dir=lab_dir, **overrides))
    return keys.create(f"test-{user}", user=user, trusted_frontend=trusted)[1]


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture(scope="module")
def serve(module_lab: Any, slack: SlackStandIn) -> Iterator[Serve]:
    """One server over the module's lab, with the Slack bot on."""
    lab_dir = module_lab.lab_dir
    config = write_config(lab_dir / "labops.toml", slack_url=slack.url)
    server = Serve(lab_dir=lab_dir, config=config, env=server_env()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keys(serve: Serve) -> dict[str, str]:
    """API keys of the users the tests act as."""
    return {u: make_key(serve.lab_dir, u) for u in ("researcher1", "researcher2", "admin1", "admin2")} | {
        "frontend": make_key(serve.lab_dir, "openwebui-svc", trusted=True)
    }


_CLIENTS: list[Any] = []


def openai_client(server: Serve, key: str, **headers: str) -> Any:
    """The official SDK's client for ``server``; closed after the test (its connections are sockets)."""
    import openai

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, default_headers=headers or None, max_retries=0)
    _CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def post_slack(server: Serve, body: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/slack/events", content=body, headers=headers, timeout=30)
