"""A lab adds a read tool of its own: one module and one line of configuration, nothing in ``agent/``.

Everything the agent needs to pick and fill a tool comes from the tool's declaration (its docstring,
arguments, words, examples), and its Cedar action from its risk: the throwaway tool below is offered for a
question about it, called through the guard and audited, and listed by the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.messages import BaseMessage

from channels.cli.main import cli
from core.config import load_settings
from policies.audit import AuditLog
from policies.guard import Caller

MODULE = '''
"""The lab's own GPU tools (a throwaway toolset for a test)."""

from pydantic import Field

from tools.base import Tool, ToolArgs, ToolResult, Toolset


class TempArgs(ToolArgs):
    """Arguments of ``gpu.temperature``."""

    unit: str = Field("C", pattern="^[CF]$", description="C or F.")


def temperature(ctx, args):
    """The GPU's current temperature and fan speed, read from its sensor."""
    celsius = 61
    value = celsius if args.unit == "C" else round(celsius * 9 / 5 + 32)
    return ToolResult.ok(f"GPU at {value} {args.unit}, fan 1840 rpm", data={"temperature": value, "fan_rpm": 1840})


TOOLSET = Toolset(
    name="gpu",
    words=("gpu", "graphics card"),
    tools=[
        Tool(
            name="gpu.temperature",
            args_model=TempArgs,
            fn=temperature,
            risk="read",
            summary=lambda a: "read the GPU temperature",
            words=("temperature", "hot", "fan"),
            examples=("How hot is the GPU right now?",),
        )
    ],
)
'''


@pytest.fixture
def extra_toolset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    package = tmp_path / "plugins"
    package.mkdir()
    (package / "lab_gpu_tools.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(package))
    return "lab_gpu_tools:TOOLSET"


def test_a_new_read_tool_is_selected_called_and_audited(
    extra_toolset: str, lab: Path, docs_index: Path, embedder: Any
) -> None:
    from agent.runtime import Agent
    from agent.scripted import ScriptedChatModel, call

    offered: list[list[str]] = []

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> Any:
        names = [t["function"]["name"] for t in tools]
        offered.append(names)
        if not any(getattr(m, "type", "") == "tool" for m in messages):
            return call("gpu_temperature", {}) if "gpu_temperature" in names else "I cannot tell."
        return "The GPU is at 61 C with its fan at 1840 rpm."

    settings = load_settings(None, lab_dir=lab, llm={"provider": "scripted"}, milvus={"uri": str(docs_index)},
                             tools={"extra": [extra_toolset]})  # fmt: skip
    agent = Agent(settings, model=ScriptedChatModel(responder=responder), embedder=embedder)
    try:
        result = agent.ask("how hot is the gpu running right now?", caller=Caller(user="researcher1", channel="cli"))
    finally:
        agent.close()
    assert "gpu_temperature" in offered[0], offered
    assert [c["name"] for c in result.tool_calls] == ["gpu.temperature"] and result.tool_calls[0]["status"] == "ok"
    assert "61" in result.answer and "1840" in result.answer
    audited = [e for e in AuditLog.from_settings(settings).tail(50) if e.get("tool") == "gpu.temperature"]
    assert {e["event"] for e in audited} >= {"decision", "started", "finished"}


def test_the_cli_lists_and_calls_the_new_tool(extra_toolset: str, simulator: Any, tmp_path: Path) -> None:
    config = tmp_path / "labops.toml"
    config.write_text(f'[tools]\nextra = ["{extra_toolset}"]\n')
    base = ["--lab-dir", str(simulator.lab_dir), "--config", str(config)]
    listed = CliRunner().invoke(cli, [*base, "tool", "list", "--json"])
    tools = {t["name"]: t for t in json.loads(listed.output)}
    assert (
        tools["gpu.temperature"]["risk"] == "read" and "unit" in tools["gpu.temperature"]["args_schema"]["properties"]
    )
    called = CliRunner().invoke(cli, [*base, "tool", "call", "gpu.temperature", "--args", '{"unit": "F"}', "--json"])
    assert called.exit_code == 0 and json.loads(called.output)["data"]["temperature"] == 142


def test_a_toolset_that_cannot_be_loaded_is_named(tmp_path: Path) -> None:
    from core.errors import ConfigError
    from tools.registry import registry

    settings = load_settings(None, lab_dir=tmp_path, tools={"extra": ["no_such_module_here:TOOLSET"]})
    with pytest.raises(ConfigError, match=r"tools\.extra"):
        registry(settings)
