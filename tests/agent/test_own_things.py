"""The asker's own things a change may act on ("cancel my ray job"), read from the tool's declared listing."""

from __future__ import annotations

from typing import Any

from agent.names import own_thing, own_values
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
