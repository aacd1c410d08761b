"""Slack text and Block Kit for tool results, approval requests and outcomes (mrkdwn, bounded sizes)."""

from __future__ import annotations

import json
import time
from typing import Any

from tools.base import ToolResult

__all__ = ["approval_blocks", "escape", "outcome_blocks", "result_text", "truncate"]

MAX_TEXT = 3000  # a section block's text limit
_EMOJI = {"ok": ":white_check_mark:", "no_data": ":information_source:", "needs_approval": ":hourglass:",
          "denied": ":no_entry:", "error": ":x:"}  # fmt: skip


def escape(text: str) -> str:
    """Slack's three control characters (so user text cannot mention @channel or forge links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    """At most ``limit`` characters, saying when something was cut."""
    return text if len(text) <= limit else text[: limit - 40].rstrip() + "\n… (cut; ask the CLI or the chat for all)"


def _table(rows: list[dict[str, Any]], limit: int = 20) -> str:
    keys = [k for k in rows[0] if not isinstance(rows[0][k], dict | list)][:6]
    widths = {k: min(18, max(len(k), *(len(str(r.get(k, ""))) for r in rows[:limit]))) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys)]
    for row in rows[:limit]:
        lines.append("  ".join(str(row.get(k, ""))[: widths[k]].ljust(widths[k]) for k in keys))
    if len(rows) > limit:
        lines.append(f"… {len(rows) - limit} more")
    return "```\n" + escape("\n".join(lines)) + "\n```"


def result_text(title: str, result: ToolResult) -> str:
    """A tool result as one Slack message: status, message, and a small table of list data."""
    text = f"{_EMOJI.get(result.status, '')} *{escape(title)}* — {escape(result.message)}"
    data = result.data
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        text += "\n" + _table(data)
    return truncate(text, 3900)


def approval_blocks(event: dict[str, Any], *, requester_mention: str, approvers: str) -> list[dict[str, Any]]:
    """The approval request with Approve and Deny buttons bound to its id."""
    approval_id = str(event.get("approval_id"))
    args = json.dumps(event.get("args"), ensure_ascii=False, sort_keys=True)
    expires = event.get("expires")
    left = f", expires in {max(0, int((float(expires) - time.time()) // 60))} min" if expires else ""
    plan = event.get("plan") or {}
    calls = "\n".join(f"• `{escape(str(c))}`" for c in (plan.get("api_calls") or [])[:5])
    text = (
        f":hourglass: *Approval needed* — {escape(str(event.get('summary')))}\n"
        f"Requested by {requester_mention}; may approve: {escape(approvers)}{left}\n"
        f"Arguments: `{escape(args)}`\nApproval `{approval_id}`" + (f"\nWould run:\n{calls}" if calls else "")
    )
    return [
        {"type": "section", "block_id": "request", "text": {"type": "mrkdwn", "text": truncate(text)}},
        {
            "type": "actions",
            "block_id": f"approval_{approval_id}"[:255],
            "elements": [
                {"type": "button", "action_id": "labops_approve", "style": "primary", "value": approval_id,
                 "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": "labops_deny", "style": "danger", "value": approval_id,
                 "text": {"type": "plain_text", "text": "Deny"},
                 "confirm": {"title": {"type": "plain_text", "text": "Deny this request?"},
                             "text": {"type": "mrkdwn", "text": "The requester is told it was denied."},
                             "confirm": {"type": "plain_text", "text": "Deny"},
                             "deny": {"type": "plain_text", "text": "Cancel"}}},
            ],
        },
    ]  # fmt: skip


def outcome_blocks(text: str) -> list[dict[str, Any]]:
    """The approval message once decided: the outcome, no buttons."""
    return [{"type": "section", "block_id": "outcome", "text": {"type": "mrkdwn", "text": truncate(escape(text))}}]
