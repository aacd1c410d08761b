"""What every chat channel does the same way with a message before the agent sees it as a question.

- ``approve apr_1a2b…`` / ``deny apr_1a2b…: reason`` typed by an approver in their own chat (OpenWebUI, Slack,
  ``labops chat``, an eval's turn) decides the approval through the guard and resumes the conversation that
  waits for it, exactly once.
- OpenWebUI's background requests (chat title, tags, follow-up suggestions) are answered at once, without the
  agent, its tools or the model queue.

These sit below the channels, so the evals run a conversation exactly as the channels do without importing
them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.runtime import Agent, TurnResult
from policies.guard import Caller

__all__ = [
    "ApprovalCommand",
    "Decided",
    "approval_command",
    "decide",
    "housekeeping",
    "last_user_text",
    "message_text",
]


def message_text(message: dict[str, Any]) -> str:
    """The text of an OpenAI-style message (a string, or a list of content parts)."""
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


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
