"""The eval report: ``report.json`` (for machines and baselines) and ``report.md`` (for people).

With ``--repeat K``: pass@1 is the share of runs that passed (the chance one try passes), pass^k the
share of cases that passed in all K runs (the chance the agent is reliable on it).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from evals.runner import CaseResult

__all__ = ["build_report", "compare", "write_report"]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _group(results: list[CaseResult], key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({getattr(r, key) for r in results}):
        group = [r for r in results if getattr(r, key) == name]
        passed = sum(r.passed for r in group)
        out[name] = {"runs": len(group), "passed": passed, "pass_rate": round(passed / len(group), 4)}
    return out


def _splits(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    """Pass rate, pass@1 and pass^k per split (dev: tuned on; test: held out)."""
    out: dict[str, dict[str, Any]] = {}
    for split in sorted({r.split for r in results}):
        group = [r for r in results if r.split == split]
        ids = sorted({r.id for r in group})
        passed = sum(r.passed for r in group)
        every = sum(all(r.passed for r in group if r.id == i) for i in ids)
        out[split] = {"cases": len(ids), "runs": len(group), "passed": passed,
                      "pass_at_1": round(passed / len(group), 4), "pass_hat_k": round(every / len(ids), 4)}  # fmt: skip
    return out


def _grounding(results: list[CaseResult]) -> dict[str, Any]:
    """The grounding audit over the run: answers with an unsourced statement or a contradiction, listed."""
    listed = [
        {"case": r.id, "repeat": r.repeat, "kind": p["kind"], "claim": p["claim"], "sentence": p["sentence"][:300],
         "detail": p["detail"]}
        for r in results
        for p in [*r.unsourced, *r.contradictions]
    ]  # fmt: skip
    return {
        "answers_with_unsourced": sum(1 for r in results if r.unsourced),
        "answers_with_contradictions": sum(1 for r in results if r.contradictions),
        "unsourced": sum(len(r.unsourced) for r in results),
        "contradictions": sum(len(r.contradictions) for r in results),
        "left_out_by_the_agent": sum(r.left_out for r in results),
        "problems": listed,
    }


def build_report(results: list[CaseResult], *, model: dict[str, Any], suite: str, repeat: int,
                 started: float, finished: float) -> dict[str, Any]:  # fmt: skip
    """The report as a JSON-ready dict."""
    ids = sorted({r.id for r in results})
    by_case = {i: [r for r in results if r.id == i] for i in ids}
    runs = len(results)
    passed = sum(r.passed for r in results)
    latencies = [r.latency_s for r in results if not r.crashed]
    unsafe = [{"case": r.id, "repeat": r.repeat, "action": u} for r in results for u in r.unsafe]
    parts = Counter(p for r in results if not r.passed for p in r.failed_parts)
    return {
        "model": model,
        "date": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "suite": suite,
        "repeat": repeat,
        "cases": len(ids),
        "runs": runs,
        "passed": passed,
        "pass_rate": round(passed / runs, 4) if runs else 0.0,
        "pass_at_1": round(passed / runs, 4) if runs else 0.0,
        "pass_hat_k": round(sum(all(r.passed for r in rs) for rs in by_case.values()) / len(ids), 4) if ids else 0.0,
        "unsafe_actions": len(unsafe),
        "unsafe": unsafe,
        "by_split": _splits(results),
        "grounding": _grounding(results),
        "crashed": sum(1 for r in results if r.crashed),
        "by_tier": _group(results, "tier"),
        "by_category": _group(results, "category"),
        "failed_parts": dict(parts.most_common()),
        "latency_s": {
            "median": round(statistics.median(latencies), 3) if latencies else 0.0,
            "p95": round(_pct(latencies, 0.95), 3),
            "total": round(sum(latencies), 1),
        },
        "tokens": {
            "in": sum(r.tokens_in for r in results),
            "out": sum(r.tokens_out for r in results),
            "model_calls": sum(r.model_calls for r in results),
        },
        "wall_s": round(finished - started, 1),
        "failures": [
            {
                "case": r.id,
                "repeat": r.repeat,
                "parts": r.failed_parts,
                "reasons": [r.crashed]
                if r.crashed
                else [f"{c.check} ({c.part}): {c.detail[:200]}" for c in r.checks if not c.ok],
            }
            for r in results
            if not r.passed
        ],
        "results": [r.as_dict() for r in results],
    }


def compare(report: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Pass-rate change and the cases that changed, against an earlier report."""

    def passing(rep: dict[str, Any]) -> dict[str, bool]:
        outcome: dict[str, bool] = {}
        for r in rep.get("results", []):
            outcome[r["id"]] = outcome.get(r["id"], True) and bool(r["passed"])
        return outcome

    now, then = passing(report), passing(baseline)
    common = sorted(set(now) & set(then))
    return {
        "baseline_date": baseline.get("date"),
        "baseline_model": baseline.get("model"),
        "baseline_pass_rate": baseline.get("pass_rate"),
        "pass_rate_delta": round(float(report.get("pass_rate", 0)) - float(baseline.get("pass_rate", 0)), 4),
        "newly_failing": [c for c in common if then[c] and not now[c]],
        "newly_passing": [c for c in common if now[c] and not then[c]],
        "unsafe_delta": int(report.get("unsafe_actions", 0)) - int(baseline.get("unsafe_actions", 0)),
    }


def _table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| | runs | passed | pass rate |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {v['runs']} | {v['passed']} | {v['pass_rate']:.0%} |" for k, v in rows.items()]
    return lines


def markdown(report: dict[str, Any]) -> str:
    """``report.md``."""
    m = report["model"]
    lines = [
        f"# LabOps eval — {report['suite']} suite, {m.get('model')} ({m.get('spec')})",
        "",
        f"{report['date']} · {report['cases']} cases, repeated {report['repeat']}x · wall time {report['wall_s']} s",
        "",
        f"- **pass rate {report['pass_rate']:.1%}** ({report['passed']} of {report['runs']} runs)"
        + (f"; pass@1 {report['pass_at_1']:.1%}, pass^{report['repeat']} {report['pass_hat_k']:.1%}"
           if report["repeat"] > 1 else ""),
        f"- **unsafe actions: {report['unsafe_actions']}**; crashed cases: {report['crashed']}",
        f"- latency per case: median {report['latency_s']['median']} s, p95 {report['latency_s']['p95']} s",
        f"- tokens: {report['tokens']['in']} in, {report['tokens']['out']} out, {report['tokens']['model_calls']} "
        "model calls",
        "",
        "## By split",
        "",
        "| split | cases | runs | passed | pass@1 | pass^k |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {k} | {v['cases']} | {v['runs']} | {v['passed']} | {v['pass_at_1']:.1%} | {v['pass_hat_k']:.1%} |"
          for k, v in report.get("by_split", {}).items()],
        "",
        "## Grounding audit",
        "",
        f"- answers with a statement found in no evidence: {report['grounding']['answers_with_unsourced']} "
        f"({report['grounding']['unsourced']} statements)",
        f"- answers contradicting tool data: {report['grounding']['answers_with_contradictions']} "
        f"({report['grounding']['contradictions']} statements)",
        f"- statements the agent left out before answering: {report['grounding']['left_out_by_the_agent']}",
        *[f"  - {p['case']} (run {p['repeat'] + 1}): {p['kind']} “{p['claim']}” — {p['detail']}"
          for p in report["grounding"]["problems"][:40]],
        "",
        "## By tier",
        "",
        *_table(report["by_tier"]),
        "",
        "## By category",
        "",
        *_table(report["by_category"]),
        "",
    ]  # fmt: skip
    if report.get("failed_parts"):
        lines += ["## What failed, by part of the agent", "",
                  *[f"- {part}: {n}" for part, n in report["failed_parts"].items()], ""]  # fmt: skip
    if report.get("baseline"):
        b = report["baseline"]
        lines += ["## Against the baseline", "",
                  f"- baseline {b['baseline_date']} ({(b['baseline_model'] or {}).get('model')}): "
                  f"{b['baseline_pass_rate']:.1%}; change {b['pass_rate_delta']:+.1%}",
                  f"- newly failing: {', '.join(b['newly_failing']) or 'none'}",
                  f"- newly passing: {', '.join(b['newly_passing']) or 'none'}", ""]  # fmt: skip
    if report["unsafe"]:
        lines += ["## Unsafe actions", "", *[f"- {u['case']}: {u['action']}" for u in report["unsafe"]], ""]
    if report["failures"]:
        lines += ["## Failures", ""]
        for f in report["failures"]:
            lines.append(f"- **{f['case']}** (run {f['repeat'] + 1}; {', '.join(f['parts'])})")
            lines += [f"  - {reason}" for reason in f["reasons"][:4]]
        lines.append("")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=1, default=str, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path
