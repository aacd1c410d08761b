"""``labops chat``: approving and denying by message, the inline prompt's commands, and piped input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from channels.cli.main import cli
from core.config import load_settings
from tools.context import ToolContext
from tools.registry import get_tool
from tools.testing import run_unguarded

SCRIPT = {
    "rules": [
        {"when": "create a vm called chat-cli-1",
         "reply": {"call": "vm_provision", "args": {"name": "chat-cli-1", "cores": 1, "memory_gib": 1}}},
        {"when": "which vms", "reply": {"call": "vm_list", "args": {}}},
        {"after": "*", "reply": "Done: {result}"},
        {"reply": "Ask me about the lab."},
    ]
}  # fmt: skip


def _config(tmp_path: Path) -> Path:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    config = tmp_path / "labops.toml"
    config.write_text(f'[llm]\nprovider = "scripted"\nscript = "{script}"\n[agent]\ndocs_k = 0\n')
    return config


def _chat(simulator: Any, config: Path, user: str, lines: list[str]) -> str:
    argv = ["--lab-dir", str(simulator.lab_dir), "--config", str(config), "chat", "--as", user]
    result = CliRunner().invoke(cli, argv, input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def remove_made_vms(simulator: Any) -> Any:
    """The session's simulator is shared: a VM a test made is destroyed after it, whatever the outcome."""
    yield
    ctx = ToolContext(settings=load_settings(None, lab_dir=simulator.lab_dir))
    for vm in run_unguarded(get_tool("vm.list"), ctx, {}).data:
        if str(vm["name"]).startswith("chat-cli-"):
            run_unguarded(get_tool("vm.delete"), ctx, {"vmid": vm["vmid"], "stop_first": True})


@pytest.mark.usefixtures("remove_made_vms")
def test_an_approver_approves_by_message_in_their_own_chat(simulator: Any, tmp_path: Path) -> None:
    config = _config(tmp_path)
    # /quit at the inline "approve now as" prompt leaves the chat; it is not taken as a user name.
    asked = _chat(simulator, config, "researcher2", ["create a vm called chat-cli-1", "/quit"])
    found = re.search(r"approval (apr_[0-9a-f]+)", asked)
    assert found is not None, asked
    assert "left pending" in asked and "'/quit' is not a user name" not in asked
    approval = found.group(1)
    # A message with another's approval: refused by policy (researchers do not approve), nothing runs.
    refused = _chat(simulator, config, "researcher1", [f"approve {approval}", "/quit"])
    assert "Not done" in refused
    approved = _chat(simulator, config, "admin1", [f"approve {approval}", "which vms are there?", "/quit"])
    assert f"{approval} approved by admin1" in approved and "request went on" in approved
    assert "chat-cli-1" in approved, "the requester's conversation went on and the VM exists"


@pytest.mark.usefixtures("remove_made_vms")
def test_a_deny_by_message_reaches_the_requester_with_the_reason(simulator: Any, tmp_path: Path) -> None:
    config = _config(tmp_path)
    script = json.loads((tmp_path / "script.json").read_text())
    script["rules"][0]["reply"]["args"]["name"] = "chat-cli-2"
    script["rules"][0]["when"] = "create a vm called chat-cli-2"
    (tmp_path / "script.json").write_text(json.dumps(script))
    asked = _chat(simulator, config, "researcher1", ["create a vm called chat-cli-2", ""])
    approval = re.search(r"approval (apr_[0-9a-f]+)", asked)
    assert approval is not None
    denied = _chat(simulator, config, "admin2", [f"deny {approval.group(1)}: use the Ray cluster", "/quit"])
    assert "denied by admin2" in denied and "use the Ray cluster" in denied


def test_piped_turns_end_their_line_and_show_their_time(simulator: Any, tmp_path: Path) -> None:
    out = _chat(simulator, _config(tmp_path), "researcher1", ["what is the capital of France?", "which vms are there?"])
    # Each answer ends its line, then the time the turn took, then the next prompt.
    assert len(re.findall(r"[^\n]\n\d+\.\d s\nresearcher1> ", out)) == 2, out
