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
    assert code == 4 and "needs_approval" in out and "feasible" in out and "✓" in out
    code, out = _run(simulator, "tool", "plan", "vm.provision", "--args", '{"name": "cli-big", "memory_gib": 200}',
                     "--as", "admin1")  # fmt: skip
    assert code == 1 and "not feasible" in out and "✗" in out and "GiB" in out, "the why, not only the verdict"
    code, out = _run(simulator, "tool", "plan", "vm.stop", "--args", '{"vmid": 110}', "--as", "admin1")
    assert code == 5
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
    assert code == 4 and decision["decision"] == "needs_approval" and decision["approval"]["role"] == "admin"
    assert decision["reasons"] and decision["policy_version"]
    # One meaning per exit code across commands: 0 allow, 4 needs approval, 5 deny (as `tool call`).
    assert _run(simulator, "policy", "check", "--as", "admin1", "vm.stop", "--args", '{"vmid": 110}')[0] == 5
    assert _run(simulator, "policy", "check", "--as", "researcher1", "vm.list")[0] == 0


def test_lab_dir_after_the_sub_command_and_human_output(simulator: Any) -> None:
    result = CliRunner().invoke(
        cli, ["tool", "call", "vm.nodes", "--as", "admin1", "--lab-dir", str(simulator.lab_dir)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ") and "{" not in result.output, "a human summary, not JSON"
    as_json = CliRunner().invoke(
        cli, ["tool", "call", "vm.nodes", "--as", "admin1", "--json", "--lab-dir", str(simulator.lab_dir)]
    )
    assert set(json.loads(as_json.output)) == {"status", "data", "message"}, "only the envelope"


def test_bad_input_is_an_error_envelope_never_a_traceback(simulator: Any) -> None:
    for args in ('{"name": "Bad_Name!"}', '{"name": ""}', '{"name": "ünïcode"}', '{"name": "x", "cores": true}'):
        code, out = _run(simulator, "tool", "call", "vm.provision", "--args", args, "--as", "researcher1", "--json")
        envelope = json.loads(out)
        assert (code == 1 and envelope["status"] == "error" and "name" in envelope["message"]) or "cores" in out
        assert all(set(e) == {"loc", "msg", "type"} for e in envelope["data"]["errors"])
    code, out = _run(simulator, "tool", "call", "ray.status", "--args", '{"job_id": "../../api/version"}', "--as", "r1")
    assert code == 1 and "job_id" in out


def test_as_is_refused_for_a_non_operator(simulator: Any, monkeypatch: Any) -> None:
    # The account comes from the process's uid (tests run as whoever CI is): pretend it is alice's.
    monkeypatch.setattr("policies.identity.os_account", lambda: "alice")
    code, out = _run(simulator, "tool", "call", "vm.nodes", "--as", "admin2")
    assert code == 1 and "operator" in out
    code, out = _run(simulator, "tool", "call", "vm.nodes", "--json")
    assert code == 0 and json.loads(out)["status"] == "ok", "alice may read as herself"


def test_hostile_values_get_a_clear_refusal_not_the_policy_engine_s_errors(simulator: Any) -> None:
    cases = [
        ("ray.submit", json.dumps({"template": 'a\nb\u202e\x1b"x'}), "template"),
        ("desi.query", '{"sql": "SELECT 1", "limit": 1000000000000000000000000000000}', "limit"),
        ("vm.show", '{"vmid": 1e30}', "vmid"),
        ("vm.delete", '{"vmid": 1000000000000000000000000000000}', "vmid"),
        ("desi.object", '{"targetid": 1000000000000000000000000000000}', "targetid"),
    ]
    for tool, args, field in cases:
        code, out = _run(simulator, "tool", "call", tool, "--args", args, "--as", "admin1", "--json")
        envelope = json.loads(out)
        assert code == 1 and envelope["status"] == "error" and field in envelope["message"], (tool, out)
        assert "policy evaluation" not in out and "Traceback" not in out
    code, out = _run(simulator, "tool", "call", "vm.nodes", "--as", "admin2\n")
    assert code == 1 and "not a user name" in out and "Traceback" not in out and "policy" not in out


def test_refusals_of_the_command_line_are_envelopes_under_json(simulator: Any) -> None:
    for args in ("{vmid:", "[1, 2]", "x" * 70_000):
        code, out = _run(simulator, "tool", "call", "vm.show", "--args", args, "--as", "admin1", "--json")
        envelope = json.loads(out)
        assert code == 1 and envelope == {"status": "error", "data": None, "message": envelope["message"]}
        assert "--args" in envelope["message"]
    code, out = _run(simulator, "tool", "plan", "vm.show", "--args", "{", "--as", "admin1", "--json")
    assert code == 1 and json.loads(out)["status"] == "error"
    code, out = _run(simulator, "tool", "call", "vm.nodes", "--as", 'evil"', "--json")
    assert code == 1 and "not a user name" in json.loads(out)["message"]


def test_ask_exits_1_without_a_traceback_when_the_model_is_unreachable(simulator: Any, tmp_path: Any) -> None:
    config = tmp_path / "down.toml"
    config.write_text('[llm]\nprovider = "ollama"\nollama_url = "http://127.0.0.1:9"\n[agent]\ndocs_k = 0\n')
    argv = ["--lab-dir", str(simulator.lab_dir), "--config", str(config), "ask", "Which VMs are running?"]
    result = CliRunner().invoke(cli, [*argv, "--as", "researcher1"])
    assert result.exit_code == 1, result.output
    assert "cannot reach the language model" in result.output and "Traceback" not in result.output


def test_every_command_and_option_says_what_it_does() -> None:
    import click

    missing: list[str] = []

    def walk(command: click.Command, path: list[str]) -> None:
        if not (command.help or command.short_help):
            missing.append(" ".join(path) or "labops")
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{' '.join(path)} {'/'.join(param.opts)}")

    walk(cli, [])
    assert not missing, missing
    status_help = CliRunner().invoke(cli, ["lab", "status", "--help"]).output
    assert "ollama" in status_help and "milvus" in status_help
