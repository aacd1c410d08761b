"""`labops tool list|plan|call` and `labops policy check`: output shapes and exit codes a script can rely on."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from channels.cli.main import cli


def _run(simulator: Any, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--lab-dir", str(simulator.lab_dir), *args])
    return result.exit_code, result.output


def test_tool_list_describes_every_tool(simulator: Any) -> None:
    code, out = _run(simulator, "tool", "list", "--json")
    tools = {t["name"]: t for t in json.loads(out)}
    assert code == 0 and len(tools) >= 20
    assert tools["vm.provision"]["risk"] == "write" and tools["vm.delete"]["risk"] == "destructive"
    schema = tools["vm.provision"]["args_schema"]
    assert "memory_gib" in schema["properties"] and "GiB" in schema["properties"]["memory_gib"]["description"]
    assert tools["desi.cone_search"]["description"].startswith("Find DESI objects")


def test_call_exit_codes_and_envelope(simulator: Any) -> None:
    code, out = _run(simulator, "tool", "call", "backup.check", "--as", "admin1", "--json")
    assert code == 0 and set(json.loads(out)) == {"status", "data", "message"}
    code, out = _run(
        simulator, "tool", "plan", "vm.provision", "--args", '{"name": "cli-plan", "cores": 1}', "--as", "researcher1"
    )
    assert code == 0 and "needs_approval" in out
    code, out = _run(
        simulator, "tool", "call", "vm.provision", "--args", '{"name": "cli-vm"}', "--as", "researcher1", "--json"
    )
    assert code == 4 and json.loads(out)["status"] == "needs_approval"
    code, out = _run(simulator, "tool", "call", "vm.stop", "--args", '{"vmid": 110}', "--as", "admin1")
    assert code == 5 and "production" in out
    code, out = _run(simulator, "tool", "call", "vm.show", "--args", "{vmid: 110}", "--as", "admin1")
    assert code == 1 and "--args is not valid JSON" in out
    code, out = _run(simulator, "tool", "call", "vm.explode", "--as", "admin1")
    assert code == 1 and "unknown tool" in out


def test_policy_check_json(simulator: Any) -> None:
    code, out = _run(
        simulator, "policy", "check", "--as", "researcher1", "vm.provision", "--args", '{"name": "x1"}', "--json"
    )
    decision = json.loads(out)
    assert code == 0 and decision["decision"] == "needs_approval" and decision["approval"]["role"] == "admin"
    assert decision["reasons"] and decision["policy_version"]
