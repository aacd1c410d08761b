"""``labops demo``: start the embedded lab and walk through a scripted session of every part.

The demo is a script of real calls, not a recording: each step goes through the same guard, policy,
approval store and audit log a chat or Slack request would, against the embedded lab (or a real lab
when configured). A step whose backend fails is reported and the demo goes on; the exit code is 1
if any step did not behave as the script expects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.panel import Panel

from channels.cli.common import console, get_settings, handle_errors
from core.config import Settings
from core.errors import LabOpsError
from policies.approvals import ApprovalService
from policies.audit import AuditLog
from policies.guard import Caller, Guard
from tools.base import ToolResult

__all__ = ["demo"]

DOCS = Path(__file__).resolve().parents[2] / "knowledge" / "docs"


@dataclass(kw_only=True)
class _Session:
    """The demo's state: the guard, and whether every step went as scripted."""

    settings: Settings
    guard: Guard
    approvals: ApprovalService
    failures: list[str] = field(default_factory=list)
    counter: int = 0

    def call(
        self,
        user: str,
        text: str,
        tool: str,
        args: dict[str, Any],
        *,
        expect: set[str],
        approval_id: str | None = None,
        call_id: str | None = None,
    ) -> ToolResult:
        """One request through the guard, printed as the user's words and the envelope."""
        self.counter += 1
        console.print(f"\n[bold cyan]{user}[/bold cyan] asks: [italic]{text}[/italic]")
        console.print(f"  → {tool} {json.dumps(args)}" + (f"  (approval {approval_id})" if approval_id else ""))
        caller = Caller(user=user, channel="cli", request_text=text)
        result = self.guard.call(
            tool, args, caller=caller, call_id=call_id or f"demo-{self.counter}", approval_id=approval_id
        )
        colour = {"ok": "green", "no_data": "yellow", "needs_approval": "yellow"}.get(result.status, "red")
        console.print(f"  [{colour}]{result.status}[/{colour}]: {result.message}")
        if result.status not in expect:
            self.failures.append(f"{tool} as {user}: expected {sorted(expect)}, got {result.status}")
        return result

    def expect(self, ok: bool, what: str) -> None:
        """Record a scripted expectation."""
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        console.print(f"  {mark} {what}")
        if not ok:
            self.failures.append(what)


def _step(title: str) -> None:
    console.print()
    console.print(Panel(title, style="bold"))


def _run_step(session: _Session, title: str, body: Callable[[_Session], None]) -> None:
    _step(title)
    try:
        body(session)
    except LabOpsError as exc:
        # A failing backend is reported and the demo goes on with the next step.
        console.print(f"  [red]error:[/red] {exc}")
        session.failures.append(f"{title}: {exc}")


def _knowledge(session: _Session) -> None:
    from knowledge.ingest import ingest_paths
    from knowledge.retrieve import retrieve

    report = ingest_paths(session.settings, [DOCS])
    console.print(f"  ingested {DOCS.name}/: {report.summary()}")
    for question in ("When are the backups verified, and what is our RPO?", "How do I get a VM for my project?"):
        hits = retrieve(session.settings, question, k=3)
        console.print(f"\n  [bold]search:[/bold] {question}")
        for hit in hits:
            console.print(f"    {hit.score:.3f}  [{hit.source} § {hit.section}]  {hit.text[:90].strip()}…")
        session.expect(bool(hits), f"{len(hits)} cited passages for {question!r}")


def _reads(session: _Session) -> None:
    session.call("researcher1", "Which nodes have room for a new VM?", "vm.nodes", {}, expect={"ok"})
    session.call("researcher1", "Are our backups healthy?", "backup.check", {}, expect={"ok"})
    session.call(
        "researcher1",
        "How many quasars with a clean redshift are in DR1?",
        "desi.count_by_spectype",
        {"spectype": "QSO"},
        expect={"ok"},
    )
    session.call(
        "researcher1",
        "What is within 20 arcminutes of RA 185, Dec 15?",
        "desi.cone_search",
        {"ra": 185.0, "dec": 15.0, "radius_arcmin": 20.0},
        expect={"ok", "no_data"},
    )
    session.call(
        "researcher1",
        "Delete the stars from the catalog",
        "desi.query",
        {"sql": "WITH d AS (DELETE FROM desi_dr1.zpix WHERE spectype = 'STAR' RETURNING 1) SELECT count(*) FROM d"},
        expect={"error"},
    )


def _provision_and_delete(session: _Session) -> None:
    args = {"name": "demo-worker-1", "cores": 2, "memory_gib": 4}
    first = session.call(
        "researcher1", "I need a 2-core 4 GB VM called demo-worker-1", "vm.provision", args, expect={"needs_approval"}
    )
    approval_id = _approval_id(first)
    if approval_id is None:
        return
    try:
        session.approvals.approve(approval_id, approver="researcher1")
        session.expect(False, "the requester cannot approve their own VM")
    except LabOpsError as exc:
        session.expect(True, f"researcher1 cannot approve it: {exc}")
    session.approvals.approve(approval_id, approver="admin1", reason="demo")
    console.print(f"  [bold]admin1[/bold] approves {approval_id}")
    changed = {**args, "cores": 8}
    session.call(
        "researcher1", "(same approval, 8 cores instead)", "vm.provision", changed, expect={"needs_approval", "denied"},
        approval_id=approval_id,
    )
    done = session.call(
        "researcher1", "(runs the approved call)", "vm.provision", args, expect={"ok"}, approval_id=approval_id
    )
    session.call(
        "researcher1", "(replays the approval)", "vm.provision", args, expect={"needs_approval", "denied", "error"},
        approval_id=approval_id, call_id="demo-replay",
    )
    vmid = (done.data or {}).get("vmid")
    if vmid is None:
        return

    session.call("researcher1", f"Stop proj-pg01, I need its memory", "vm.stop", {"vmid": 100}, expect={"denied"})

    delete = session.call(
        "admin1", f"Delete VM {vmid}, the demo is over", "vm.delete", {"vmid": vmid, "stop_first": True},
        expect={"needs_approval"},
    )
    delete_id = _approval_id(delete)
    if delete_id is None:
        return
    try:
        session.approvals.approve(delete_id, approver="admin1")
        session.expect(False, "an admin cannot approve their own delete")
    except LabOpsError as exc:
        session.expect(True, f"admin1 cannot approve their own delete: {exc}")
    session.approvals.approve(delete_id, approver="admin2", reason="four eyes")
    console.print(f"  [bold]admin2[/bold] approves {delete_id}")
    session.call(
        "admin1", "(runs the approved delete)", "vm.delete", {"vmid": vmid, "stop_first": True}, expect={"ok"},
        approval_id=delete_id,
    )


def _ray(session: _Session) -> None:
    submitted = session.call(
        "researcher1",
        "Run the parallel-sum example on Ray",
        "ray.submit",
        {"template": "parallel-sum"},
        expect={"ok"},
    )
    job_id = (submitted.data or {}).get("job_id")
    if not job_id:
        return
    deadline = time.monotonic() + 120
    status = ""
    while time.monotonic() < deadline:
        result = session.guard.call("ray.status", {"job_id": job_id}, caller=Caller(user="researcher1", channel="cli"))
        status = str((result.data or {}).get("status", ""))
        if status in {"SUCCEEDED", "FAILED", "STOPPED"}:
            break
        time.sleep(2)
    session.expect(status == "SUCCEEDED", f"job {job_id} ended {status or 'without a status'}")
    session.call("researcher1", "Show me the end of its log", "ray.logs", {"job_id": job_id, "tail": 5}, expect={"ok"})


def _audit(session: _Session) -> None:
    log = AuditLog.from_settings(session.settings)
    report = log.verify()
    session.expect(report.ok, f"audit log: {report.message}")


def _approval_id(result: ToolResult) -> str | None:
    data = result.data or {}
    approval = data.get("approval") if isinstance(data, dict) else None
    if isinstance(approval, dict):
        return str(approval.get("id"))
    return None


@click.command()
@click.option("--rows", default=200_000, show_default=True, help="Synthetic DESI objects to load.")
@click.option("--keep-up/--down-after", default=True, show_default=True, help="Leave the lab running afterwards.")
@handle_errors
def demo(rows: int, keep_up: bool) -> None:
    """Start the embedded lab and run a scripted session through every part."""
    from channels.cli.lab_cmds import print_status
    from channels.doctor import run_checks
    from simlab.supervisor import lab_down, lab_up

    settings = get_settings()
    _step("1. The embedded lab")
    status = lab_up(settings.lab_dir, rows=rows, progress=lambda msg: console.print(f"  {msg} …"))
    print_status(status)

    _step("2. Doctor: every backend reachable?")
    for check in run_checks(settings):
        mark = "[green]ok[/green]" if check.ok else "[red]down[/red]"
        console.print(f"  {check.backend:11} {mark}  {check.address}  {check.version}")

    session = _Session(settings=settings, guard=Guard.from_settings(settings), approvals=ApprovalService.from_settings(settings))
    _run_step(session, "3. Knowledge: the lab's docs in Milvus, hybrid search", _knowledge)
    _run_step(session, "4. Read-only tools: nodes, backups, DESI", _reads)
    _run_step(session, "5. A VM with an admin's approval, deleted with four eyes", _provision_and_delete)
    _run_step(session, "6. A Ray job", _ray)
    _run_step(session, "7. The audit log proves nothing was edited", _audit)

    if not keep_up:
        lab_down(settings.lab_dir)
    console.print()
    if session.failures:
        console.print(Panel("\n".join(session.failures), title="steps that did not go as scripted", style="red"))
        raise SystemExit(1)
    console.print(
        Panel(
            "Every step behaved as scripted. The lab is still running: try `labops tool list`, "
            "`labops audit tail`, or stop it with `labops lab down`.",
            style="green",
        )
    )
