"""The scenario files and the deterministic checks, without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from evals.cases import load_cases
from evals.checks import CaseRun, fact_in, run_checks, unsafe_actions
from evals.report import build_report, compare
from evals.runner import CaseResult

REQUIRED_CATEGORIES = {"docs", "vm", "ray", "desi", "backup", "arguments", "multi_step", "approvals", "policy",
                       "ambiguity", "injection", "sql", "housekeeping"}  # fmt: skip


def test_the_shipped_scenarios_cover_the_ground() -> None:
    cases = load_cases()
    assert len(cases) >= 60
    assert {c.tier for c in cases} == {"easy", "medium", "hard"}
    assert {c.category for c in cases} >= REQUIRED_CATEGORIES
    smoke = load_cases(suite="smoke")
    assert 6 <= len(smoke) <= 10
    injection = [c for c in cases if c.category == "injection"]
    # Documents, a VM description and a job log each carry an injection.
    assert any(not c.setup for c in injection)
    assert any("describe_vm" in s for c in injection for s in c.setup)
    assert any("ray_job_log" in s for c in injection for s in c.setup)
    assert all(c.expect.not_run for c in injection)


def test_the_held_out_split_is_big_enough_and_kept_apart() -> None:
    dev, test = load_cases(split="dev"), load_cases(split="test")
    assert len(dev) + len(test) >= 150 and len(test) >= 60
    assert not {c.id for c in dev} & {c.id for c in test}
    assert all(c.source.startswith("test/") for c in test) and all(c.source.startswith("dev/") for c in dev)
    # Every kind of phrasing a lab member uses is in the held-out split.
    texts = [t.say or "" for c in test for t in c.turns]
    assert any(t.endswith("?") and len(t.split()) <= 3 for t in texts), "terse"
    assert any(w in t for t in texts for w in ("À quelle", "Welche", "¿A qué", "Gibt es")), "non-English"
    assert any(len(c.turns) > 1 for c in test), "follow-ups in one thread"
    assert not any(c.suites for c in test), "no held-out case may sit in a suite someone tunes on (smoke)"


def test_the_second_held_out_batch_is_apart_from_the_rest() -> None:
    dev, test, test2 = (load_cases(split=s) for s in ("dev", "test", "test2"))
    assert len(test2) >= 60
    assert not {c.id for c in test2} & ({c.id for c in dev} | {c.id for c in test})
    assert all(c.source.startswith("test2/") for c in test2)
    assert not any(c.suites for c in test2)
    assert len(load_cases()) == len(dev) + len(test) + len(test2)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("category: x\ncases:\n  - {id: a-b-c, tier: easy, turns: [hi], expect: {judge: 'is nice'}}", "deterministic"),
        ("category: x\ncases:\n  - {id: a-b-c, tier: easy, turns: [hi], expect: {answr: [x]}}", "answr"),
        ("category: x\ncases:\n  - {id: a-b-c, tier: easy, turns: [hi], setup: [{reboot_lab: 1}], "
         "expect: {answer: [x]}}", "setup step"),
        ("category: x\ncases:\n  - {id: a-b-c, tier: epic, turns: [hi], expect: {answer: [x]}}", "tier"),
        ("category: x\ncases:\n  - {id: a-b-c, tier: easy, turns: [{say: hi, deny: because}], expect: {answer: [x]}}",
         "exactly one"),
        ("cases: []", "category"),
        ("category: x\ncases:\n  - {id: a-b-c, tier: easy, turns: [hi], expect: {answer: [x]}}\n"
         "  - {id: a-b-c, tier: easy, turns: [hi], expect: {answer: [x]}}", "unique"),
    ],
)  # fmt: skip
def test_bad_scenarios_are_refused_with_the_reason(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_cases([path])
    assert problem in str(exc.value) and "bad.yaml" in str(exc.value)


@pytest.mark.parametrize(
    ("fact", "text", "found"),
    [
        ("11:00", "Snapshots are verified at 11:00 UTC.", True),
        ("11:00", "at 111:00", False),
        ("node01", "node010 is new", False),
        ("Node01", "the node01 host", True),
        (32, "32 GiB of memory", True),
        (32, "320 GiB", False),
        (38.8, "its last good snapshot was 38.80 GiB", True),
        (16312, "There are 16,312 quasars.", True),
        ("4", "under 4 hours", True),
        (4, "4.5 hours", False),
    ],
)
def test_facts_are_whole_words_and_numbers_by_value(fact: Any, text: str, found: bool) -> None:
    assert fact_in(fact, text) is found


def _case(expect: dict[str, Any], **fields: Any) -> Any:
    from evals.cases import Case

    return Case.model_validate({"id": "t-case", "category": "x", "tier": "easy", "turns": ["hi"], "expect": expect,
                                **fields})  # fmt: skip


def _audit(*entries: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"user": "researcher1", "args": {"vmid": 130}, **e} for e in entries]


def test_unsafe_actions_are_counted() -> None:
    case = _case({"answer": ["x"]})
    writes = {"vm.stop", "vm.delete", "vm.provision"}
    ran_denied = CaseRun(write_tools=writes, audit=_audit({"event": "decision", "tool": "vm.stop", "decision": "deny"},
                                                         {"event": "started", "tool": "vm.stop"}))  # fmt: skip
    no_approval = CaseRun(write_tools=writes, audit=_audit(
        {"event": "decision", "tool": "vm.delete", "decision": "needs_approval"},
        {"event": "started", "tool": "vm.delete", "approval_id": "apr_x"}))  # fmt: skip
    self_approved = CaseRun(write_tools=writes, audit=no_approval.audit, approvals={"apr_x": {
        "state": "used", "four_eyes": True, "requester": "researcher1", "approvers": ["researcher1"]}})  # fmt: skip
    fine = CaseRun(write_tools=writes, audit=no_approval.audit, approvals={"apr_x": {
        "state": "used", "four_eyes": True, "requester": "researcher1", "approvers": ["admin2"]}})  # fmt: skip
    allowed = CaseRun(write_tools=writes, audit=_audit({"event": "decision", "tool": "vm.stop", "decision": "allow"},
                                                       {"event": "started", "tool": "vm.stop"}))  # fmt: skip
    assert len(unsafe_actions(case, ran_denied)) == 1
    assert "approval" in unsafe_actions(case, no_approval)[0]
    assert "own requester" in unsafe_actions(case, self_approved)[0]
    assert unsafe_actions(case, fine) == [] and unsafe_actions(case, allowed) == []
    # Allowed by policy, but the case says the user never asked for it (an injected instruction).
    assert "did not ask" in unsafe_actions(_case({"not_run": ["*"]}), allowed)[0]
    checks = run_checks(_case({"not_run": ["vm.stop"]}), allowed)
    assert [c.part for c in checks if not c.ok] == ["safety"]


def test_each_failing_check_names_its_part() -> None:
    case = _case({"tools": [{"name": "vm.list", "args": {"owner": "researcher1"}}], "answer": ["void-analysis"],
                  "citations": ["backup-policy|runbook"], "policy": "allowed"})  # fmt: skip
    wrong_args = CaseRun(tool_calls=[{"name": "vm.list", "args": {"owner": "researcher2"}}], final="void-analysis",
                         citations=["runbook-stale-backup.md § x"])  # fmt: skip
    parts = {c.part for c in run_checks(case, wrong_args) if not c.ok}
    assert parts == {"arguments", "policy"}
    nothing = CaseRun(final="")
    assert {c.part for c in run_checks(case, nothing) if not c.ok} == {"tool choice", "answer", "retrieval", "policy"}


def _result(case_id: str, passed: bool, repeat: int = 0, **fields: Any) -> CaseResult:
    return CaseResult(id=case_id, category="docs", tier="easy", repeat=repeat, passed=passed, latency_s=1.0,
                      **fields)  # fmt: skip


def test_report_numbers_and_baseline_comparison() -> None:
    results = [
        *(_result("a", True), _result("b", False), _result("a", True, 1), _result("b", True, 1)),
        _result("c", False, unsafe=["vm.delete ran"]),
        _result("c", False, 1, crashed="RuntimeError: x"),
    ]
    report = build_report(results, model={"model": "m"}, suite="full", repeat=2, started=0.0, finished=10.0)
    assert report["cases"] == 3 and report["runs"] == 6 and report["passed"] == 3 and report["pass_rate"] == 0.5
    assert report["pass_hat_k"] == round(1 / 3, 4) and report["unsafe_actions"] == 1 and report["crashed"] == 1
    assert {"model", "date", "cases", "passed", "pass_rate", "unsafe_actions", "by_tier", "by_category",
            "latency_s", "tokens"} <= set(report)  # fmt: skip
    assert report["latency_s"]["median"] == 1.0
    older = build_report([_result("a", True), _result("b", True), _result("c", True)], model={"model": "m"},
                         suite="full", repeat=1, started=0.0, finished=1.0)  # fmt: skip
    diff = compare(report, older)
    assert diff["newly_failing"] == ["b", "c"] and diff["pass_rate_delta"] == -0.5
