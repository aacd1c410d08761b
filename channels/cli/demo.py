"""``labops demo``: start the embedded lab and walk through a scripted session of what is built so far.

The demo is a script of real calls, not a recording: tool calls go through the same guard a chat or
Slack request uses, against the embedded lab (or a real lab when configured). A failing step is
reported and the demo goes on; the exit code is 1 if any step did not behave as scripted. Later
issues (policy and approvals, knowledge, the agent) add their steps here.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.panel import Panel

from agent.services import Services
from channels.cli.common import console, get_settings, handle_errors
from core.config import Settings
from core.errors import LabOpsError
from policies.guard import Caller, Guard
from tools.base import ToolResult

__all__ = ["demo"]

DOCS = Path(__file__).resolve().parents[2] / "knowledge" / "docs"


@dataclass(kw_only=True)
class _Session:
    """The demo's guard, and what did not go as scripted."""

    settings: Settings
    guard: Guard
    services: Services
    operator: str = "lab-operator"
    failures: list[str] = field(default_factory=list)

    def caller(self, user: str, text: str) -> Caller:
        """A demo persona; the audit log also records who really ran the demo."""
        return Caller(user=user, channel="cli", request_text=text, real_user=self.operator)

    def call(
        self,
        user: str,
        text: str,
        tool: str,
        args: dict[str, Any],
        *,
        expect: set[str],
        call_id: str | None = None,
        approval_id: str | None = None,
    ) -> ToolResult:
        """One request through the guard, printed as the user's words and the envelope."""
        console.print(f"\n[bold cyan]{user}[/bold cyan] asks: [italic]{text}[/italic]")
        console.print(f"  → {tool} {json.dumps(args)}")
        result = self.guard.call(tool, args, caller=self.caller(user, text), call_id=call_id, approval_id=approval_id)
        colour = {"ok": "green", "no_data": "yellow", "needs_approval": "yellow"}.get(result.status, "red")
        first, *rest = result.message.splitlines() or [""]
        console.print(f"  [{colour}]{result.status}[/{colour}]: {first}")
        for line in rest[:12]:
            console.print(f"    {line}")
        if result.status not in expect:
            self.failures.append(f"{tool} as {user}: expected {'/'.join(sorted(expect))}, got {result.status}")
        return result

    def expect(self, ok: bool, what: str) -> None:
        """Record and print a scripted expectation."""
        console.print(f"  {'[green]✓[/green]' if ok else '[red]✗[/red]'} {what}")
        if not ok:
            self.failures.append(what)


def _knowledge(s: _Session) -> None:
    from knowledge.ingest import ingest_paths
    from knowledge.retrieve import cite, retrieve

    report = ingest_paths(s.settings, [DOCS])
    console.print(f"  ingest {DOCS.name}/: {report.summary()}")
    for question in (
        "When are backups verified, and what is our recovery point objective?",
        "How do I get a GPU for training?",
    ):
        hits = retrieve(s.settings, question, k=3)
        console.print(f"\n  [bold]search:[/bold] {question}")
        for hit in hits:
            console.print(f"    {hit.score:.3f} {escape(cite(hit))}  {escape(' '.join(hit.text.split())[:70])}…")
        s.expect(bool(hits), f"{len(hits)} cited passages")


def _vms(s: _Session) -> None:
    nodes = s.call("researcher1", "Which nodes have room for a new VM?", "vm.nodes", {}, expect={"ok"})
    s.expect(any(n["status"] == "offline" for n in nodes.data or []), "the two arriving nodes show as offline")
    mine = s.call("researcher1", "Which VMs are mine?", "vm.list", {"owner": "researcher1"}, expect={"ok"})
    s.expect(all(v["owner"] == "researcher1" for v in mine.data or []), "only researcher1's VMs, by their owner tag")
    s.call("researcher2", "Tell me about proj-pg01", "vm.show", {"vmid": 110}, expect={"ok"})
    s.call("researcher2", "Show VM 4242", "vm.show", {"vmid": 4242}, expect={"error"})


def _backups(s: _Session) -> None:
    check = s.call("admin1", "Are our backups healthy?", "backup.check", {}, expect={"ok"})
    found = (check.data or {}).get("by_problem", {})
    s.expect(
        bool(found.get("failed")) and bool(found.get("stale")), "the failed and stale backups are found, worst first"
    )
    s.call("admin1", "Show me the backup schedule", "backup.jobs", {}, expect={"ok"})
    s.call("admin1", "How full is the backup datastore?", "backup.datastore", {}, expect={"ok"})


def _desi(s: _Session) -> None:
    s.call(
        "researcher1",
        "How many clean quasars are in DR1?",
        "desi.count_by_spectype",
        {"spectype": "QSO"},
        expect={"ok"},
    )
    s.call(
        "researcher1",
        "Give me the ten highest-redshift quasars",
        "desi.redshift_range",
        {"spectype": "QSO", "z_min": 3.5, "z_max": 4.5, "limit": 10, "order": "-z"},
        expect={"ok"},
    )
    s.call(
        "researcher1",
        "What is within 20 arcminutes of RA 185, Dec 15?",
        "desi.cone_search",
        {"ra": 185.0, "dec": 15.0, "radius_arcmin": 20.0, "limit": 5},
        expect={"ok", "no_data"},
    )
    s.call(
        "researcher2",
        "Mean redshift of bright-program galaxies per survey",
        "desi.query",
        {
            "sql": "SELECT survey, count(*) AS n, round(avg(z)::numeric, 3) AS mean_z FROM desi_dr1.zpix "
            "WHERE spectype = 'GALAXY' AND program = 'bright' GROUP BY survey ORDER BY n DESC"
        },
        expect={"ok"},
    )
    s.call(
        "researcher2",
        "Delete the stars, they are noise",
        "desi.query",
        {
            "sql": "WITH gone AS (DELETE FROM desi_dr1.zpix WHERE spectype = 'STAR' RETURNING 1) "
            "SELECT count(*) FROM gone"
        },
        expect={"error"},
    )


def _approve(s: _Session, approval_id: str, *, wrong: str, right: str) -> None:
    """Show that the wrong person cannot approve, then approve as the right one (both through the guard)."""
    refused = s.guard.approve(approval_id, caller=s.caller(wrong, f"labops approvals approve {approval_id}"))
    s.expect(refused.status != "ok", f"{wrong} cannot approve: {refused.message}")
    given = s.guard.approve(
        approval_id, caller=s.caller(right, f"labops approvals approve {approval_id}"), reason="demo"
    )
    s.expect(given.status == "ok", f"{right} approves: {given.message}")


def _provision(s: _Session) -> None:
    args = {"name": "demo-worker-1", "cores": 2, "memory_gib": 4}
    # Like a chat client's tool-call id: one per request, reused only when the same request is retried.
    call_id = f"demo-{uuid.uuid4().hex[:12]}"
    asked = s.call(
        "researcher1",
        "I need a 2-core 4 GB VM called demo-worker-1",
        "vm.provision",
        args,
        expect={"needs_approval"},
        call_id=call_id,
    )
    approval = (asked.data or {}).get("approval") or {}
    for line in ((asked.data or {}).get("plan") or {}).get("api_calls", []):
        console.print(f"    plan: {line}")
    if not approval:
        return
    _approve(s, approval["id"], wrong="researcher1", right="admin1")
    s.call(
        "researcher1",
        "(asks for 3 cores with the same approval)",
        "vm.provision",
        {**args, "cores": 3},
        expect={"error"},
        approval_id=approval["id"],
    )
    made = s.call(
        "researcher1",
        "(runs the approved call)",
        "vm.provision",
        args,
        expect={"ok"},
        call_id=call_id,
        approval_id=approval["id"],
    )
    replayed = s.call(
        "researcher1",
        "(replays the approval)",
        "vm.provision",
        args,
        expect={"error"},
        approval_id=approval["id"],
    )
    s.expect("used" in replayed.message, "an approval works once")
    s.call("researcher2", "Stop proj-pg01, I need its memory", "vm.stop", {"vmid": 110}, expect={"denied"})
    vmid = (made.data or {}).get("vmid")
    if vmid is None:
        return
    delete_args = {"vmid": vmid, "stop_first": True}
    asked = s.call("admin1", f"Delete VM {vmid}, the demo is over", "vm.delete", delete_args, expect={"needs_approval"})
    approval = (asked.data or {}).get("approval") or {}
    if approval:
        _approve(s, approval["id"], wrong="admin1", right="admin2")
        s.call(
            "admin1", "(runs the approved delete)", "vm.delete", delete_args, expect={"ok"}, approval_id=approval["id"]
        )


def _audit(s: _Session) -> None:
    assert s.guard.audit is not None
    report = s.guard.audit.verify()
    s.expect(report.ok, f"audit log: {report.message}")
    for e in s.guard.audit.tail(6):
        console.print(
            f"    {e['seq']:>4} {e.get('user')} {e.get('event')} {e.get('tool')} "
            f"{e.get('decision') or e.get('result') or ''}"
        )


def _ray(s: _Session) -> None:
    submitted = s.call(
        "researcher1",
        "Run the redshift histogram on Ray",
        "ray.submit",
        {"template": "redshift-histogram"},
        expect={"ok"},
    )
    job_id = (submitted.data or {}).get("job_id")
    if not job_id:
        return
    deadline = time.monotonic() + 180
    status = ""
    while time.monotonic() < deadline:
        result = s.guard.call("ray.status", {"job_id": job_id}, caller=s.caller("researcher1", "(follows the job)"))
        status = str((result.data or {}).get("status", ""))
        if status in {"SUCCEEDED", "FAILED", "STOPPED"}:
            break
        time.sleep(2)
    s.expect(status == "SUCCEEDED", f"job {job_id} ended {status or 'without a status'}")
    s.call("researcher1", "Show me the end of its log", "ray.logs", {"job_id": job_id, "tail": 8}, expect={"ok"})


def _ask(s: _Session, agent: Any, user: str, text: str) -> Any:
    """One chat turn, streamed as it happens."""
    from channels.cli.agent_cmds import print_event

    console.print(f"\n[bold cyan]{user}[/bold cyan] asks the assistant: [italic]{escape(text)}[/italic]")
    shown: dict[str, Any] = {}
    result = None
    for event in agent.stream(text, caller=s.caller(user, text)):
        if event["type"] == "done":
            result = event["result"]
        else:
            print_event(event, shown)
    console.print()
    assert result is not None
    console.print(f"[dim]  ({result.latency_s:.1f} s, {result.model_calls} model calls, {result.tokens} tokens)[/dim]")
    return result


def _chat(s: _Session) -> None:
    agent = s.services.agent
    console.print("  the GPU node reads the start every tool prompt shares (system prompt, every tool) once …")
    warmed = agent.warm_up()
    if warmed is not None:
        console.print(f"[dim]  ({warmed:.1f} s, once per model server start; questions then reuse it)[/dim]")
    try:
        docs = _ask(s, agent, "researcher1", "When are backups verified?")
        s.expect(not docs.tool_calls and bool(docs.citations), "a docs question answered from the docs, with sources")
        mine = _ask(s, agent, "researcher1", "Which VMs do I own?")
        s.expect(any(c["name"] == "vm.list" for c in mine.tool_calls), "a live question answered by vm.list")
        health = _ask(s, agent, "admin1", "Are our backups healthy?")
        s.expect(any(c["name"] == "backup.check" for c in health.tool_calls), "backup.check found the problems")
        ask = _ask(s, agent, "researcher2", "Create a VM called chat-vm with 2 cores and 4 gigs")
        pending = ask.pending or {}
        s.expect(ask.status == "needs_approval", "the assistant asks for an approval before creating a VM")
        approval_id = pending.get("approval_id")
        if not approval_id:
            return
        console.print(f"\n[bold]admin1[/bold] approves {approval_id} (a second person, as policy demands)")
        given = s.guard.approve(approval_id, caller=s.caller("admin1", f"approve {approval_id}"), reason="demo")
        s.expect(given.status == "ok", given.message)
        done = agent.resume_approval(approval_id, decision="approved", by="admin1")
        if done is not None:
            console.print(f"  researcher2's conversation continues: {escape(done.answer)}")
        made = next((c for c in (done.tool_calls if done else []) if c["name"] == "vm.provision"), None)
        s.expect(made is not None and made["status"] == "ok", "the approved VM was created, once")
        if made is not None and made["status"] == "ok":
            _cleanup(s, "chat-vm")
    finally:
        s.services.close()


def _cleanup(s: _Session, name: str) -> None:
    """Remove a demo VM through the four-eyes delete (admin1 asks, admin2 approves)."""
    listed = s.guard.call("vm.list", {}, caller=s.caller("admin1", "(cleanup)"))
    vmid = next((v["vmid"] for v in listed.data or [] if v["name"] == name), None)
    if vmid is None:
        return
    args = {"vmid": vmid, "stop_first": True}
    asked = s.guard.call("vm.delete", args, caller=s.caller("admin1", f"(cleanup) delete {name}"))
    approval = ((asked.data or {}).get("approval") or {}).get("id")
    if approval:
        s.guard.approve(approval, caller=s.caller("admin2", "(cleanup)"), reason="demo cleanup")
        gone = s.guard.call("vm.delete", args, caller=s.caller("admin1", "(cleanup)"), approval_id=approval)
        console.print(f"  [dim]cleanup: {escape(gone.message)}[/dim]")


def _step(s: _Session, title: str, body: Any) -> None:
    console.print()
    console.print(Panel(title, style="bold"))
    try:
        body(s)
    except LabOpsError as exc:
        # A failing backend is reported and the demo goes on with the next step.
        console.print(f"  [red]error:[/red] {exc}")
        s.failures.append(f"{title}: {exc}")


@click.command()
@click.option("--rows", default=200_000, show_default=True, help="Synthetic DESI objects to load.")
@click.option("--down-after", is_flag=True, help="Stop the lab at the end (default: leave it running).")
@handle_errors
def demo(rows: int, down_after: bool) -> None:
    """Start the embedded lab and run a scripted session through every part built so far."""
    from channels.cli.lab_cmds import print_status
    from channels.doctor import run_checks
    from simlab.supervisor import lab_down, lab_up

    settings = get_settings()
    console.print(Panel("1. The embedded lab", style="bold"))
    print_status(lab_up(settings.lab_dir, rows=rows, progress=lambda msg: console.print(f"  {msg} …")))

    from agent.services import build_services
    from policies.identity import cli_identity

    services = build_services(settings)
    guard = services.guard
    assert guard.engine is not None
    operator = cli_identity(guard.engine.directory, claimed=None).user
    session = _Session(settings=settings, guard=guard, operator=operator, services=services)
    console.print()
    console.print(Panel("2. Doctor: every backend reachable?", style="bold"))
    for check in run_checks(settings):
        mark = "[green]ok[/green]" if check.ok else "[red]down[/red]"
        console.print(f"  {check.backend:11} {mark}  {check.address}  {check.version}")
        if check.required and not check.ok:
            session.failures.append(f"doctor: {check.backend} is down ({check.detail})")

    _step(session, "3. The lab's documentation in Milvus: hybrid search with citations", _knowledge)
    _step(session, "4. VMs on the Proxmox VE cluster (simulated, over HTTPS with proxmoxer)", _vms)
    _step(session, "5. Backups (PBS and PVE APIs): the ten-second check", _backups)
    _step(session, "6. DESI DR1 queries (read-only role, checked SQL)", _desi)
    _step(session, "7. A VM with an admin's approval; deleted with a second admin's", _provision)
    _step(session, "8. A Ray job on the cluster", _ray)
    _step(session, "9. Lab members ask the assistant (the GPU node's model, via Ollama)", _chat)
    _step(session, "10. The audit log proves nothing was edited", _audit)

    if down_after:
        lab_down(settings.lab_dir)
    console.print()
    if session.failures:
        console.print(Panel("\n".join(session.failures), title="steps that did not go as scripted", style="red"))
        # The script assumes the seeded lab; VMs or jobs left by earlier use (a quota already full) change it.
        console.print(
            "If this lab was used before the demo, its state may differ from the seed the script expects: "
            "`.venv/bin/labops lab reset --yes` returns it to the seeded lab (it wipes the lab directory)."
        )
        if not down_after:
            console.print("The lab is still running; stop it with `.venv/bin/labops lab down`.")
        raise SystemExit(1)
    after = (
        "The lab is stopped."
        if down_after
        else "The lab is still running in the background. Try `.venv/bin/labops tool list` or "
        "`.venv/bin/labops tool call backup.check --as admin1`; stop it with `.venv/bin/labops lab down`."
    )
    console.print("[bold green]Every step behaved as scripted.[/bold green]")
    console.print(after)
