"""The channel parts on their own: identity, admission, chat mapping, replays, commands, scripts, keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pwd
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agent.commands import approval_command, housekeeping
from agent.scripted import rules_responder
from channels.cli.main import cli
from channels.server.admission import Busy, TurnGate
from channels.server.chats import ChatStore
from channels.server.identity import identify, verify_hs256
from channels.server.slack_replay import SlackReplays
from core.config import load_settings
from core.store import Database
from policies.apikeys import ApiKeys
from policies.identity import os_account

SECRET = "jwt-secret-for-tests-only-0123456789"


def _jwt(claims: dict[str, Any], *, secret: str = SECRET, alg: str = "HS256") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    head, body = part({"alg": alg, "typ": "JWT"}), part(claims)
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


@pytest.fixture
def keys(tmp_path: Path) -> ApiKeys:
    return ApiKeys(Database.sqlite(tmp_path / "s.sqlite"))


def test_identity_from_keys_and_forwarded_users(tmp_path: Path, keys: ApiKeys) -> None:
    settings = load_settings(None, lab_dir=tmp_path, server={"forwarded_users": {"ana@lab.example": "admin1"}})
    _, plain = keys.create("plain", user="researcher1")
    _, front = keys.create("owui", user="owui-svc", trusted_frontend=True)
    forwarded = {"x-openwebui-user-email": "ana@lab.example", "x-openwebui-user-name": "Ana%20Lima",
                 "x-openwebui-chat-id": "c1/../../x y"}  # fmt: skip
    assert identify(settings, keys, {"authorization": f"Bearer {plain}", **forwarded}).user == "researcher1"  # type: ignore[union-attr]
    who = identify(settings, keys, {"authorization": f"Bearer {front}", **forwarded})
    assert who is not None and who.user == "admin1" and who.forwarded and who.chat_id == "c1....xy"
    unmapped = identify(settings, keys, {"authorization": f"Bearer {front}", "x-openwebui-user-email": "bo@x.org"})
    assert unmapped is not None and unmapped.user == "openwebui-bo@x.org"
    assert unmapped.origin["mapped_by"].startswith("unmapped") and unmapped.origin["api_client"]["id"]
    assert identify(settings, keys, {"authorization": f"Bearer {front}"}).user == "owui-svc"  # type: ignore[union-attr]
    for bad in ("", "Bearer", f"Basic {plain}", f"Bearer {plain}x", "Bearer lops_zzz_abc", f"bearer {plain[:-1]}"):
        assert identify(settings, keys, {"authorization": bad}) is None, bad


LAB_USERS = {"admin1", "admin2", "researcher1", "researcher2", "lab-operator"}


def test_a_display_name_is_shown_never_trusted(tmp_path: Path, keys: ApiKeys) -> None:
    # Every OpenWebUI user can edit their display name; naming oneself after an admin's mapped e-mail (or a
    # lab user) must change nothing.
    settings = load_settings(None, lab_dir=tmp_path, server={"forwarded_users": {"ana@lab.example": "admin1",
                                                                                  "u-42": "admin2"}})  # fmt: skip
    _, front = keys.create("owui", user="owui-svc", trusted_frontend=True)
    auth = {"authorization": f"Bearer {front}"}
    for name in ("ana@lab.example", "admin1", "u-42", "ANA@LAB.EXAMPLE"):
        who = identify(settings, keys, {**auth, "x-openwebui-user-email": "mallory@x.org",
                                        "x-openwebui-user-name": name}, known=LAB_USERS.__contains__)  # fmt: skip
        assert who is not None and who.user == "openwebui-mallory@x.org", name
        assert who.origin["forwarded"]["name"] == name and who.origin["forwarded"]["signed"] is False
    # A name alone identifies nobody: the front-end's own account acts.
    only_name = identify(settings, keys, {**auth, "x-openwebui-user-name": "ana@lab.example"})
    assert only_name is not None and only_name.user == "owui-svc" and not only_name.forwarded
    # The stable identifiers do map (an e-mail in any case, or OpenWebUI's user id).
    by_email = identify(settings, keys, {**auth, "x-openwebui-user-email": "Ana@Lab.Example"})
    by_id = identify(settings, keys, {**auth, "x-openwebui-user-id": "u-42", "x-openwebui-user-name": "x"})
    assert by_email is not None and by_email.user == "admin1" and by_email.origin["mapped_by"] == "email"
    assert by_id is not None and by_id.user == "admin2" and by_id.origin["mapped_by"] == "id"


@pytest.mark.parametrize("email", ["admin2", "researcher1", "lab-operator", "Admin2", "admin2\n"])
def test_an_unmapped_e_mail_never_becomes_a_lab_user(tmp_path: Path, keys: ApiKeys, email: str) -> None:
    settings = load_settings(None, lab_dir=tmp_path)
    _, front = keys.create("owui", user="owui-svc", trusted_frontend=True)
    who = identify(settings, keys, {"authorization": f"Bearer {front}", "x-openwebui-user-email": email},
                   known=LAB_USERS.__contains__)  # fmt: skip
    assert who is not None and who.user.startswith("openwebui-") and who.user not in LAB_USERS
    # Even a lab user called "openwebui-admin2" (an operator's odd naming) is not reachable this way.
    odd = identify(settings, keys, {"authorization": f"Bearer {front}", "x-openwebui-user-email": "admin2"},
                   known=lambda n: n == "openwebui-admin2")  # fmt: skip
    assert odd is not None and odd.user != "openwebui-admin2" and odd.user.startswith("openwebui-")


def test_with_a_jwt_secret_only_the_signed_user_counts(tmp_path: Path, keys: ApiKeys) -> None:
    settings = load_settings(None, lab_dir=tmp_path, server={"forwarded_users": {"ana@lab.example": "admin1"},
                                                             "forwarded_jwt_secret": SECRET})  # fmt: skip
    _, front = keys.create("owui", user="owui-svc", trusted_frontend=True)
    now = time.time()
    good = _jwt({"sub": "u1", "email": "ana@lab.example", "name": "Ana", "role": "user", "iss": "open-webui",
                 "iat": int(now), "exp": int(now) + 120})  # fmt: skip
    auth = {"authorization": f"Bearer {front}"}
    assert identify(settings, keys, {**auth, "x-openwebui-user-jwt": good}).user == "admin1"  # type: ignore[union-attr]
    # Plain headers are no longer believed, even on the trusted key: the request is refused, saying why.
    plain = identify(settings, keys, {**auth, "x-openwebui-user-email": "ana@lab.example"})
    assert plain is not None and plain.refused and "forwarded_jwt_secret" in plain.refused
    forged_token = _jwt({"email": "ana@lab.example", "exp": int(now) + 120}, secret="x")
    forged = identify(settings, keys, {**auth, "x-openwebui-user-jwt": forged_token})
    assert forged is not None and forged.refused and "not a valid" in forged.refused
    # A signed token's name claim is a display name too.
    named = _jwt({"sub": "u9", "email": "eve@x.org", "name": "ana@lab.example", "exp": int(now) + 120})
    who = identify(settings, keys, {**auth, "x-openwebui-user-jwt": named}, known=LAB_USERS.__contains__)
    assert who is not None and who.user == "openwebui-eve@x.org" and who.origin["forwarded"]["signed"] is True
    assert identify(settings, keys, auth).user == "owui-svc"  # type: ignore[union-attr]
    claims = {"sub": "u1", "email": "ana@lab.example", "exp": int(now) + 120}
    for token in (
        _jwt(claims, secret="other-secret"),
        _jwt({**claims, "exp": int(now) - 600}),
        _jwt(claims, alg="none"),
        _jwt({**claims, "iss": "someone"}),
        "a.b",
        "x.y.z",
        good[:-3] + "AAA",
    ):
        assert verify_hs256(token, SECRET) is None, token  # fmt: skip


def test_the_gate_admits_a_bounded_number_and_says_when_to_retry() -> None:
    gate = TurnGate(running=1, queued=1, typical_turn_s=5)
    gate.admit()
    gate.admit()
    with pytest.raises(Busy) as busy:
        gate.admit()
    assert busy.value.retry_after >= 5
    gate.abandon()
    gate.admit()
    with gate.slot():
        assert gate.admitted == 2
    assert gate.admitted == 1


def test_chats_follow_the_history_and_recognise_repeats(tmp_path: Path) -> None:
    chats = ChatStore(Database.sqlite(tmp_path / "s.sqlite"))
    first: list[dict[str, Any]] = [{"role": "system", "content": "date 1"}, {"role": "user", "content": "hi"}]
    thread = chats.thread_for("u", first, chat_id=None)
    assert chats.thread_for("u", first, chat_id=None) != thread, "an unanswered history starts a new thread"
    chats.remember("u", first, "hello!", thread)
    second: list[dict[str, Any]] = [
        {"role": "system", "content": "date 2"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello! "},
        {"role": "user", "content": [{"type": "text", "text": "more"}]},
    ]
    assert chats.thread_for("u", second, chat_id=None) == thread
    assert chats.thread_for("v", second, chat_id=None) != thread, "another user's identical history is theirs"
    assert chats.thread_for("u", second, chat_id="c1") == chats.thread_for("u", first, chat_id="c1")

    key = chats.request_key("u", second, chat_id=None)
    assert chats.claim(key) and not chats.claim(key)
    assert chats.reply(key, wait_s=0) is None, "still running"
    chats.finish(key, "answer")
    assert chats.reply(key, wait_s=0) == "answer" and not chats.claim(key)
    other = chats.request_key("u", first, chat_id=None)
    assert chats.claim(other)
    chats.release(other)
    assert chats.claim(other), "a released claim (the turn failed) may run again"


def test_repeats_expire_and_dead_claims_are_taken_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chats = ChatStore(Database.sqlite(tmp_path / "s.sqlite"))
    done, dead = chats.request_key("u", [{"role": "user", "content": "a"}], chat_id=None), "k2"
    assert chats.claim(done) and chats.claim(dead)
    chats.finish(done, "old answer")
    later = time.time() + 3600
    monkeypatch.setattr("channels.server.chats.time.time", lambda: later)
    assert chats.claim(done), "the same words an hour later are a new question"
    assert chats.claim(dead), "a claim whose process died is taken over"


def test_slack_replays_are_recognised(tmp_path: Path) -> None:
    seen = SlackReplays(Database.sqlite(tmp_path / "s.sqlite"))
    assert seen.first_time("sig-1", now=1000.0) and not seen.first_time("sig-1", now=1001.0)
    assert seen.first_time("sig-1", now=1000.0 + 3600), "kept only beyond the five-minute window"


@pytest.mark.parametrize(
    ("text", "verb", "approval_id", "reason"),
    [("approve apr_1a2b3c4d5e6f", "approve", "apr_1a2b3c4d5e6f", ""),
     ("  Approve apr_1a2b3c", "approve", "apr_1a2b3c", ""),
     ("/approve apr_1a2b3c4d5e6f thanks", "approve", "apr_1a2b3c4d5e6f", "thanks"),
     ("deny apr_1a2b3c4d5e6f: too big, use 4 cores", "deny", "apr_1a2b3c4d5e6f", "too big, use 4 cores"),
     ("DENY apr_abcdef - no\nreally", "deny", "apr_abcdef", "no\nreally")],
)  # fmt: skip
def test_approval_commands(text: str, verb: str, approval_id: str, reason: str) -> None:
    command = approval_command(text)
    assert command is not None and (command.verb, command.approval_id, command.reason) == (verb, approval_id, reason)


@pytest.mark.parametrize("text", ["please approve my request", "approve it", "can you deny apr_1a2b3c?",
                                  "approve apr_XYZ123", "approve apr_12"])  # fmt: skip
def test_not_approval_commands(text: str) -> None:
    assert approval_command(text) is None


def test_housekeeping_only_answers_front_end_tasks() -> None:
    assert housekeeping([{"role": "user", "content": "Which VMs have failed backups?"}]) is None
    assert housekeeping([{"role": "user", "content": "Explain ### Task: in markdown"}]) is None
    task = '### Task:\nSomething new.\n### Output:\nJSON format: { "summary": "..." }\nUSER: hi'
    assert json.loads(housekeeping([{"role": "user", "content": task}]) or "") == {}
    no_format = "### Task:\nGenerate a concise title for this chat\n<chat_history>\nUSER: GPU memory?\n</chat_history>"
    assert json.loads(housekeeping([{"role": "user", "content": no_format}]) or "")["title"] == "Gpu memory"


def test_rules_answer_by_question_and_tool_result() -> None:
    respond = rules_responder([{"when": "vms", "reply": {"call": "vm_list", "args": {"owner": "x"}}},
                               {"after": "vm.list", "reply": "Found: {result}"}, {"reply": "default"}])  # fmt: skip
    first = respond([HumanMessage(content="I am u. Which VMs?")], [])
    assert isinstance(first, AIMessage) and first.tool_calls[0]["name"] == "vm_list"
    result = ToolMessage(content="Result of vm.list:\n> status: ok\n> message: 3 VMs", tool_call_id="1", name="vm_list")
    assert respond([HumanMessage(content="Which VMs?"), first, result], []) == "Found: 3 VMs"
    assert respond([HumanMessage(content="hello")], []) == "default"


def test_the_cli_account_comes_from_the_uid_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "someone-else")
    monkeypatch.setenv("LOGNAME", "someone-else")
    assert os_account() == pwd.getpwuid(os.geteuid()).pw_name


def test_keys_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["--lab-dir", str(tmp_path), "keys", *args])

    monkeypatch.setattr("policies.identity.os_account", lambda: "alice")  # an unmapped account: an unknown user
    refused = run("create", "owui", "--as", "admin1")
    assert refused.exit_code == 1 and "operator" in refused.output
    assert run("create", "owui", "--trusted-frontend").exit_code == 1
    own = run("create", "mine", "--json")
    assert own.exit_code == 0 and json.loads(own.output)["user"] == "alice"

    monkeypatch.setattr("policies.identity.os_account", lambda: "root")  # mapped to lab-operator in lab.toml
    made = run("create", "openwebui", "--as", "owui-svc", "--trusted-frontend", "--json")
    record = json.loads(made.output)
    assert made.exit_code == 0 and record["key"].startswith("lops_") and record["trusted_frontend"]
    listed = run("list", "--json")
    assert record["key"] not in listed.output and {k["name"] for k in json.loads(listed.output)} == {
        "mine",
        "openwebui",
    }
    store = ApiKeys.from_settings(load_settings(None, lab_dir=tmp_path))
    assert store.check(record["key"]) is not None
    # A key acting as the operator account itself could only read and would answer "my VMs" for nobody.
    operator_key = run("create", "scripts")
    assert operator_key.exit_code == 1 and "--as USER" in operator_key.output
    # Ids are printed whole (not cut at 80 columns), and a unique prefix is enough to revoke.
    wide = CliRunner().invoke(cli, ["--lab-dir", str(tmp_path), "keys", "list"], terminal_width=60)
    assert record["id"] in wide.output
    assert run("revoke", record["id"][:8]).exit_code == 0 and store.check(record["key"]) is None
    assert run("revoke", "key_nope").exit_code == 1
