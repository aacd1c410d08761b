"""Incidents in Slack: one message per incident (or per Alertmanager group) in ``slack.alerts_channel``.

The message is posted once, by whichever replica claims it first in the store, and then updated in place as
the incident changes; acknowledgements, fixes and resolutions are also told in its thread. Noise control: the
alerts of one group share one message; beyond ``alerts.max_new_messages`` new messages within
``alerts.repeat_window_s``, new incidents are listed in one digest message of that window instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from agent.incidents import DeskEvent
from channels.server.incident_render import digest_blocks, group_blocks, incident_blocks, incident_text
from channels.server.slack_render import escape, result_text, truncate
from core.config import Settings
from core.incidents import Incident, IncidentStore

__all__ = ["IncidentPoster"]

log = logging.getLogger(__name__)


class IncidentPoster:
    """A desk listener that posts and updates incident messages."""

    def __init__(self, settings: Settings, store: IncidentStore, *, client: WebClient | None = None,
                 mention: Callable[[str], str] = escape) -> None:  # fmt: skip
        slack = settings.slack
        self.channel = slack.alerts_channel or ""
        self.alerts = settings.alerts
        token = slack.bot_token.get_secret_value() if slack.bot_token else None
        self.client = client or WebClient(token=token, base_url=slack.api_base_url, timeout=10)
        self.enabled = bool(token and self.channel)
        self.store = store
        self.mention = mention
        self.posted = 0  # messages posted by this process (metrics)

    def __call__(self, events: list[DeskEvent]) -> None:
        """Tell Slack about a batch of incident changes: each message posted or updated once per batch."""
        if not self.enabled:
            return
        posted: set[str] = set()
        stale: dict[str, None] = {}  # messages to bring up to date, in order
        for event in events:
            try:
                self._one(event, posted, stale)
            except SlackClientError:
                log.warning("could not tell Slack about %s (%s)", event.incident.id, event.kind, exc_info=True)
        for key in stale:
            if key in posted:
                continue  # posted in this batch, from the store as it is now
            try:
                self._update(key)
            except SlackClientError:
                log.warning("could not update the Slack message of %s", key, exc_info=True)

    # --- keys and rendering -------------------------------------------------------------------------------
    @staticmethod
    def key(incident: Incident) -> str:
        """The message an incident belongs to: its alert group's, else its own."""
        return incident.group or incident.id

    def _render(self, key: str) -> tuple[str, list[dict[str, Any]]]:
        if key.startswith("digest:"):
            members = []
            for member in self.store.digest_members(key):  # an incident's own key, or an alert group's
                members += [self.store.get(member)] if member.startswith("inc_") else self.store.in_group(member)
            return f"{len(members)} incidents", digest_blocks(members, self.alerts.repeat_window_s)
        if key.startswith("inc_"):
            incident = self.store.get(key)
            return incident_text(incident), incident_blocks(incident)
        members = self.store.in_group(key)
        active = [i for i in members if i.active]
        text = f"{len(active)} alerts firing: {members[0].kind}" if members else key
        return text, group_blocks(key, members)

    # --- posting ------------------------------------------------------------------------------------------
    def _post(self, key: str) -> None:
        text, blocks = self._render(key)
        try:
            answer = self.client.chat_postMessage(channel=self.channel, text=truncate(text, 3000), blocks=blocks)
        except SlackClientError:
            self.store.release_thread(key)  # a later change may try again
            raise
        self.store.set_thread(key, channel=str(answer.get("channel") or self.channel), ts=str(answer["ts"]))
        self.posted += 1

    def _update(self, key: str) -> bool:
        where = self.store.thread(key)
        if where is None:
            return False
        text, blocks = self._render(key)
        self.client.chat_update(channel=where[0], ts=where[1], text=truncate(text, 3000), blocks=blocks)
        return True

    def _reply(self, key: str, text: str) -> None:
        where = self.store.thread(key)
        if where is not None:
            self.client.chat_postMessage(channel=where[0], thread_ts=where[1], text=truncate(text, 3900))

    def _message_of(self, incident: Incident) -> str:
        """The key of the message showing ``incident`` (its own, its group's, or the digest it was folded into)."""
        key = self.key(incident)
        return self.store.digest_of(key) or key

    def _open(self, incident: Incident, posted: set[str]) -> str | None:
        """Post the incident's message, or fold it into a digest; the key of a message to update, if any."""
        key = self.key(incident)
        if self.store.thread(key) is not None or self.store.digest_of(key):
            return self._message_of(incident)
        now = time.time()
        window = self.alerts.repeat_window_s
        if self.store.threads_since(now - window) >= self.alerts.max_new_messages:
            digest = f"digest:{int(now // window)}"
            if not self.store.join_digest(key, digest):
                return self._message_of(incident)
            key = digest
            if self.store.thread(key) is not None:
                return key
        if self.store.claim_thread(key):
            self._post(key)
            posted.add(key)
            return None
        return key  # another replica's message: brought up to date once it is posted

    def _one(self, event: DeskEvent, posted: set[str], stale: dict[str, None]) -> None:
        incident = event.incident
        if event.kind == "opened":
            key = self._open(incident, posted)
            if key is not None:
                stale[key] = None
            return
        message = self._message_of(incident)
        stale[message] = None
        own = message.startswith("inc_")  # a group's or a digest's message shows its members' states itself
        if event.kind == "acknowledged" and own:
            self._reply(message, f":eyes: {incident.id} acknowledged by {self.mention(event.by)}")
        elif event.kind == "resolved" and own:
            who = self.mention(event.by) if event.by != "labops" else "LabOps"
            reason = escape(incident.resolution or "")
            self._reply(message, f":white_check_mark: {incident.id} resolved by {who}: {reason}")
        elif event.kind == "fixed" and event.result is not None:
            title = f"{incident.id}: fix by {event.by}"
            self._reply(message, result_text(title, event.result))
