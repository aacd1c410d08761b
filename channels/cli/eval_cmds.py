"""``labops eval``: run the scripted eval scenarios against a model and write the report."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from channels.cli.common import console, err_console, get_settings, handle_errors
from core.config import Settings

if TYPE_CHECKING:
    from evals.cases import Case
    from evals.runner import CaseResult

__all__ = ["eval_command"]


@click.command("eval")
@click.option(
    "--model",
    "model_spec",
    default="local",
    show_default=True,
    help="scripted, local (the embedded lab's Ollama), ollama:MODEL[@URL] or openai:URL:MODEL.",
)
@click.option("--suite", default="full", show_default=True, help="full, or a suite named in the scenarios (smoke).")
@click.option("--tags", default=None, help="Only cases with one of these tags, categories or tiers (comma-separated).")
@click.option("--case", "case_ids", multiple=True, help="Only this case (repeatable).")
@click.option(
    "--split",
    type=click.Choice(["all", "dev", "test", "test2"]),
    default="all",
    show_default=True,
    help="dev: the cases tuned on; test, test2: held-out batches (never read while tuning); all: every split, "
    "reported apart.",
)
@click.option(
    "--scenarios",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Scenario files or folders (default: evals/scenarios).",
)
@click.option("--repeat", type=click.IntRange(1, 20), default=1, show_default=True, help="Runs per case (pass^k).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Report folder (default: <lab_dir>/eval-reports/<date>-<model>).",
)
@click.option(
    "--baseline",
    type=click.Path(exists=True, path_type=Path, dir_okay=False),
    default=None,
    help="An earlier report.json to compare with.",
)
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when a case that passed in the baseline fails.")
@click.option(
    "--min-pass-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True, help="Exit 1 below this pass rate."
)
@click.option("--judge", "use_judge", is_flag=True, help="Also run the model-as-judge rubrics (after the checks).")
@click.option("--list", "list_only", is_flag=True, help="List the selected cases and exit.")
@handle_errors
def eval_command(model_spec: str, suite: str, tags: str | None, case_ids: tuple[str, ...], split: str,
                 scenarios: tuple[Path, ...], repeat: int, out: Path | None, baseline: Path | None,
                 fail_on_regression: bool, min_pass_rate: float, use_judge: bool, list_only: bool) -> None:  # fmt: skip
    """Measure the agent: scenarios in a fresh lab per case, deterministic checks, a report.

    Exits 1 when an unsafe action happened, the pass rate is below --min-pass-rate, or (with
    --fail-on-regression) a case that passed in the baseline failed.
    """
    from evals.cases import load_cases

    cases = load_cases(list(scenarios) or None, suite=suite, tags=[t for t in (tags or "").split(",") if t] or None,
                       ids=list(case_ids) or None, split=split)  # type: ignore[arg-type]  # fmt: skip
    if list_only:
        table = Table("id", "category", "tier", "suites", "user", "turns", box=None)
        for c in cases:
            table.add_row(c.id, c.category, c.tier, ",".join(c.suites), c.user, str(len(c.turns)))
        console.print(table)
        console.print(f"{len(cases)} cases")
        return
    baseline_report = json.loads(baseline.read_text()) if baseline else None
    settings = get_settings()
    started_lab = _ensure_lab(settings, model_spec)
    try:
        report = _run(settings, cases, model_spec, suite, repeat, use_judge, baseline_report)
    finally:
        if started_lab:
            from simlab.supervisor import lab_down

            lab_down(settings.lab_dir)
    slug = re.sub(r"[^a-z0-9.]+", "-", f"{report['model'].get('model')}".lower()).strip("-")
    out = out or settings.lab_dir / "eval-reports" / f"{dt.date.today().isoformat()}-{suite}-{slug}"
    from evals.report import write_report

    json_path, md_path = write_report(report, out)
    _summary(report)
    console.print(f"report: {json_path} and {md_path}")
    problems = []
    if report["unsafe_actions"]:
        problems.append(f"{report['unsafe_actions']} unsafe action(s)")
    if report["pass_rate"] < min_pass_rate:
        problems.append(f"pass rate {report['pass_rate']:.1%} is below --min-pass-rate {min_pass_rate:.0%}")
    if fail_on_regression and report.get("baseline", {}).get("newly_failing"):
        problems.append(f"regressions against the baseline: {', '.join(report['baseline']['newly_failing'])}")
    if problems:
        err_console.print(f"[red]eval failed:[/red] {'; '.join(problems)}")
        sys.exit(1)


def _ensure_lab(settings: Settings, model_spec: str) -> bool:
    """Start the embedded lab's shared parts if they are down; True when this run started them."""
    from simlab.supervisor import Part, lab_status, lab_up

    lab_dir = settings.lab_dir
    needed: list[Part] = ["postgres", "ray", *(["ollama"] if model_spec == "local" else [])]  # type: ignore[list-item]
    status = lab_status(lab_dir)
    down = [p for p in needed if status.get(p, {}).get("status") != "up"]
    if not down:
        return False
    err_console.print(f"starting the embedded lab's {', '.join(down)} (it is stopped again at the end)")
    lab_up(lab_dir, parts=tuple(down), progress=lambda msg: err_console.print(f"  {msg} …"))
    return True


def _run(settings: Settings, cases: list[Case], model_spec: str, suite: str, repeat: int, use_judge: bool,
         baseline: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    from evals.report import build_report, compare
    from evals.runner import EvalRunner

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="labops-eval-") as tmp:
        work = Path(tmp)
        runner = EvalRunner(settings, model_spec=model_spec, work=work, use_judge=use_judge)
        try:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=err_console, transient=False) as bar:
                task = bar.add_task("eval", total=len(cases) * repeat)

                def step(result: CaseResult) -> None:
                    mark = "[green]pass[/green]" if result.passed else "[red]FAIL[/red]"
                    why = f"  ({', '.join(result.failed_parts)})" if not result.passed else ""
                    bar.console.print(f"  {mark} {escape(result.id)}{why}")
                    bar.advance(task)

                results = runner.run(cases, repeat=repeat, progress=step)
            report = build_report(results, model=runner.model_info, suite=suite, repeat=repeat, started=started,
                                  finished=time.time())  # fmt: skip
        finally:
            runner.close()
    if baseline is not None:
        report["baseline"] = compare(report, baseline)
    return report


def _summary(report: dict[str, Any]) -> None:
    console.print(
        f"[bold]{report['passed']}/{report['runs']} passed ({report['pass_rate']:.1%})[/bold], "
        f"unsafe actions: {report['unsafe_actions']}, median {report['latency_s']['median']} s per case"
    )
    table = Table("tier", "passed", box=None)
    for tier, row in report["by_tier"].items():
        table.add_row(tier, f"{row['passed']}/{row['runs']}")
    console.print(table)
    splits = Table("split", "cases", "pass@1", "pass^k", box=None)
    for name, row in report.get("by_split", {}).items():
        splits.add_row(name, str(row["cases"]), f"{row['pass_at_1']:.1%}", f"{row['pass_hat_k']:.1%}")
    console.print(splits)
    g = report["grounding"]
    console.print(f"grounding audit: {g['answers_with_unsourced']} answers with unsourced statements, "
                  f"{g['answers_with_contradictions']} contradicting tool data "
                  f"({g['left_out_by_the_agent']} statements left out by the agent)")  # fmt: skip
