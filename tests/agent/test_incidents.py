"""Incidents from the watchers and from Alertmanager, on the embedded lab under a controlled clock.

The PVE and PBS simulators run in this process, so ``time-machine`` moves their clock and LabOps's together:
a watcher cycle at 14:00 finds the four seeded backup problems, the next finds nothing new; an admin's fix
backs VM 132 up, and the verify run of the next morning clears its incident.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine

from agent.incidents import DeskEvent, IncidentDesk
from agent.incidents.alertmanager import WebhookPayload
from core.config import load_settings
from knowledge.embeddings import OnnxEmbedder
from knowledge.ingest import ingest_paths
from knowledge.service import DocsService
from policies.audit import AuditLog
from policies.guard import Caller, Guard
from simlab.seed import SEEDED_BACKUP_PROBLEMS
from simlab.tls import ensure_tls
from tools.registry import all_tools

ROOT = Path(__file__).resolve().parents[2]
DAY0 = dt.datetime(2026, 6, 1, 14, 0, tzinfo=dt.UTC)
ADMIN = Caller(user="admin1", channel="slack", request_text="button")
RESEARCHER = Caller(user="researcher1", channel="slack", request_text="button")
SEEDED_VMS = sorted({v for vms in SEEDED_BACKUP_PROBLEMS.values() for v in vms})


@pytest.fixture
def desk(tmp_path: Path, inprocess_lab: Any, embedder: OnnxEmbedder) -> Iterator[tuple[IncidentDesk, Any, Any]]:
    lab_dir = tmp_path / "lab"
    ensure_tls(lab_dir)
    settings = load_settings(None, lab_dir=lab_dir)
    # The index is built and opened on the machine's clock: Milvus Lite's start-up waits by the real time.
    pages = ["runbook-stale-backup.md", "runbook-node-offline.md"]
    ingest_paths(settings, [ROOT / "knowledge" / "docs" / page for page in pages], embedder=embedder)
    docs = DocsService(settings, embedder=embedder)
    assert docs.hits("failed verification", k=1)
    with time_machine.travel(DAY0, tick=True) as traveller:
        lab = inprocess_lab(lab_dir)
        settings = load_settings(None, lab_dir=lab_dir)
        desk = IncidentDesk.build(settings, guard=Guard.from_settings(settings), tools=all_tools(settings), docs=docs)
        yield desk, lab, traveller
        docs.close()


def test_one_cycle_opens_one_incident_per_seeded_problem_and_the_next_none(desk: Any) -> None:
    incidents, _lab, _clock = desk
    told: list[DeskEvent] = []
    incidents.listeners.append(told.extend)
    first = incidents.run_cycle(["backups"])[0]
    assert first.ok and len(first.opened) == 4
    found = {i.subject["vmid"]: i for i in incidents.store.find()}
    assert sorted(found) == SEEDED_VMS
    assert [e.kind for e in told] == ["opened"] * 4

    again = incidents.run_cycle(["backups"])[0]
    assert again.ok and again.opened == [] and again.resolved == [] and again.seen == 4
    assert len(incidents.store.find(state="all")) == 4 and len(told) == 4

    # Each is investigated with reads only, and cites the runbook section for its problem.
    sections = {vmid: (i.investigation or {}).get("runbook", {}).get("section") for vmid, i in found.items()}
    assert sections[132] == "Failed verification" and sections[140] == "Missing backup"
    assert sections[131] == "Unverified backup" and sections[151] in ("Missing backup", "Stale backup")
    investigation = found[132].investigation or {}
    facts = investigation["facts"]
    assert [f["tool"] for f in facts] == ["backup.status", "vm.show"] and all(f["status"] == "ok" for f in facts)
    assert "[backup.status]" in investigation["summary"]
    # The fix offered: a backup of that VM now. A VM that is only in no job gets none (a backup does not fix it).
    assert [(f.tool, f.args) for f in found[132].fixes] == [("backup.run", {"vmid": 132, "mode": "snapshot"})]
    assert found[140].fixes == [] and [f.tool for f in found[151].fixes] == ["backup.run"]
    # Every read the watcher made is in the audit log under its own user.
    entries = AuditLog.from_settings(incidents.settings).tail(400)
    assert {e["event"] for e in entries if e.get("event", "").startswith("incident_")} == {"incident_opened"}
    assert all(e["decision"] == "allow" for e in entries if e.get("user") == "labops-watcher" and "decision" in e)


def test_an_admin_s_fix_runs_once_a_researcher_s_is_refused_and_the_verify_run_resolves(desk: Any) -> None:
    incidents, _lab, clock = desk
    incidents.run_cycle(["backups"])
    failed = next(i for i in incidents.store.find() if i.subject["vmid"] == 132)

    refused = incidents.fix(failed.id, "backup-run", caller=RESEARCHER)
    assert refused.status == "denied"
    done = incidents.fix(failed.id, "backup-run", caller=ADMIN)
    assert done.status == "ok", done.message
    twice = incidents.fix(failed.id, "backup-run", caller=ADMIN)  # a double click: the first result, no new backup
    assert twice.status == "ok" and twice.data["upid"] == done.data["upid"]
    entries = AuditLog.from_settings(incidents.settings).tail(300)
    assert any(e.get("user") == "researcher1" and e.get("tool") == "backup.run" and e.get("decision") == "deny"
               for e in entries)  # fmt: skip
    assert [e["status"] for e in entries if e.get("event") == "incident_fix"] == ["denied", "ok", "ok"]

    # Until the next verify run the new snapshot is pending: the incident stays.
    assert incidents.run_cycle(["backups"])[0].resolved == []
    clock.move_to(DAY0 + dt.timedelta(hours=21, minutes=5))  # next day, 11:05
    report = incidents.run_cycle(["backups"])[0]
    assert report.resolved == [failed.id]
    assert incidents.store.get(failed.id).state == "resolved"
    assert incidents.fix(failed.id, "backup-run", caller=ADMIN).status == "error"


def test_people_acknowledge_and_resolve_as_policy_allows(desk: Any) -> None:
    incidents, _lab, _clock = desk
    incidents.run_cycle(["backups"])
    target = incidents.store.find()[0]
    assert incidents.decide(target.id, "acknowledge", caller=RESEARCHER).status == "ok"
    assert incidents.decide(target.id, "resolve", caller=RESEARCHER).status == "denied"
    done = incidents.decide(target.id[:8], "resolve", caller=ADMIN, reason="known, tracked elsewhere")
    assert done.status == "ok" and incidents.store.get(target.id).resolved_by == "admin1"
    assert incidents.decide(target.id, "resolve", caller=ADMIN).status == "error"
    assert "not an incident id" in incidents.decide("132", "resolve", caller=ADMIN).message
    # Resolved by hand while the problem persists: the next cycle opens a new incident for it.
    assert len(incidents.run_cycle(["backups"])[0].opened) == 1


def test_a_node_that_goes_offline_is_an_incident_until_it_is_back(desk: Any) -> None:
    incidents, lab, _clock = desk
    # node04 and node06 have never been online (arriving): not incidents.
    assert incidents.run_cycle(["nodes"])[0].opened == []
    state = lab.apps["pve"].state
    with state.lock:
        state.data["nodes"]["node02"]["online"] = False
    down = incidents.run_cycle(["nodes"])[0]
    incident = incidents.store.get(down.opened[0])
    assert len(down.opened) == 1 and incident.subject == {"node": "node02"}
    # The investigation cites the lab's own runbook for the problem, not the backup runbook beside it.
    assert (incident.investigation or {}).get("runbook", {}).get("source") == "runbook-node-offline.md"
    with state.lock:
        state.data["nodes"]["node02"]["online"] = True
    assert incidents.run_cycle(["nodes"])[0].resolved == down.opened


def _payload(count: int, *, status: str = "firing", group: str = '{}:{alertname="VmDiskFull"}') -> dict[str, Any]:
    alerts = [
        {"status": status, "labels": {"alertname": "VmDiskFull", "vmid": str(200 + n), "severity": "warning"},
         "annotations": {"summary": f"VM {200 + n} disk above 90%"}, "startsAt": "2026-06-01T13:00:00Z",
         "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"{n:016x}"}
        for n in range(count)
    ]  # fmt: skip
    return {"version": "4", "groupKey": group, "truncatedAlerts": 0, "status": status, "receiver": "labops",
            "groupLabels": {"alertname": "VmDiskFull"}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "alerts": alerts}  # fmt: skip


def test_alertmanager_alerts_are_incidents_once_and_resolve_when_it_says_so(desk: Any) -> None:
    incidents, _lab, _clock = desk
    caller = Caller(user="alertmanager", channel="alertmanager")
    opened = incidents.alert(WebhookPayload.model_validate(_payload(50)), caller=caller)
    assert len(opened) == 50 and {e.incident.group for e in opened} == {'am:{}:{alertname="VmDiskFull"}'}
    assert incidents.alert(WebhookPayload.model_validate(_payload(50)), caller=caller) == []
    assert opened[0].incident.subject == {"vmid": 200}
    resolved = incidents.alert(WebhookPayload.model_validate(_payload(10, status="resolved")), caller=caller)
    assert [e.kind for e in resolved] == ["resolved"] * 10
    assert len(incidents.store.find()) == 40
