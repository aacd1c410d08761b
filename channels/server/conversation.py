"""What every chat channel does the same way: approvals typed in chat, front-end housekeeping, turns as text.

- ``approve apr_1a2b…`` / ``deny apr_1a2b…: reason`` typed by an approver in their own chat (or ``/lab
  approve`` in Slack) decides the approval through the guard and resumes the conversation that waits for it.
- OpenWebUI's background requests (chat title, tags, follow-up suggestions) are answered at once, without the
  agent, its tools or the model queue.
- A turn's events become text: the answer as it streams, one line per tool call, and the approval request
  with its plan, id and who may approve. Answers of resumed requests not yet shown come first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agent.runtime import Agent, TurnResult
from channels.server.chats import message_text
from policies.guard import Caller

__all__ = [
    "ApprovalCommand",
    "Decided",
    "approval_command",
    "approval_text",
    "decide",
    "housekeeping",
    "last_user_text",
    "turn_pieces",
]

_COMMAND = re.compile(r"^\s*/?(approve|deny)\s+(apr_[0-9a-f]{4,12})\b[\s:,-]*(.*)$", re.I | re.S)
_TASK = re.compile(r"^\s*###\s*Task:\s*(.*)", re.I | re.S)
_OUTPUT_KEY = re.compile(r"JSON format:\s*\{\s*\"([a-z_]+)\"", re.I)


@dataclass(kw_only=True, frozen=True)
class ApprovalCommand:
    """``approve ID`` or ``deny ID: reason``."""

    verb: str
    approval_id: str
    reason: str


def approval_command(text: str) -> ApprovalCommand | None:
    """The approval command ``text`` is, or None."""
    match = _COMMAND.match(text or "")
    if match is None:
        return None
    return ApprovalCommand(verb=match.group(1).lower(), approval_id=match.group(2), reason=match.group(3).strip())


@dataclass(kw_only=True)
class Decided:
    """What an approve/deny command did."""

    ok: bool
    message: str
    approval: dict[str, Any] | None = None
    resumed: TurnResult | None = None

    @property
    def text(self) -> str:
        """The whole outcome as chat text."""
        if not self.ok:
            return f"Not done: {self.message}"
        if self.resumed is None:
            return self.message
        requester = (self.approval or {}).get("requester")
        return f"{self.message}\n\n{requester}'s request went on: {self.resumed.answer}"


def decide(
    agent: Agent,
    caller: Caller,
    command: ApprovalCommand,
    *,
    on_decided: Callable[[Decided], None] | None = None,
) -> Decided:
    """Approve or deny through the guard, then resume the conversation that waits for it (exactly once).

    ``on_decided`` hears the decision before the resumed turn runs (Slack updates the message at once).
    """
    if command.verb == "approve":
        outcome = agent.guard.approve(command.approval_id, caller=caller, reason=command.reason)
    else:
        reason = command.reason or f"denied by {caller.user} in {caller.channel}"
        outcome = agent.guard.deny(command.approval_id, caller=caller, reason=reason)
    if outcome.status != "ok":
        return Decided(ok=False, message=outcome.message)
    approval = outcome.data["approval"]
    if approval["state"] == "approved":
        message = f"{approval['id']} approved by {caller.user}: {approval['summary']} for {approval['requester']}"
    elif approval["state"] == "denied":
        message = f"{approval['id']} denied by {caller.user}: {approval['requester']} is told: {approval['reason']}"
    else:
        message = outcome.message
    decided = Decided(ok=True, message=message, approval=approval)
    if on_decided is not None:
        on_decided(decided)
    if approval["state"] in ("approved", "denied"):
        decided.resumed = agent.resume_approval(
            approval["id"], decision=approval["state"], by=caller.user, reason=approval.get("reason") or ""
        )
    return decided


def housekeeping(messages: list[dict[str, Any]]) -> str | None:
    """The answer to an OpenWebUI background task (title, tags, follow-ups, queries), or None for a question.

    OpenWebUI's task prompts start with ``### Task:`` and name the JSON they want (``JSON format: { "title":
    ... }``); the answer has that shape, made without the model, so it never waits behind a turn.
    """
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    text = message_text(last) if last else ""
    match = _TASK.match(text)
    if match is None:
        return None
    wanted = _OUTPUT_KEY.search(text)
    key = wanted.group(1).lower() if wanted else match.group(1).strip().splitlines()[0].lower()
    first = _first_question(text)
    if "title" in key:
        words = re.sub(r"[^\w\s-]", "", first).split()[:6]
        return json.dumps({"title": " ".join(words).capitalize() or "LabOps"})
    if "tag" in key:
        return json.dumps({"tags": ["Lab operations"]})
    if "follow" in key:
        return json.dumps({"follow_ups": []})
    if "quer" in key:
        return json.dumps({"queries": []})  # the agent searches the lab's docs itself
    if "emoji" in key:
        return "🧪"
    return json.dumps({})


def _first_question(task_prompt: str) -> str:
    """The first user line of the chat history OpenWebUI embeds in a task prompt."""
    match = re.search(r"USER:\s*(.+)", task_prompt)
    return match.group(1).strip() if match else ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The newest user message of an OpenAI-style history (OpenWebUI sends the whole history each time)."""
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    return message_text(last) if last else ""


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
