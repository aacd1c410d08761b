"""Incidents through the service: watchers and Alertmanager in, Slack messages and guarded fix buttons out.

The app runs in this process (Starlette's test client) over the in-process PVE/PBS simulators, so
``time-machine`` moves every clock together: the watcher cycle at 14:00, the verify run of the next morning.
Slack is the local stand-in, reached by slack_sdk through ``slack.api_base_url``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from starlette.testclient import TestClient

from channels.server.app import create_app
from core.config import load_settings
from knowledge.embeddings import OnnxEmbedder
from knowledge.ingest import ingest_paths
from policies.audit import AuditLog
from simlab.tls import ensure_tls

from .conftest import ROOT, SIGNING_SECRET, SlackStandIn, button, signed

DAY0 = dt.datetime(2026, 6, 1, 14, 0, tzinfo=dt.UTC)
TOKEN = "am-test-token-0123456789"  # test-only: the stand-in Alertmanager and the service share it
CHANNEL = "C0ALERTS"


def _config(path: Path, slack_url: str) -> Path:
    path.write_text(f"""
[llm]
provider = "scripted"

[slack]
signing_secret = "{SIGNING_SECRET}"
bot_token = "xoxb-test-only"
alerts_channel = "{CHANNEL}"
api_base_url = "{slack_url}/api/"

[slack.users]
U0ADMIN1 = "admin1"
U0RES1 = "researcher1"

[alerts]
webhook_token = "{TOKEN}"
webhook_username = "alertmanager"
webhook_password = "basic-test-only"
max_new_messages = 5
""")
    return path


@pytest.fixture
def service(tmp_path: Path, inprocess_lab: Any, embedder: OnnxEmbedder) -> Iterator[dict[str, Any]]:
    slack = SlackStandIn()
    lab_dir = tmp_path / "lab"
    ensure_tls(lab_dir)
    settings = load_settings(_config(tmp_path / "labops.toml", slack.url), lab_dir=lab_dir)
    ingest_paths(settings, [ROOT / "knowledge" / "docs" / "runbook-stale-backup.md"], embedder=embedder)
    app = create_app(settings)
    # Milvus Lite is opened on the machine's clock (its start-up waits by the real time), before travelling.
    assert app.state.labops.services.docs.hits("failed verification", k=1)
    try:
        with time_machine.travel(DAY0, tick=True) as clock:
            lab = inprocess_lab(lab_dir)
            with TestClient(app) as client:
                yield {"client": client, "app": app, "lab": lab, "clock": clock, "slack": slack, "settings": settings}
    finally:
        slack.close()


def _top_level(slack: SlackStandIn) -> list[dict[str, Any]]:
    with slack.cond:
        return [p["body"] for p in slack.posts if p["path"] == "/api/chat.postMessage"
                and p["body"].get("channel") == CHANNEL and not p["body"].get("thread_ts")]  # fmt: skip


def _calls(slack: SlackStandIn, method: str) -> list[dict[str, Any]]:
    with slack.cond:
        return [p["body"] for p in slack.posts if p["path"] == f"/api/{method}"]


def _text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_a_watcher_cycle_posts_each_problem_once_and_the_admin_s_click_fixes_it(service: dict[str, Any]) -> None:
    client, app, slack, clock = service["client"], service["app"], service["slack"], service["clock"]
    desk = app.state.labops.services.incidents
    desk.run_cycle(["backups"])
    posts = _top_level(slack)
    assert len(posts) == 4
    failed = next(p for p in posts if "qso-vae-dev" in p["text"])
    assert "runbook-stale-backup.md § Failed verification" in _text(failed["blocks"])
    buttons = [e for b in failed["blocks"] if b["type"] == "actions" for e in b["elements"]]
    fix = next(b for b in buttons if b["action_id"].startswith("labops_incident_fix"))
    incident_id = fix["value"].split("/")[0]
    desk.run_cycle(["backups"])
    assert len(_top_level(slack)) == 4, "a problem seen again is not posted again"

    # A researcher's click: refused, told only to them, in the audit log.
    hook = slack.response_url()
    body = button(fix["action_id"], fix["value"], user="U0RES1", response_url=hook, channel=CHANNEL)
    assert client.post("/slack/events", content=body, headers=signed(body)).status_code == 200
    refusal = slack.wait_for(lambda p: p["path"] == hook.removeprefix(slack.url))
    assert refusal["body"].get("response_type") == "ephemeral"
    # The admin's click runs backup.run through the guard and tells the incident's thread.
    body = button(fix["action_id"], fix["value"], user="U0ADMIN1", response_url=slack.response_url(), channel=CHANNEL)
    assert client.post("/slack/events", content=body, headers=signed(body)).status_code == 200
    reply = slack.wait_for(lambda p: p["body"].get("thread_ts") and "backed up" in str(p["body"].get("text")))
    assert reply["body"]["channel"] == CHANNEL
    entries = AuditLog.from_settings(service["settings"]).tail(500)
    calls = [(e["user"], e.get("decision")) for e in entries if e.get("tool") == "backup.run" and "decision" in e]
    assert ("researcher1", "deny") in calls and ("admin1", "allow") in calls
    assert any(e.get("event") == "incident_fix" and e.get("user") == "admin1" for e in entries)

    # The next morning's verify run checks the new snapshot; the next cycle resolves the incident in place.
    clock.move_to(DAY0 + dt.timedelta(hours=21, minutes=5))
    report = desk.run_cycle(["backups"])[0]
    assert report.resolved == [incident_id]
    updated = [_text(u["blocks"]) for u in _calls(slack, "chat.update")]
    assert any("resolved" in text and incident_id in text for text in updated)
    assert len(_top_level(slack)) == 4


def _payload(count: int, *, group: str = "g1", status: str = "firing", offset: int = 0) -> dict[str, Any]:
    alerts = [{"status": status, "labels": {"alertname": "NodeDiskFull", "node": f"node0{1 + n % 3}",
                                            "severity": "warning", "n": str(offset + n)},
               "annotations": {"summary": f"disk {offset + n} above 90%"}, "startsAt": "2026-06-01T13:00:00Z",
               "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"{offset + n:016x}"}
              for n in range(count)]  # fmt: skip
    return {"version": "4", "groupKey": f"{{}}:{{alertname=\"NodeDiskFull\",g=\"{group}\"}}", "truncatedAlerts": 0,
            "status": status, "receiver": "labops", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "alerts": alerts}  # fmt: skip


def _send(client: TestClient, app: Any, body: Any, *, auth: str | None = f"Bearer {TOKEN}") -> int:
    headers = {"Authorization": auth} if auth else {}
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    status = client.post("/alerts/alertmanager", content=raw, headers=headers).status_code
    app.state.alerts.worker.submit(lambda: None).result(timeout=120)  # the notifications before it are handled
    return int(status)


def test_alertmanager_groups_are_one_message_and_bad_requests_store_nothing(service: dict[str, Any]) -> None:
    client, app, slack = service["client"], service["app"], service["slack"]
    store = app.state.labops.services.incidents.store
    assert _send(client, app, _payload(3), auth=None) == 401
    assert _send(client, app, _payload(3), auth="Bearer wrong") == 401
    assert _send(client, app, "{not json") == 400
    assert _send(client, app, {**_payload(3), "version": "3"}) == 400
    assert _send(client, app, {**_payload(3), "alerts": [{"status": "firing"}]}) == 400
    assert _send(client, app, "[" * 100_000) == 400
    assert store.find(state="all") == [] and _top_level(slack) == []

    assert _send(client, app, _payload(50)) == 200
    assert len(_top_level(slack)) == 1 and len(store.find()) == 50
    assert "50 alerts firing" in _text(_top_level(slack)[0]["blocks"])
    updates = len(_calls(slack, "chat.update"))
    assert updates == 0, "the group's message is posted once with all fifty, not updated fifty times"
    assert _send(client, app, _payload(50)) == 200  # Alertmanager's repeat: nothing new
    assert len(_top_level(slack)) == 1 and len(_calls(slack, "chat.update")) == updates
    basic = "Basic " + base64.b64encode(b"alertmanager:basic-test-only").decode()
    assert _send(client, app, _payload(50, status="resolved"), auth=basic) == 200
    assert store.find() == [] and len(_top_level(slack)) == 1
    assert len(_calls(slack, "chat.update")) == 1, "one update for the group, whatever the number of alerts"
    assert "all 50 alerts resolved" in _text(_calls(slack, "chat.update")[-1]["blocks"])
    assert not [p for p in _calls(slack, "chat.postMessage") if p.get("thread_ts")], "no reply per alert"


def test_a_flood_of_groups_is_folded_into_one_digest(service: dict[str, Any]) -> None:
    client, app, slack = service["client"], service["app"], service["slack"]
    for n in range(12):  # twelve groups at once: five messages, then one digest for the rest
        assert _send(client, app, _payload(1, group=f"flood{n}", offset=1000 + n)) == 200
    posts = _top_level(slack)
    assert len(posts) == 6
    assert "7 more incidents" in _text(_calls(slack, "chat.update")[-1]["blocks"])
