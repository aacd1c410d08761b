"""Two ``labops serve`` processes sharing one PostgreSQL: checkpoints, approvals, keys and the audit log."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from core.config import load_settings
from policies.audit import AuditLog
from simlab.postgres import create_database
from tools.context import ToolContext
from tools.registry import get_tool
from tools.testing import run_unguarded

from .conftest import Serve, make_key, openai_client, server_env, write_config


@pytest.fixture(scope="module")
def replicas(module_lab: Any, desi_db: Any) -> Iterator[tuple[Serve, Serve, str]]:
    name = f"labops_state_{uuid.uuid4().hex[:8]}"
    creds = json.loads((desi_db.lab_dir / "secrets.json").read_text())["postgres"]
    create_database(desi_db.lab_dir, name, owner=creds["admin_user"])
    dsn = re.sub(r"dbname=\S+", f"dbname={name}", desi_db.admin_dsn)
    lab_dir = module_lab.lab_dir
    config = write_config(lab_dir / "replicas.toml", slack_url=None, extra=f'\n[audit]\ndatabase_url = "{dsn}"\n')
    # One after the other: the first creates the tables (checkpoint migrations are not meant to race).
    first = Serve(lab_dir=lab_dir, config=config, env=server_env()).start()
    second = Serve(lab_dir=lab_dir, config=config, env=server_env()).start()
    yield first, second, dsn
    first.stop()
    second.stop()


def _client(server: Serve, key: str, chat: str | None = None) -> openai.OpenAI:
    headers = {"X-OpenWebUI-Chat-Id": chat} if chat else None
    client: openai.OpenAI = openai_client(server, key, **(headers or {}))
    return client


def _ask(server: Serve, key: str, messages: list[dict[str, str]], chat: str | None = None) -> str:
    reply = _client(server, key, chat).chat.completions.create(model="labops", messages=messages)  # type: ignore[arg-type]
    return reply.choices[0].message.content or ""


def test_a_request_made_on_one_replica_is_approved_on_the_other_and_runs_once(
    replicas: tuple[Serve, Serve, str], module_lab: Any
) -> None:
    a, b, dsn = replicas
    keys = {u: make_key(module_lab.lab_dir, u, database_url=dsn) for u in ("researcher2", "admin1", "admin2")}
    history = [{"role": "user", "content": "Please create a VM called chat-vm"}]
    first = _ask(a, keys["researcher2"], history, chat="replica-1")
    approval_id = re.search(r"apr_[0-9a-f]{12}", first).group(0)  # type: ignore[union-attr]

    # The requester's thread lives in PostgreSQL: asking on the other replica finds it waiting.
    waiting = _ask(b, keys["researcher2"], [*history, {"role": "assistant", "content": first},
                                            {"role": "user", "content": "done yet?"}], chat="replica-1")  # fmt: skip
    assert f"waiting for approval {approval_id}" in waiting

    # Two admins approve at the same moment, one on each replica: the call runs once.
    outcomes: dict[str, str] = {}

    def approve(server: Serve, user: str) -> None:
        outcomes[user] = _ask(server, keys[user], [{"role": "user", "content": f"approve {approval_id}"}])

    threads = [
        threading.Thread(target=approve, args=(a, "admin1")),
        threading.Thread(target=approve, args=(b, "admin2")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum("went on" in text for text in outcomes.values()) == 1, outcomes

    ctx = ToolContext(settings=load_settings(None, lab_dir=module_lab.lab_dir))
    assert len([v for v in run_unguarded(get_tool("vm.list"), ctx, {}).data if v["name"] == "chat-vm"]) == 1
    audit = AuditLog.from_settings(load_settings(None, lab_dir=module_lab.lab_dir, audit={"database_url": dsn}))
    entries = audit.tail(100_000)
    started = [e for e in entries if e.get("event") == "started" and e.get("approval_id") == approval_id]
    assert len(started) == 1
    assert audit.verify().ok, audit.verify().message
    # Both replicas wrote to the one chain: each admin's approve decision is in it.
    deciders = {e["user"] for e in entries if e.get("tool") == "approval.approve" and e.get("event") == "decision"}
    assert deciders == {"admin1", "admin2"}

    # The requester, back on the first replica, sees the result.
    update = _ask(a, keys["researcher2"], [*history, {"role": "assistant", "content": first},
                                           {"role": "user", "content": "and now?"}], chat="replica-1")  # fmt: skip
    assert f"Update on {approval_id}" in update and "chat-vm" in update
