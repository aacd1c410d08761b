"""The Slack bot of a running ``labops serve``: signed requests, ``response_url`` answers, approval buttons."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from core.config import load_settings
from policies.audit import AuditLog
from tools.context import ToolContext
from tools.registry import get_tool
from tools.testing import run_unguarded

from .conftest import SIGNING_SECRET, click, openai_client, post_slack, signed, slash


def test_sub_commands_answer_from_the_tools_through_response_url(serve: Any, slack: Any) -> None:
    for text, expected in (("vms", "rke2-01"), ("nodes", "node01"), ("backups", "qso-vae-dev"),
                           ("approvals", "no approval request is waiting"),
                           # This lab runs no Ray head: the answer says so and which setting fixes it.
                           ("jobs", "ray.address")):  # fmt: skip
        url = slack.response_url()
        body = slash(text, user="U0RES1", response_url=url)
        ack = post_slack(serve, body, signed(body))
        # Acknowledged with an empty body; the answer comes through response_url.
        assert ack.status_code == 200 and ack.text == "", (text, ack.text)
        answer = slack.wait_for(lambda p, u=url: p["path"] == u.removeprefix(slack.url))
        assert expected in answer["body"]["text"].lower(), (text, answer)
    for text in ("help", ""):
        body = slash(text, user="U0RES1", response_url=slack.response_url())
        help_text = post_slack(serve, body, signed(body)).text
        assert "`approvals`" in help_text and "`approve apr_…`" in help_text


def test_free_text_goes_to_the_agent(serve: Any, slack: Any) -> None:
    url = slack.response_url()
    body = slash("which VMs are running?", user="U0RES2", response_url=url)
    ack = post_slack(serve, body, signed(body))
    assert ack.status_code == 200 and "working on it" in ack.text
    answer = slack.wait_for(lambda p: p["path"] == url.removeprefix(slack.url))
    assert "vm.list" in answer["body"]["text"] and "rke2-01" in answer["body"]["text"]


def test_unsigned_forged_stale_and_replayed_requests_get_401(serve: Any, slack: Any) -> None:
    url = slack.response_url()
    body = slash("vms", user="U0ADMIN1", response_url=url)
    assert post_slack(serve, body, {"Content-Type": "application/x-www-form-urlencoded"}).status_code == 401
    assert post_slack(serve, body, signed(body, secret="not-the-secret-at-all")).status_code == 401
    tampered = signed(body)
    assert post_slack(serve, body.replace("vms", "nodes"), tampered).status_code == 401
    stale = signed(body, timestamp=int(time.time()) - 6 * 60)
    assert post_slack(serve, body, stale).status_code == 401
    future = signed(body, timestamp=int(time.time()) + 6 * 60)
    assert post_slack(serve, body, future).status_code == 401
    good = signed(body)
    assert post_slack(serve, body, good).status_code == 200
    assert post_slack(serve, body, good).status_code == 401, "a replayed request was accepted"
    slack.wait_for(lambda p: p["path"] == url.removeprefix(slack.url))
    time.sleep(1.0)
    assert len(slack.to(url)) == 1, "a refused request reached the tools"
    assert SIGNING_SECRET not in httpx.get(f"{serve.url}/metrics", timeout=10).text


def test_an_unlinked_slack_account_may_do_nothing(serve: Any, slack: Any) -> None:
    url = slack.response_url()
    body = slash("vms", user="U0STRANGER", response_url=url)
    ack = post_slack(serve, body, signed(body))
    assert ack.status_code == 200 and "not linked" in ack.text and "slack.users" in ack.text
    time.sleep(0.5)
    assert slack.to(url) == []


def _vms_named(lab_dir: Any, name: str) -> list[dict[str, Any]]:
    ctx = ToolContext(settings=load_settings(None, lab_dir=lab_dir))
    result = run_unguarded(get_tool("vm.list"), ctx, {})
    return [v for v in result.data if v["name"] == name]


def test_an_api_request_approved_by_a_slack_click_runs_once(serve: Any, slack: Any, keys: dict[str, str]) -> None:
    requester = openai_client(serve, keys["researcher2"], **{"X-OpenWebUI-Chat-Id": "slack-approval-1"})
    history: list[Any] = [{"role": "user", "content": "Please create a VM called chat-vm"}]
    first = requester.chat.completions.create(model="labops", messages=history).choices[0].message.content or ""
    approval_id = re.search(r"apr_[0-9a-f]{12}", first).group(0)  # type: ignore[union-attr]
    assert "Approval needed" in first and '"name": "chat-vm"' in first and "admin1" in first

    # The request was posted to the approvals channel with buttons bound to its id.
    posted = slack.wait_for(lambda p: p["path"] == "/api/chat.postMessage" and approval_id in str(p["body"]))
    assert posted["auth"] == "Bearer xoxb-test-only" and posted["body"]["channel"] == "C0APPROVALS"
    buttons = [e for b in posted["body"]["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {b["action_id"] for b in buttons} == {"labops_approve", "labops_deny"}
    assert all(b["value"] == approval_id for b in buttons)

    # The requester may not approve their own request (four eyes): refused, only they see why, buttons stay.
    own = slack.response_url()
    body = click("approve", approval_id, user="U0RES2", response_url=own)
    assert post_slack(serve, body, signed(body)).status_code == 200
    refusal = slack.wait_for(lambda p: p["path"] == own.removeprefix(slack.url))
    assert refusal["body"].get("replace_original") is False and "Not done" in refusal["body"]["text"]

    # An admin clicks Approve: the message becomes the outcome and the VM is made, once.
    url = slack.response_url()
    body = click("approve", approval_id, user="U0ADMIN1", response_url=url)
    assert post_slack(serve, body, signed(body)).status_code == 200
    done = slack.wait_for(lambda p: p["path"] == url.removeprefix(slack.url) and "went on" in p["body"]["text"])
    assert done["body"]["replace_original"] is True and "chat-vm" in done["body"]["text"]
    # A second click (another admin, or the same one again) changes nothing.
    again_url = slack.response_url()
    body = click("approve", approval_id, user="U0ADMIN1", response_url=again_url)
    post_slack(serve, body, signed(body))
    slack.wait_for(lambda p: p["path"] == again_url.removeprefix(slack.url))
    assert len(_vms_named(serve.lab_dir, "chat-vm")) == 1

    # The requester's thread shows the result on their next request.
    later: list[Any] = [*history, {"role": "assistant", "content": first}, {"role": "user", "content": "is it there?"}]
    reply = requester.chat.completions.create(model="labops", messages=later)
    assert f"Update on {approval_id}" in (reply.choices[0].message.content or "")
    audit = AuditLog.from_settings(load_settings(None, lab_dir=serve.lab_dir))
    executed = [e for e in audit.tail(100_000) if e.get("tool") == "vm.provision" and e.get("event") == "started"
                and e.get("approval_id") == approval_id]  # fmt: skip
    assert len(executed) == 1 and audit.verify().ok


def test_a_deny_typed_in_slack_reaches_the_requester(serve: Any, slack: Any, keys: dict[str, str]) -> None:
    requester = openai_client(serve, keys["researcher1"], **{"X-OpenWebUI-Chat-Id": "slack-deny-1"})
    history: list[Any] = [{"role": "user", "content": "Please create a VM called chat-vm-2"}]
    first = requester.chat.completions.create(model="labops", messages=history).choices[0].message.content or ""
    found = re.search(r"apr_[0-9a-f]{12}", first)
    assert found is not None, first
    approval_id = found.group(0)

    url = slack.response_url()
    body = slash(f"deny {approval_id} too big for a scratch VM", user="U0ADMIN1", response_url=url)
    assert post_slack(serve, body, signed(body)).status_code == 200
    told = slack.wait_for(lambda p: p["path"] == url.removeprefix(slack.url) and "went on" in p["body"]["text"])
    assert "denied" in slack.to(url)[0]["body"]["text"] and "too big for a scratch VM" in told["body"]["text"]

    later: list[Any] = [*history, {"role": "assistant", "content": first}, {"role": "user", "content": "so?"}]
    update = requester.chat.completions.create(model="labops", messages=later).choices[0].message.content or ""
    assert f"Update on {approval_id}" in update and "too big for a scratch VM" in update
    # Nothing was made; a second decision on the same request is refused.
    assert all(p["body"].get("text") for p in slack.to(url))
    again = slack.response_url()
    body = slash(f"approve {approval_id}", user="U0ADMIN1", response_url=again)
    post_slack(serve, body, signed(body))
    assert "Not done" in slack.wait_for(lambda p: p["path"] == again.removeprefix(slack.url))["body"]["text"]
