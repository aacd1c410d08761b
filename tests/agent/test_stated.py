"""Amounts the user stated for a change are read from the words that name the tool's arguments."""

from __future__ import annotations

from typing import Any

import pytest

from agent.stated import gives_arguments, stated_amounts, stated_values, with_stated_amounts, with_stated_values
from tools.base import Tool, ToolArgs
from tools.registry import all_tools


@pytest.fixture(scope="module")
def tools() -> dict[str, Tool[Any]]:
    return {t.name: t for t in all_tools(None)}


@pytest.mark.parametrize(
    ("tool", "text", "amounts"),
    [
        ("ray.submit", "submit heartbeat with 2 gpus", {"num_gpus": 2.0}),
        ("ray.submit", "run it on one GPU and 4 cpus", {"num_gpus": 1.0, "num_cpus": 4.0}),
        ("vm.provision", "a box with two cores and 8 GiB of memory", {"cores": 2.0, "memory_gib": 8.0}),
        ("vm.provision", "big-sim, 16 cores, 64 GB ram", {"cores": 16.0, "memory_gib": 64.0}),
        ("vm.provision", "one core, 512 MB of RAM", {"cores": 1.0, "memory_gib": 0.5}),
        # A unit alone says nothing about what it measures ("700 gib" of disk is no memory).
        ("vm.provision", "a vm with a 700 gib disk", {}),
        ("vm.provision", "resize from 2 cores to 4 cores", {}),
        ("vm.provision", "name it node-2 please", {}),
        # A size alone is the tool's one size in GiB, unless it is said of a disk.
        ("vm.provision", "a new vm with 2 cores and 4 gb", {"cores": 2.0, "memory_gib": 4.0}),
        ("vm.provision", "a vm with a 700gb disk and 8gb", {"memory_gib": 8.0}),
        ("vm.provision", "a vm with 700 gb of storage", {}),
        ("ray.submit", "run heartbeat with 8gb", {"memory_gib": 8.0}),
    ],
)
def test_stated_amounts(tools: dict[str, Tool[Any]], tool: str, text: str, amounts: dict[str, float]) -> None:
    t = tools[tool]
    assert stated_amounts(t.json_schema(), t.aliases, text) == amounts


def test_a_stated_amount_replaces_the_model_s_and_says_so(tools: dict[str, Tool[Any]]) -> None:
    t = tools["vm.provision"]
    args, notes = with_stated_amounts(t.json_schema(), t.aliases, {"name": "x", "cores": 8}, "x with 16 cores")
    assert args == {"name": "x", "cores": 16} and isinstance(args["cores"], int)
    assert notes == ["cores = 16 (as you asked; was 8)"]
    same, none = with_stated_amounts(t.json_schema(), t.aliases, {"name": "x", "cores": 16}, "x with 16 cores")
    assert same == {"name": "x", "cores": 16} and none == []


@pytest.mark.parametrize(
    ("tool", "text", "values"),
    [
        ("vm.stop", "hard power off void-analysis right now", {"mode": "stop"}),
        ("vm.stop", "pull the plug on 130", {"mode": "stop"}),
        ("vm.stop", "shut down 130 gracefully", {"mode": "shutdown"}),
        ("vm.stop", "shut down 130", {}),
        # Said and not wanted, or both said: no single value.
        ("vm.stop", "stop 130, not hard", {}),
        ("vm.stop", "stop 130, hard if it has to be, clean if it can", {}),
        ("ray.submit", "run heartbeat on the gpu", {"num_gpus": 1}),
        ("ray.submit", "run heartbeat without the gpu", {}),
        # Part of another word is no phrase: "a gpu" inside "a gpu-less box" would be.
        ("ray.submit", "run heartbeat on the gpus-free queue", {}),
    ],
)
def test_declared_phrases_give_an_argument_its_value(
    tools: dict[str, Tool[Any]], tool: str, text: str, values: dict[str, Any]
) -> None:
    assert stated_values(tools[tool].values, text) == values


def test_the_words_value_replaces_the_model_s_unless_an_amount_was_stated(tools: dict[str, Tool[Any]]) -> None:
    stop, submit = tools["vm.stop"], tools["ray.submit"]
    args, notes = with_stated_values(stop.json_schema(), stop.aliases, stop.values, {"vmid": 130}, "hard stop 130")
    assert args == {"vmid": 130, "mode": "stop"} and notes == ["mode = 'stop' (as you asked; left out)"]
    args, notes = with_stated_values(
        stop.json_schema(), stop.aliases, stop.values, {"vmid": 130, "mode": "stop"}, "stop 130 cleanly"
    )
    assert args["mode"] == "shutdown" and notes == ["mode = 'shutdown' (as you asked; was 'stop')"]
    # "with 0 gpus on the gpu node": the amount is the user's own number, and stands.
    said = "run heartbeat with 0 gpus on the gpu node"
    asked = {"template": "heartbeat", "num_gpus": 0}
    args, notes = with_stated_values(submit.json_schema(), submit.aliases, submit.values, asked, said)
    assert args["num_gpus"] == 0 and notes == []


def test_a_phrase_giving_a_value_the_argument_refuses_is_a_declaration_error() -> None:
    class Args(ToolArgs):
        """Arguments."""

        mode: str = "a"
        count: int = 0

    def fn(ctx: Any, args: Args) -> Any:
        """Do a thing."""

    with pytest.raises(TypeError, match="'lots' gives count='many'"):
        Tool(name="t.x", args_model=Args, fn=fn, risk="read", summary=str, values={"count": {"lots": "many"}})
    with pytest.raises(TypeError, match="name no argument"):
        Tool(name="t.x", args_model=Args, fn=fn, risk="read", summary=str, values={"size": {"big": 1}})
    Tool(name="t.x", args_model=Args, fn=fn, risk="read", summary=str, values={"count": {"a few": 3}})


@pytest.mark.parametrize(
    ("tool", "text", "given"),
    [
        ("vm.provision", "could i get a fresh vm named spec-fit-2", True),
        ("vm.provision", "a vm with 4 cpus please", True),
        ("vm.provision", "agn-fit memory and cores", False),
        ("vm.stop", "pull the plug on it", True),
        ("vm.stop", "could you power it down", False),
    ],
)
def test_a_request_gives_its_change_arguments(tools: dict[str, Tool[Any]], tool: str, text: str, given: bool) -> None:
    t = tools[tool]
    assert gives_arguments(t.json_schema(), t.aliases, t.values, text) is given
