"""Policy test cases in YAML (``policies/tests/*.yaml``), run by ``labops policy test`` and the test suite.

A case names the user, the action (tool), the resource (type, id, attributes), the call's amounts
(``request``), the user's current ``usage``, the expected decision and optionally a substring of the
reasons::

    - name: researchers cannot delete VMs
      user: researcher1
      action: vm.delete
      resource: {type: VM, id: "130", attrs: {owner: researcher1, tags: [research]}}
      expect: deny
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import PolicyError
from policies.engine import PolicyEngine
from tools.base import ResourceRef

__all__ = ["CaseResult", "load_cases", "run_cases"]

SHIPPED_CASES = Path(__file__).parent / "tests"


@dataclass(kw_only=True, frozen=True)
class CaseResult:
    """How one case went."""

    name: str
    file: str
    passed: bool
    expected: str
    got: str
    reasons: list[str]


def load_cases(paths: list[Path] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Cases from the given files/folders (default: the shipped ``policies/tests``)."""
    files: list[Path] = []
    for p in paths or [SHIPPED_CASES]:
        files += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    cases: list[tuple[Path, dict[str, Any]]] = []
    for f in files:
        data = yaml.safe_load(f.read_text()) or []
        if not isinstance(data, list):
            raise PolicyError(f"{f}: a policy test file is a YAML list of cases")
        cases += [(f, c) for c in data]
    return cases


def run_cases(engine: PolicyEngine, cases: list[tuple[Path, dict[str, Any]]]) -> list[CaseResult]:
    """Evaluate every case."""
    results = []
    for path, case in cases:
        user = engine.user(str(case["user"]))
        res = case.get("resource") or {"type": "Lab", "id": "lab"}
        ref = ResourceRef(type=res["type"], id=str(res["id"]), attrs=res.get("attrs") or {})
        ctx = engine.context(channel=case.get("channel", "cli"), numbers=case.get("request") or {},
                             usage=case.get("usage") or {}, user=user)  # fmt: skip
        want = str(case["expect"])
        name = str(case.get("name", case["action"]))
        try:
            decision = engine.decide(user=user.name, action=str(case["action"]), resources=[ref], context=ctx)
        except PolicyError as exc:
            # A case the schema rejects (e.g. a resource type the action does not apply to) fails, not aborts.
            results.append(
                CaseResult(name=name, file=path.name, passed=False, expected=want, got="error", reasons=[str(exc)])
            )
            continue
        ok = decision.decision == want
        if ok and case.get("reason"):
            ok = any(str(case["reason"]).lower() in r.lower() for r in decision.reasons)
        results.append(CaseResult(name=name, file=path.name, passed=ok, expected=want, got=decision.decision,
                                  reasons=decision.reasons))  # fmt: skip
    return results
