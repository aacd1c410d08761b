"""``labops ask`` (one turn) and ``labops chat`` (a REPL): the agent from the terminal.

Both stream the answer as it is generated, show tool calls and their outcomes as they happen, and stop
at an approval with its id and who may give it. In ``chat`` an approver may approve inline; otherwise
``labops approvals approve ID`` approves and continues the waiting conversation. Exit codes of ``ask``
follow ``tool call``: 0 answered, 1 error, 4 waiting for an approval.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from typing import Any

import click
from rich.markup import escape

from agent.commands import approval_command, decide
from channels.cli.common import EXIT_CODES, cli_caller, console, echo_json, err_console, get_settings, handle_errors
from core.errors import LabOpsError

__all__ = ["ask", "chat", "print_event", "resume_after_approval"]


def _services() -> Any:
    """The composition this command works with (the agent is made on first use)."""
    from agent.services import build_services

    return build_services(get_settings())


def print_event(event: dict[str, Any], state: dict[str, Any]) -> None:
    """Show one agent event in the terminal (tokens inline, the rest on their own lines)."""
    kind = event.get("type")
    if kind == "token":
        if state.get("newline"):
            console.print()
            state["newline"] = False
        console.print(escape(str(event["text"])), end="")
        state["open"] = True
        return
    if state.get("open"):
        console.print()
        state["open"] = False
    if kind == "tool_call":
        console.print(f"[dim]→ {escape(event['name'])} {escape(json.dumps(event['args'], ensure_ascii=False))}[/dim]")
    elif kind == "tool_result":
        colour = {"ok": "green", "no_data": "yellow", "needs_approval": "yellow"}.get(event["status"], "red")
        first = str(event["message"]).splitlines()[0] if event["message"] else ""
        console.print(f"[dim]  [{colour}]{event['status']}[/{colour}]: {escape(first[:200])}[/dim]")
    elif kind == "retrieved":
        console.print(f"[dim]  docs: {escape(', '.join(event['citations']))}[/dim]")
    elif kind == "approval":
        who = ", ".join(event.get("approvers") or []) or f"a user with role {event.get('role')}"
        console.print(
            f"[yellow]⏸ approval {event.get('approval_id')} needed[/yellow] for {escape(str(event.get('summary')))}"
            f" — {escape(who)} may approve: `labops approvals approve {event.get('approval_id')} --as <approver>`"
        )
    elif kind == "notice":
        console.print(f"[yellow]{escape(str(event['text']))}[/yellow]")
    state["newline"] = kind in ("tool_result", "retrieved")


def _run(events: Any, as_json: bool) -> Any:
    state: dict[str, Any] = {}
    result = None
    for event in events:
        if event["type"] == "done":
            result = event["result"]
        elif not as_json:
            print_event(event, state)
    return result


@click.command()
@click.argument("message")
@click.option("--as", "user", default=None, help="Ask as this lab user (operators only; default: your own user).")
@click.option("--thread", default=None, help="Continue this conversation thread (printed by an earlier ask).")
@click.option(
    "--json", "as_json", is_flag=True,
    help="Print the turn as JSON (answer, tool_calls, citations, sources, grounding, ...).",
)  # fmt: skip
@handle_errors
def ask(message: str, user: str | None, thread: str | None, as_json: bool) -> None:
    """Ask the agent one question (or give it one instruction)."""
    caller = cli_caller(user, request_text=message)
    services = _services()
    agent = services.agent
    try:
        result = _run(agent.stream(message, caller=caller, thread=thread), as_json)
    finally:
        services.close()
    if as_json:
        echo_json(result.as_dict())
    else:
        console.print()
        err_console.print(f"[dim]thread {result.thread} · {result.model} · {result.latency_s:.1f} s[/dim]")
    if result.status == "needs_approval":
        sys.exit(EXIT_CODES["needs_approval"])
    if result.stop == "model_unavailable":
        # Nothing was answered: a script must not take the apology for an answer.
        sys.exit(EXIT_CODES["error"])
    if any(c["status"] == "error" for c in result.tool_calls) and not result.answer:
        sys.exit(EXIT_CODES["error"])


@click.command()
@click.option("--as", "user", default=None, help="Chat as this lab user (operators only; default: your own user).")
@click.option("--thread", default=None, help="Continue an earlier conversation thread.")
@handle_errors
def chat(user: str | None, thread: str | None) -> None:
    """Talk to the agent (type /quit to leave, /new for a new thread).

    An approver may type ``approve apr_…`` (or ``deny apr_…: reason``) here, as in any chat channel.
    """
    caller = cli_caller(user)
    services = _services()
    agent = services.agent
    thread = thread or agent.new_thread()
    console.print(f"[dim]LabOps chat as {caller.user}, thread {thread}. /new starts over, /quit leaves.[/dim]")
    try:
        while True:
            try:
                text = click.prompt(click.style(f"{caller.user}>", fg="cyan"), prompt_suffix=" ", default="",
                                    show_default=False)  # fmt: skip
            except (EOFError, click.Abort):
                break
            text = text.strip()
            if text in ("/quit", "/exit"):
                break
            if text == "/new":
                thread = agent.new_thread()
                console.print(f"[dim]new thread {thread}[/dim]")
                continue
            if not text:
                continue
            started = time.monotonic()
            command = approval_command(text)
            if command is not None:
                # "approve apr_…" / "deny apr_…: reason" decides through the guard, as in every chat channel.
                decided = decide(agent, replace(caller, request_text=text), command)
                console.print(escape(decided.text))
                err_console.print(f"[dim]{time.monotonic() - started:.1f} s[/dim]")
                continue
            try:
                result = _run(agent.stream(text, caller=caller, thread=thread), False)
            except LabOpsError as exc:
                err_console.print(f"[red]error:[/red] {exc}")
                continue
            # The answer ends its line, and the time it took is shown (piped input reads clearly too).
            console.print()
            err_console.print(f"[dim]{time.monotonic() - started:.1f} s[/dim]")
            waiting = result is not None and result.status == "needs_approval"
            if waiting and _approve_inline(agent, result.pending or {}) == "quit":
                break
    finally:
        services.close()


def _approve_inline(agent: Any, pending: dict[str, Any]) -> str | None:
    approval_id = pending.get("approval_id")
    try:
        name = click.prompt(
            "approve now as (a user who may approve; blank leaves it pending, /quit leaves the chat)",
            default="",
            show_default=False,
        ).strip()
    except (EOFError, click.Abort):
        name = "/quit"
    if name in ("/quit", "/exit"):
        console.print(f"[dim]left pending: `labops approvals approve {approval_id} --as <approver>`[/dim]")
        return "quit"
    if not name or name.startswith("/") or not approval_id:
        console.print(f"[dim]left pending: `labops approvals approve {approval_id} --as <approver>`[/dim]")
        return None
    try:
        approver = cli_caller(name, request_text=f"approve {approval_id} (inline in chat)")
    except LabOpsError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}; left pending")
        return None
    outcome = agent.guard.approve(approval_id, caller=approver, reason="approved in labops chat")
    if outcome.status != "ok":
        console.print(f"[red]{outcome.status}[/red]: {escape(outcome.message)}")
        return None
    console.print(f"[green]{escape(outcome.message)}[/green]")
    resume_after_approval(agent, approval_id, outcome.data["approval"]["state"], approver.user, "")
    return None


def resume_after_approval(agent: Any, approval_id: str, state: str, by: str, reason: str) -> None:
    """Continue the conversation waiting for this approval, if any, and print how it went on."""
    if state not in ("approved", "denied"):
        return
    result = agent.resume_approval(approval_id, decision=state, by=by, reason=reason)
    if result is None:
        return
    console.print(f"[dim]the conversation {result.thread} that asked for it continues:[/dim]")
    console.print(escape(result.answer))
