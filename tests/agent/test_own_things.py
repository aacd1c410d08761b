"""The asker's own things a change may act on ("cancel my ray job"), read from the tool's declared listing."""

from __future__ import annotations

from typing import Any

from agent.names import each_own, own_thing, own_values
from policies.guard import Caller
from tools.base import ToolResult
from tools.registry import all_tools

R1 = Caller(user="researcher1", channel="cli")


class _Listing:
    """Answers the listing a tool's ``own`` names, as the guard would (only what the test needs)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def call(self, tool: str, args: dict[str, Any], *, caller: Caller) -> ToolResult:
        self.asked.append((tool, args))
        return ToolResult.ok("jobs", [r for r in self.rows if r["owner"] == args.get("owner")])


def _tools() -> dict[str, Any]:
    return {t.name: t for t in all_tools(None)}


def test_the_one_running_job_is_the_one_meant_and_several_are_listed() -> None:
    tools = _tools()
    stop, lister = tools["ray.stop"], tools["ray.list"]
    one = _Listing([{"job_id": "labops_a", "status": "RUNNING", "owner": "researcher1"},
                    {"job_id": "labops_b", "status": "SUCCEEDED", "owner": "researcher1"},
                    {"job_id": "labops_c", "status": "RUNNING", "owner": "researcher2"}])  # fmt: skip
    args, note = own_thing(one, R1, stop, lister, {"job_id": "your_job_id"})  # type: ignore[arg-type]
    assert args == {"job_id": "labops_a"} and note is not None and "only pending or running job" in note
    assert one.asked == [("ray.list", {"owner": "researcher1"})]
    two = _Listing([{"job_id": "labops_a", "status": "RUNNING", "owner": "researcher1"},
                    {"job_id": "labops_d", "status": "PENDING", "owner": "researcher1"}])  # fmt: skip
    # Two: none is guessed, and both can be named in the question back.
    assert own_thing(two, R1, stop, lister, {"job_id": "x"}) == ({"job_id": "x"}, None)  # type: ignore[arg-type]
    assert own_values(two, R1, stop, lister) == ["labops_a", "labops_d"]  # type: ignore[arg-type]


def test_a_power_change_on_my_vm_takes_the_one_in_the_state_it_acts_on() -> None:
    tools = _tools()
    rows = [{"vmid": 130, "status": "running", "owner": "researcher1"},
            {"vmid": 132, "status": "stopped", "owner": "researcher1"},
            {"vmid": 131, "status": "running", "owner": "researcher2"}]  # fmt: skip
    listing = _Listing(rows)
    lister = tools["vm.list"]
    # "Shut down my vm": of the asker's two VMs, one is running; "start my vm": one is stopped.
    assert own_thing(listing, R1, tools["vm.stop"], lister, {"vmid": 0})[0] == {"vmid": 130}  # type: ignore[arg-type]
    assert own_thing(listing, R1, tools["vm.start"], lister, {"vmid": 0})[0] == {"vmid": 132}  # type: ignore[arg-type]
    assert listing.asked[0] == ("vm.list", {"owner": "researcher1"})


def test_all_of_my_things_is_each_of_them_and_only_when_said() -> None:
    tools = _tools()
    rows = [{"vmid": v, "status": "running", "owner": "researcher1"} for v in (130, 133, 134)]
    listing = _Listing([*rows, {"vmid": 131, "status": "running", "owner": "researcher2"}])
    stop, lister = tools["vm.stop"], tools["vm.list"]
    for text in ("shut down all my vms", "stop every one of my VMs", "reboot all of my vms please"):
        assert each_own(listing, R1, stop, lister, text) == [130, 133, 134], text  # type: ignore[arg-type]
    for text in ("stop my vm", "stop all vms", "stop all the vms on node03"):
        assert each_own(listing, R1, stop, lister, text) == [], text  # type: ignore[arg-type]
    # More than a handful is a question for the user, not a batch of changes.
    many = _Listing([{"vmid": v, "status": "running", "owner": "researcher1"} for v in range(200, 210)])
    assert each_own(many, R1, stop, lister, "stop all my vms") == []  # type: ignore[arg-type]


def test_shut_down_all_my_vms_stops_each_running_one_of_mine(make_agent: Any, lab: Any) -> None:
    from agent.scripted import fenced_call
    from core.config import load_settings
    from policies.guard import Guard

    guard = Guard.from_settings(load_settings(None, lab_dir=lab))
    # The model, given no id, guesses one: the stopped VM of the asker (132) is no use for a stop.
    agent = make_agent(replies=[fenced_call("vm_stop", {"vmid": 132}), "Done."])
    result = agent.ask("shut down all my vms", caller=R1)
    assert [(c["name"], c["args"]["vmid"], c["status"]) for c in result.tool_calls] == [("vm.stop", 130, "ok")]
    status = {r["vmid"]: r["status"] for r in guard.call("vm.list", {}, caller=R1).data}
    assert status[130] == "stopped" and status[131] == "running"  # researcher2's VM is not the asker's
