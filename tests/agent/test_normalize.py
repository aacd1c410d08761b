"""Argument repair: what a small model guesses is dropped, what the user said is kept (no lab, no model)."""

from __future__ import annotations

from agent.normalize import normalize_args
from tools.registry import get_tool

PROVISION = get_tool("vm.provision")


def _fixed(args: dict[str, object], said: str) -> dict[str, object]:
    out, _notes = normalize_args(PROVISION.json_schema(), args, aliases=PROVISION.aliases, evidence=said)
    return out


def test_the_digits_of_a_name_do_not_ground_a_number() -> None:
    # Found by the eval: template=1 "grounded" by the "01" of build-01, then retried as 100, a VM, not a template.
    # (Sizes other than the defaults: an argument equal to its default is left to the default.)
    said = "Create a VM called build-01 with 3 cores and 6 GB of memory."
    fixed = _fixed({"name": "build-01", "cores": 3, "memory_gib": 6, "template": 1}, said)
    assert fixed == {"name": "build-01", "cores": 3, "memory_gib": 6}


def test_numbers_the_user_wrote_are_kept_with_or_without_a_space() -> None:
    said = "spin up analysis-3 with 4 cores and 16GiB on node03"
    fixed = _fixed({"name": "analysis-3", "cores": 4, "memory_gib": 16, "node": "node03"}, said)
    assert fixed == {"name": "analysis-3", "cores": 4, "memory_gib": 16, "node": "node03"}


def test_a_negative_number_is_still_a_number() -> None:
    from agent.normalize import _numbers_in

    assert {-5.0, 2.5, 16.0} <= _numbers_in("dec -5 and 2.5 arcmin, 16GiB") and 1.0 not in _numbers_in("node-01")
