"""Every tool prompt starts the same way, so the model server evaluates that start once and then reuses it.

The tool definitions are written into the system message by the chat template; binding the same tools in the
same order for every question keeps the long start of the prompt identical. The choice stays with the tools
offered for the message: the constrained output allows only those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, SystemMessage

from agent.node_model import ModelNodes
from agent.prompts import SYSTEM_PROMPT
from core.config import load_settings
from policies.guard import Caller
from tools.registry import all_tools

CALLER = Caller(user="researcher1", channel="cli")


def _agent(make_agent: Any, lab: Path, docs_index: Path, responder: Any, **agent: Any) -> Any:
    # provider ollama with a scripted model handed in: the agent binds and constrains as for the real server.
    settings = load_settings(
        None, lab_dir=lab, llm={"provider": "ollama"}, milvus={"uri": str(docs_index)}, agent=agent
    )
    return make_agent(responder=responder, settings=settings)


def _names(tools: list[dict[str, Any]]) -> list[str]:
    return [t["function"]["name"] for t in tools]


def _allowed(binding: Any) -> set[str]:
    branches = binding.kwargs["format"]["oneOf"]
    return {b["properties"]["tool"]["const"] for b in branches} - {"none"}


def test_every_tool_prompt_binds_every_tool_in_one_order(make_agent: Any, lab: Path, docs_index: Path) -> None:
    seen: list[list[str]] = []

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> str:
        if tools:
            seen.append(_names(tools))
        return "Nothing to add."

    agent = _agent(make_agent, lab, docs_index, responder)
    agent.ask("which VMs are stopped?", caller=CALLER)
    agent.ask("how full is the backup datastore?", caller=CALLER)
    everything = [t.name.replace(".", "_") for t in all_tools(agent.settings)]
    assert seen and all(names == everything for names in seen), seen


def test_the_choice_is_still_limited_to_the_offered_tools(make_agent: Any, lab: Path, docs_index: Path) -> None:
    agent = _agent(make_agent, lab, docs_index, lambda m, t: "ok")
    nodes = ModelNodes(deps=agent.deps)
    offered = ("vm.list", "vm.show")
    binding = nodes._bound("pick", offered)
    assert _names(binding.bound._tools) == [t.name.replace(".", "_") for t in agent.deps.tools]
    assert _allowed(binding) == {"vm_list", "vm_show"}
    must = nodes._bound("pick", offered, must_call="vm.show")
    assert _allowed(must) == {"vm_show"}


@pytest.mark.parametrize("setting", [{"all_tools_in_prompt": False}, {"constrained_calls": False}])
def test_without_a_constrained_choice_only_the_offered_tools_are_bound(
    make_agent: Any, lab: Path, docs_index: Path, setting: dict[str, Any]
) -> None:
    agent = _agent(make_agent, lab, docs_index, lambda m, t: "ok", **setting)
    assert _names(agent.deps.bound_model(("vm.list", "vm.show"))._tools) == ["vm_list", "vm_show"]
    assert agent.warm_up() is None


def test_the_scripted_model_is_shown_only_the_offered_tools(make_agent: Any) -> None:
    # Nothing constrains its output, so a tool it is shown is a tool it may call.
    agent = make_agent(responder=lambda m, t: "ok")
    assert not agent.deps.stable_prefix
    assert _names(agent.deps.bound_model(("vm.list",))._tools) == ["vm_list"]


def test_warm_up_sends_the_shared_start_once(make_agent: Any, lab: Path, docs_index: Path) -> None:
    requests: list[tuple[list[BaseMessage], list[str]]] = []

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> str:
        requests.append((messages, _names(tools)))
        return "Yes."

    agent = _agent(make_agent, lab, docs_index, responder)
    assert isinstance(agent.warm_up(), float)
    ((messages, tools),) = requests
    assert isinstance(messages[0], SystemMessage) and messages[0].content == SYSTEM_PROMPT
    assert tools == [t.name.replace(".", "_") for t in agent.deps.tools]


def test_a_warm_up_the_server_refuses_is_logged_not_raised(
    make_agent: Any, lab: Path, docs_index: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> str:
        raise ConnectionError("the model server is down")

    agent = _agent(make_agent, lab, docs_index, responder)
    assert agent.warm_up() is None
    assert "warming the model server's prompt cache failed" in caplog.text
