"""Amounts the user stated for a change are read from the words that name the tool's arguments."""

from __future__ import annotations

from typing import Any

import pytest

from agent.stated import stated_amounts, with_stated_amounts
from tools.base import Tool
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
