"""VM read tools against the simulator through the guard."""

from __future__ import annotations

from core.config import load_settings
from policies.guard import Caller, Guard
from tools.vm.inventory import prepare_list

CALLER = Caller(user="researcher1", channel="cli")


def test_nodes_list_and_show(simulator) -> None:  # type: ignore[no-untyped-def]
    guard = Guard.from_settings(load_settings(None, lab_dir=simulator.lab_dir))
    nodes = {n["node"]: n for n in guard.call("vm.nodes", {}, caller=CALLER).data}
    assert nodes["node04"]["status"] == "offline" and nodes["node07"]["memory_gib"] == 128
    assert nodes["node05"]["memory_allocated_gib"] == 64  # proj-pg01 48 GiB + proj-pg02 16 GiB
    # The CPU model each node reports ("what cpu is in node07?"); an offline node reports nothing.
    assert "Ryzen 9 5950X" in nodes["node07"]["cpu_model"] and nodes["node04"]["cpu_model"] is None

    mine = guard.call("vm.list", {"owner": "researcher1"}, caller=CALLER)
    assert {v["name"] for v in mine.data} == {"void-analysis", "qso-vae-dev"}
    prod = guard.call("vm.list", {"tag": "production", "status": "running"}, caller=CALLER)
    assert [v["name"] for v in prod.data] == ["proj-pg01", "proj-pg02"]
    assert guard.call("vm.list", {"node": "node06"}, caller=CALLER).status == "no_data"

    shown = guard.call("vm.show", {"vmid": 110}, caller=CALLER)
    assert shown.status == "ok" and shown.data["cores"] == 10 and shown.data["memory_gib"] == 48
    assert shown.data["ip"].startswith("10.25.60.") and "production" in shown.data["tags"]
    # The summary a read answer shows says what policy reads: the tags and PVE's protection flag.
    wazuh = guard.call("vm.show", {"vmid": 150}, caller=CALLER)
    assert "tags protected, security" in wazuh.message and "PVE protection on" in wazuh.message
    # Templates, asked for, come first in the summary (sorted by id they were cut off after the twelfth VM).
    listed = guard.call("vm.list", {"include_templates": True}, caller=CALLER)
    assert listed.message.startswith("2 templates: 9000 ubuntu-2404-cloud (node01), 9001 debian-12-cloud")
    missing = guard.call("vm.show", {"vmid": 999}, caller=CALLER)
    assert missing.status == "error" and "vm.list" in missing.message
    bad = guard.call("vm.list", {"status": "sleeping"}, caller=CALLER)
    assert bad.status == "error" and "status" in bad.message


def test_a_question_for_vm_templates_lists_them() -> None:
    # The model called vm.list without include_templates for "what vm templates are there to clone from".
    for said in ("what vm templates are there to clone from", "which OS templates can I clone", "list vm templates"):
        assert prepare_list(None, {}, said) == {"include_templates": True}, said  # type: ignore[arg-type]
    for said in ("which ray job templates are there", "list my vms"):
        assert prepare_list(None, {}, said) == {}, said  # type: ignore[arg-type]
