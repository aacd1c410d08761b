"""Slack Block Kit for incidents: one incident, an alert group, and the digest a flood folds into.

Every line of an incident message comes from the incident record: its title and detail (the check or the alert
that found it), the investigation's facts (each a tool's own message, the tool named) and the runbook passage
(quoted, with its citation). Buttons carry the incident id and a fix id, never arguments: the exact call is
read from the record when someone clicks.
"""

from __future__ import annotations

import time
from typing import Any

from channels.server.slack_render import escape, truncate
from core.incidents import Incident

__all__ = ["digest_blocks", "group_blocks", "incident_blocks", "incident_text"]

_MARK = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}
_STATE = {"open": "open", "acknowledged": "acknowledged", "resolved": "resolved"}
MAX_LISTED = 20


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) if epoch else "?"


def _head(incident: Incident) -> str:
    mark = ":white_check_mark:" if incident.state == "resolved" else _MARK[incident.severity]
    return f"{mark} *{escape(incident.title)}* — {incident.severity} · `{incident.id}` · {_STATE[incident.state]}"


def incident_text(incident: Incident) -> str:
    """The fallback text (notifications, clients without blocks)."""
    return f"[{incident.state}] {incident.severity}: {incident.title} ({incident.id})"


def _section(text: str, block_id: str) -> dict[str, Any]:
    return {"type": "section", "block_id": block_id, "text": {"type": "mrkdwn", "text": truncate(text)}}


def incident_blocks(incident: Incident) -> list[dict[str, Any]]:
    """One incident: what was found, the facts, the runbook, and its fixes as buttons while it is active."""
    blocks = [_section(_head(incident), "head")]
    if incident.detail:
        blocks.append(_section(escape(incident.detail), "detail"))
    investigation = incident.investigation or {}
    facts = [f for f in investigation.get("facts", []) if f.get("status") in ("ok", "no_data")]
    if facts:
        lines = "\n".join(f"• `{escape(f['tool'])}` {escape(str(f['message']))}" for f in facts)
        blocks.append(_section(f"*What LabOps found*\n{lines}", "facts"))
    runbook = investigation.get("runbook")
    if runbook:
        quoted = "\n".join(f"> {escape(line)}" for line in str(runbook["text"]).splitlines() if line.strip())
        blocks.append(_section(f"*Runbook* {escape(runbook['citation'])}\n{quoted}", "runbook"))
    elif investigation:
        blocks.append(_section("_No runbook passage of the lab's documentation names this problem._", "runbook"))
    if incident.runbook_url:
        blocks.append(_section(f"Alert runbook: {escape(incident.runbook_url)}", "alert-runbook"))
    if incident.active:
        buttons: list[dict[str, Any]] = [
            {"type": "button", "action_id": f"labops_incident_fix_{n}", "style": "primary",
             "value": f"{incident.id}/{fix.id}", "text": {"type": "plain_text", "text": fix.label[:75]},
             "confirm": {"title": {"type": "plain_text", "text": "Run this now?"},
                         "text": {"type": "mrkdwn", "text": truncate(escape(fix.summary), 300)},
                         "confirm": {"type": "plain_text", "text": "Run"},
                         "deny": {"type": "plain_text", "text": "Cancel"}}}
            for n, fix in enumerate(incident.fixes[:4])
        ]  # fmt: skip
        if incident.state == "open":
            buttons.append({"type": "button", "action_id": "labops_incident_ack", "value": incident.id,
                            "text": {"type": "plain_text", "text": "Acknowledge"}})  # fmt: skip
        blocks.append({"type": "actions", "block_id": f"incident_{incident.id}", "elements": buttons})
    context = f"Opened {_when(incident.opened)} by {incident.source}; seen {incident.seen} times"
    if incident.acked_by:
        context += f"; acknowledged by {escape(incident.acked_by)}"
    if incident.state == "resolved":
        context += f"; resolved {_when(incident.resolved_at)}: {escape(incident.resolution or '')}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(context, 2000)}]})
    return blocks


def _listing(incidents: list[Incident]) -> str:
    lines = [f"{_MARK[i.severity]} `{i.id}` {escape(i.title)}" for i in incidents[:MAX_LISTED]]
    if len(incidents) > MAX_LISTED:
        lines.append(f"… and {len(incidents) - MAX_LISTED} more (`labops incidents list`)")
    return "\n".join(lines)


def group_blocks(group: str, incidents: list[Incident]) -> list[dict[str, Any]]:
    """The message of one Alertmanager group: its active alerts, listed; resolved when none is left."""
    active = [i for i in incidents if i.active]
    name = incidents[0].kind if incidents else group
    if not active:
        return [_section(f":white_check_mark: *{escape(name)}*: all {len(incidents)} alerts resolved", "head")]
    head = f":rotating_light: *{escape(name)}*: {len(active)} alert{'s' if len(active) != 1 else ''} firing"
    blocks = [_section(head, "head"), _section(_listing(active), "alerts")]
    if len(active) == 1:
        return incident_blocks(active[0])
    return blocks


def digest_blocks(incidents: list[Incident], window_s: float) -> list[dict[str, Any]]:
    """The one message a flood of new incidents shares (beyond ``alerts.max_new_messages`` per window)."""
    active = [i for i in incidents if i.active]
    head = (f":rotating_light: *{len(active)} more incidents* opened within {window_s:g} s; listed here instead "
            "of one message each")  # fmt: skip
    return [_section(head, "head"), _section(_listing(active) or "all resolved", "incidents")]
