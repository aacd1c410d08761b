"""The guard node's steps, one at a time: resolve, fill, repeat, validate, intent, authorise.

Each step is called alone on a hand-made turn, with the real guard, simulator and audit log behind it, so
a step's behaviour is pinned down without a model or a whole graph run.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agent.node_calls import CallNodes
from agent.state import AgentState, new_turn
from policies.audit import AuditLog


def _state(text: str, user: str = "researcher1") -> AgentState:
    turn = new_turn(text, start=1)
    turn["tools"] = ["vm.list", "vm.show", "vm.stop"]
    return AgentState(messages=[HumanMessage(content=text)], user=user, channel="cli", turn=turn)


def _call(name: str, args: dict[str, Any], *, known: bool = True) -> dict[str, Any]:
    return {"id": "call_1", "name": name, "args": args, "known": known}


@pytest.fixture
def nodes(make_agent: Any) -> CallNodes:
    return CallNodes(deps=make_agent(replies=[]).deps)


def test_resolve_sends_an_unknown_tool_back_with_the_names_offered(nodes: CallNodes) -> None:
    state = _state("list my VMs")
    turn = state["turn"]
    update = nodes.resolve(state, turn, _call("vm.lsit", {}, known=False))
    assert update is not None and turn["repairs"] == 1
    message = update["messages"][0]
    assert isinstance(message, ToolMessage)
    assert "there is no tool 'vm.lsit'" in str(message.content) and "vm_list" in str(message.content)
    assert nodes.resolve(state, turn, _call("vm.list", {})) is None


def test_fill_repairs_aliases_and_takes_the_owner_from_the_channel(nodes: CallNodes) -> None:
    state = _state("which VMs do I have?", user="researcher2")
    call = _call("vm.list", {})
    nodes.fill(state, state["turn"], call)
    # "my VMs": the owner is the asking user, whatever the model wrote.
    assert call["args"].get("owner") == "researcher2"
    assert any("researcher2" in note for note in call["notes"])


def test_fill_resolves_a_vm_name_to_its_id_through_the_lab(nodes: CallNodes) -> None:
    state = _state("show me void-analysis")
    call = _call("vm.show", {"vmid": "void-analysis"})
    nodes.fill(state, state["turn"], call)
    assert isinstance(call["args"]["vmid"], int)
    assert state["turn"]["named"], "the name the user gave is remembered for the intent step"


def test_fill_takes_the_one_listed_value_the_model_wrapped_in_other_words(nodes: CallNodes) -> None:
    # The model copied the agent's note on the message ("heartbeat: template heartbeat") into the argument.
    state = _state("can you kick off the heartbeat job for me (heartbeat: template heartbeat)")
    call = _call("ray.submit", {"template": "heartbeat: template heartbeat"})
    nodes.fill(state, state["turn"], call)
    assert call["args"]["template"] == "heartbeat"
    # Two listed values in the argument settle nothing: validation says what is wrong.
    call = _call("ray.submit", {"template": "heartbeat or parallel-sum"})
    nodes.fill(state, state["turn"], call)
    assert call["args"]["template"] == "heartbeat or parallel-sum"


def test_repeat_points_the_model_at_the_result_it_already_has(nodes: CallNodes) -> None:
    state = _state("list the VMs")
    turn = state["turn"]
    turn["log"] = [{"id": "call_0", "name": "vm.list", "args": {}, "status": "ok", "message": "16 VMs"}]
    update = nodes.repeat(state, turn, _call("vm.list", {}))
    assert update is not None and "already ran in this turn (16 VMs)" in str(update["messages"][0].content)
    # A read it has the result of: the turn is answered from that result, without another model call.
    last = update["messages"][-1]
    assert isinstance(last, AIMessage) and not last.tool_calls
    assert nodes.repeat(state, turn, _call("vm.list", {"status": "running"})) is None


def test_a_repeated_call_that_failed_goes_back_to_the_model(nodes: CallNodes) -> None:
    state = _state("show VM 999")
    turn = state["turn"]
    failed = {"id": "call_0", "name": "vm.show", "args": {"vmid": 999}, "status": "error", "message": "no VM 999"}
    turn["log"] = [failed]
    update = nodes.repeat(state, turn, _call("vm.show", {"vmid": 999}))
    assert update is not None
    assert all(isinstance(m, ToolMessage) for m in update["messages"])


def test_validate_returns_what_is_wrong_and_advice_only_once(nodes: CallNodes) -> None:
    state = _state("show VM abc")
    turn = state["turn"]
    first = nodes.validate(state, turn, _call("vm.show", {"vmid": "abc"}))
    assert first is not None and "invalid arguments for vm.show: vmid" in str(first["messages"][0].content)
    assert "Call it again" in str(first["messages"][0].content)
    second = nodes.validate(state, turn, _call("vm.show", {"vmid": "abc"}))
    assert second is not None and "Do not call it again" in str(second["messages"][0].content)
    assert nodes.validate(state, turn, _call("vm.show", {"vmid": 131})) is None


def test_intent_refuses_a_change_nobody_asked_for_and_audits_it(nodes: CallNodes) -> None:
    state = _state("what does VM 131 run?")
    update = nodes.intent(state, state["turn"], _call("vm.stop", {"vmid": 131}))
    assert update is not None
    entry = state["turn"]["log"][-1]
    assert entry["status"] == "denied" and "your message did not ask for it" in entry["message"]
    # The advice to the model is not part of what a person reads.
    assert "Act only on what the user asks" not in entry["message"]
    audited = AuditLog.from_settings(nodes.settings).tail(5)
    assert any(e.get("tool") == "vm.stop" and e.get("decision") == "deny" for e in audited)


@pytest.mark.parametrize(
    ("said", "asked"),
    [
        ("Which Ray job templates can I run?", False),  # "run" and "job" ask for ray.submit; the question does not
        ("how do I run the heartbeat template?", False),
        ("run the heartbeat template", True),
        ("can you run the heartbeat template?", True),
        ("Which templates are there? Run the heartbeat one.", True),
        ("is it ok to run the heartbeat template?", True),
        # The action as the subject of a question about its effects (a fresh dev case: the job, a VM stop, ran).
        ("would running the heartbeat template slow the cluster down?", False),
        ("would you run the heartbeat template?", True),
        # A condition, then a question about what follows (a fresh dev case: the VM was rebooted).
        ("if i run the heartbeat template will it slow the cluster?", False),
        ("If I run the heartbeat template, is there a cost?", False),
        ("if the cluster is idle, run the heartbeat template", True),
        ("if that is the case, run the heartbeat template", True),
    ],
)
def test_intent_tells_a_question_for_information_from_a_request(nodes: CallNodes, said: str, asked: bool) -> None:
    state = _state(said)
    update = nodes.intent(state, state["turn"], _call("ray.submit", {"template": "heartbeat"}))
    if asked:
        assert update is None
    else:
        assert update is not None and "your message did not ask for it" in state["turn"]["log"][-1]["message"]


def test_intent_asks_back_when_the_target_of_a_change_is_a_guess(nodes: CallNodes) -> None:
    state = _state("stop my analysis VM")
    update = nodes.intent(state, state["turn"], _call("vm.stop", {"vmid": 131}))
    assert update is not None and state["turn"].get("clarify")
    assert state["turn"]["queue"] == []
    assert nodes.intent(_state("stop VM 131"), _state("stop VM 131")["turn"], _call("vm.stop", {"vmid": 131})) is None


def test_authorise_asks_policy_and_keeps_the_call_for_the_next_node(nodes: CallNodes) -> None:
    state = _state("list the VMs")
    turn = state["turn"]
    assert nodes.authorise(state, turn, _call("vm.list", {})) == {"turn": turn}
    assert turn["current"] is not None and turn["current"]["authorized"] is True
    state = _state("delete VM 131", user="researcher1")
    update = nodes.authorise(state, state["turn"], _call("vm.delete", {"vmid": 131}))
    assert state["turn"]["log"][-1]["status"] == "denied" and "messages" in update


def test_fill_keeps_the_amount_the_user_stated_and_validation_refuses_it(nodes: CallNodes) -> None:
    # "with 2 gpus": the model left the amount out and the job ran on none (a fresh dev case).
    state = _state("submit heartbeat with 2 gpus")
    call = _call("ray.submit", {"template": "heartbeat"})
    nodes.fill(state, state["turn"], call)
    assert call["args"]["num_gpus"] == 2 and any("num_gpus = 2 (as you asked" in n for n in call["notes"])
    refused = nodes.validate(state, state["turn"], call)
    assert refused is not None and "num_gpus" in str(refused["messages"][0].content)


def test_fill_leaves_amounts_alone_in_reads_and_when_the_words_give_two(nodes: CallNodes) -> None:
    state = _state("resize it from 2 cores to 4 cores")
    call = _call("ray.submit", {"template": "heartbeat", "num_cpus": 4})
    nodes.fill(state, state["turn"], call)
    assert call["args"]["num_cpus"] == 4 and not any("as you asked" in n for n in call["notes"])


def test_each_thing_listed_as_the_object_of_a_change_gets_the_change(nodes: CallNodes) -> None:
    from agent.names import each_named
    from policies.guard import Caller

    tool = nodes.deps.tool("vm.start")
    assert tool is not None
    caller = Caller(user="researcher1", channel="cli")
    both = each_named(nodes.deps.guard, caller, tool, {"vmid": 130}, "start 130 and 132")
    assert both == [{"vmid": 130}, {"vmid": 132}]
    # A thing named and numbered (the agent's note after the name) is one thing.
    noted = "start void-analysis and qso-vae-dev (void-analysis: vmid 130; qso-vae-dev: vmid 132)"
    named = each_named(nodes.deps.guard, caller, tool, {"vmid": 130}, noted)
    assert named == [{"vmid": 130}, {"vmid": 132}]
    # Not the object of the change: "show me 132" asks for a read of it, not for a start.
    assert each_named(nodes.deps.guard, caller, tool, {"vmid": 130}, "start 130 and show me 132") == [{"vmid": 130}]
