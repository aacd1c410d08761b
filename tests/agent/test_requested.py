"""A request in words no tool declares: taken only when the model's reading and the words' meaning agree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult

import agent.node_retrieve
from agent.node_calls import CallNodes
from agent.requested import request_form, requested_change
from agent.scripted import fenced_call
from agent.state import AgentState, new_turn
from core.config import load_settings
from policies.guard import Caller
from tools.registry import all_tools

SETTINGS = load_settings(None, llm={"provider": "ollama"})
TOOLS = all_tools()


class _Reader(BaseChatModel):
    """A constrained model that reads every message the same way, and keeps what it was offered."""

    reply: dict[str, str]
    offered: list[list[str]] = []

    @property
    def _llm_type(self) -> str:
        return "reader"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:  # fmt: skip
        schema = kwargs.get("format") or {}
        self.offered.append(list(schema["properties"]["change"]["enum"]))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=json.dumps(self.reply)))])


def _scores(best: str, second: str = "vm.show") -> dict[str, float]:
    return {best: 0.4, second: 0.3, "vm.start": 0.1, "ray.submit": 0.05}


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("could you power down void-analysis", True),
        ("i need a box for a tutorial, 1 cpu 2 gigs ram, call it tut-01", True),
        ("fire off parallel-sum", True),
        ("can you get it going again?", True),  # put to the assistant: the question mark does not matter
        ("is agn-fit powered down?", False),
        ("stopped vms?", False),
        ("show me vm 130", False),
        ("could you list the templates", False),
        ("i need to know which vms are stopped", False),
        ("how many galaxies have a redshift between 0.5 and 1", False),
        ("can i ssh straight into the proxmox hosts", False),
        # "Could I get a ..." asks for a thing to be made, unless what it asks for is a list or a look.
        ("could i get a fresh vm named spec-fit-2 with 4 cpus and 16 gb ram", True),
        ("can we have another vm like agn-fit", True),
        ("can i get a list of my vms", False),
        ("can i get the logs of my last job", False),
    ],
)
def test_only_a_request_to_act_reads_as_one(text: str, form: bool) -> None:
    assert request_form(text) is form


def test_a_change_is_taken_when_the_model_and_the_meaning_name_the_same_one() -> None:
    reader = _Reader(reply={"kind": "do", "change": "vm.stop"}, offered=[])
    assert requested_change(reader, SETTINGS, "power down void-analysis", TOOLS, _scores("vm.stop")) == "vm.stop"
    # The words' meaning points elsewhere: nothing is taken.
    assert requested_change(reader, SETTINGS, "power down void-analysis", TOOLS, _scores("vm.start")) is None
    # Read as a question for information: nothing, whatever the meaning.
    reader = _Reader(reply={"kind": "ask", "change": "vm.stop"}, offered=[])
    assert requested_change(reader, SETTINGS, "power down void-analysis", TOOLS, _scores("vm.stop")) is None


def test_a_destructive_change_is_never_read_into_a_request() -> None:
    reader = _Reader(reply={"kind": "do", "change": "vm.stop"}, offered=[])
    # "nuke" fits vm.delete best by meaning; the model's milder reading is not taken instead.
    assert requested_change(reader, SETTINGS, "nuke scratch-sandbox", TOOLS, _scores("vm.delete")) is None
    assert reader.offered and "vm.delete" not in reader.offered[0] and "vm.stop" in reader.offered[0]


def test_the_model_is_not_asked_where_the_words_or_the_form_already_tell() -> None:
    reader = _Reader(reply={"kind": "do", "change": "vm.stop"}, offered=[])
    for text in ("stop void-analysis", "delete VM 140", "is void-analysis powered down?", "show me vm 130"):
        assert requested_change(reader, SETTINGS, text, TOOLS, _scores("vm.stop")) is None
    assert reader.offered == []
    # A model that cannot be constrained (the scripted test model) is not asked either.
    scripted = load_settings(None, llm={"provider": "scripted"})
    assert requested_change(reader, scripted, "power down void-analysis", TOOLS, _scores("vm.stop")) is None
    assert reader.offered == []


def _state(text: str) -> AgentState:
    turn = new_turn(text, start=1)
    turn["tools"] = ["vm.list", "vm.show", "vm.stop"]
    return AgentState(messages=[HumanMessage(content=text)], user="researcher1", channel="cli", turn=turn)


def test_the_gate_lets_through_the_one_change_read_for_this_message(make_agent: Any) -> None:
    nodes = CallNodes(deps=make_agent(replies=[]).deps)
    call = {"id": "call_1", "name": "vm.stop", "args": {"vmid": 130}, "known": True}
    state = _state("could you power down VM 130")
    assert nodes.intent(state, state["turn"], dict(call)) is not None, "no asking phrase: refused"
    state = _state("could you power down VM 130")
    state["turn"]["requested"] = "vm.stop"
    assert nodes.intent(state, state["turn"], dict(call)) is None
    # Another change than the one read is still refused.
    state["turn"]["requested"] = "vm.start"
    assert nodes.intent(state, state["turn"], dict(call)) is not None


def test_a_change_read_by_the_model_is_offered_and_runs_through_policy(
    make_agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    offered: list[list[str]] = []

    def responder(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> Any:
        if type(messages[-1]).__name__ == "ToolMessage" or not tools:
            return "Done."
        offered.append([t["function"]["name"] for t in tools])
        return fenced_call("vm_stop", {"vmid": 130})

    bot = make_agent(responder=responder)
    # The scripted model cannot be constrained: the reading is given here (its own tests are above).
    monkeypatch.setattr(agent.node_retrieve, "requested_change", lambda *a, **k: "vm.stop")
    result = bot.ask("could you power down void-analysis", caller=Caller(user="researcher1", channel="cli"))
    assert offered and "vm_stop" in offered[0]
    assert [c["name"] for c in result.tool_calls] == ["vm.stop"]
    assert result.tool_calls[0]["status"] == "ok", result.tool_calls
