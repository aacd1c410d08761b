"""A turn as chat text, the same in every HTTP channel (OpenWebUI, Slack).

A turn's events become text: the answer, one line per tool call, and the approval request with its plan,
id and who may approve. Answers of resumed requests not yet shown come first. Approval commands typed in a
chat and OpenWebUI's background tasks are handled before a turn (:mod:`agent.commands`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from agent.runtime import Agent, TurnResult
from policies.guard import Caller

__all__ = ["approval_text", "turn_pieces"]


def approval_text(event: dict[str, Any]) -> str:
    """An approval request as chat text: what would run, the exact arguments, its id and who may approve."""
    approvers = list(event.get("approvers") or [])
    who = ", ".join(approvers) or f"a user with role {event.get('role')}"
    plan = event.get("plan") or {}
    approval_id = event.get("approval_id")
    lines = [
        f"\n\n**Approval needed** — {event.get('summary')}",
        f"- approval id: `{approval_id}`",
        f"- exact arguments: `{json.dumps(event.get('args'), ensure_ascii=False, sort_keys=True)}`",
        f"- requested by: {event.get('requester')}; who may approve: {who}"
        + (" (someone other than the requester)" if event.get("four_eyes") else ""),
    ]
    for call in (plan.get("api_calls") or [])[:5]:
        lines.append(f"- would run: `{call}`")
    lines.append(
        f"An approver writes `approve {approval_id}` (or `deny {approval_id}: reason`) in their own chat, "
        "or clicks Approve in Slack; this conversation then goes on by itself."
    )
    return "\n".join(lines) + "\n"


def turn_pieces(
    agent: Agent,
    text: str,
    *,
    caller: Caller,
    thread: str,
    on_approval: Callable[[dict[str, Any]], None] | None = None,
    on_result: Callable[[TurnResult], None] | None = None,
    show_tools: bool = True,
) -> Iterator[str]:
    """One turn as text pieces: updates of this thread not shown yet, the answer, tool lines, approvals."""
    for update in agent.waits.undelivered(thread):
        yield f"_Update on {update['approval_id']}:_ {update['answer']}\n\n"
    for event in agent.stream(text, caller=caller, thread=thread, request_id=caller.request_id):
        kind = event["type"]
        if kind == "token":
            yield str(event["text"])
        elif kind == "tool_result" and show_tools:
            first = str(event["message"]).splitlines()[0] if event["message"] else ""
            yield f"_({event['name']}: {event['status']} — {first[:160]})_\n\n"
        elif kind == "approval":
            if on_approval is not None:
                on_approval(event)
            yield approval_text(event)
        elif kind == "done" and on_result is not None:
            on_result(event["result"])
