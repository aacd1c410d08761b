"""Two ``labops serve`` replicas on one PostgreSQL, both running the backup watcher: each incident posted once."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx

from core.config import load_settings
from core.incidents import IncidentStore
from simlab.postgres import create_database
from simlab.seed import SEEDED_BACKUP_PROBLEMS

from .conftest import SIGNING_SECRET, Serve, SlackStandIn, server_env

CHANNEL = "C0ALERTS"


def _cycles(server: Serve) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    found = re.search(r'labops_watcher_cycles_total\{outcome="ok",watcher="backups"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def test_two_replicas_watching_the_same_lab_post_each_incident_once(module_lab: Any, desi_db: Any) -> None:
    name = f"labops_incidents_{uuid.uuid4().hex[:8]}"
    creds = json.loads((desi_db.lab_dir / "secrets.json").read_text())["postgres"]
    create_database(desi_db.lab_dir, name, owner=creds["admin_user"])
    dsn = re.sub(r"dbname=\S+", f"dbname={name}", desi_db.admin_dsn)
    slack = SlackStandIn()
    lab_dir = module_lab.lab_dir
    config = lab_dir / "incident-replicas.toml"
    config.write_text(f"""
[llm]
provider = "scripted"

[audit]
database_url = "{dsn}"

[slack]
signing_secret = "{SIGNING_SECRET}"
bot_token = "xoxb-test-only"
alerts_channel = "{CHANNEL}"
api_base_url = "{slack.url}/api/"

[alerts.watchers.backups]
enabled = true
interval_s = 10
""")
    first = Serve(lab_dir=lab_dir, config=config, env=server_env()).start()
    second = Serve(lab_dir=lab_dir, config=config, env=server_env()).start()
    try:
        # Both have checked at least twice: the first checks raced, the later ones found what was known.
        deadline = time.monotonic() + 180
        while min(_cycles(first), _cycles(second)) < 2:
            assert time.monotonic() < deadline, f"{first.log.read_text()[-2000:]}\n{second.log.read_text()[-2000:]}"
            time.sleep(1)
        with slack.cond:
            posts = [p["body"] for p in slack.posts if p["path"] == "/api/chat.postMessage"
                     and p["body"].get("channel") == CHANNEL and not p["body"].get("thread_ts")]  # fmt: skip
        seeded = {v for vms in SEEDED_BACKUP_PROBLEMS.values() for v in vms}
        assert len(posts) == len(seeded), [p["text"] for p in posts]
        store = IncidentStore.from_settings(load_settings(None, lab_dir=lab_dir, audit={"database_url": dsn}))
        assert sorted(i.subject["vmid"] for i in store.find(state="all")) == sorted(seeded)
    finally:
        first.stop()
        second.stop()
        slack.close()
