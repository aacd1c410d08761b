"""The incident desk: observations in, incidents opened, updated and resolved, investigated, announced, fixed.

Everything that changes an incident goes through here, and here only, so every change is in the audit log:
opened, changed, resolved (by a watcher or Alertmanager, or by hand), acknowledged, a fix clicked. Listeners
(the Slack poster) are told of each batch of changes after the store has them; a listener that fails is
logged and changes nothing.

A fix is a guarded call with the exact arguments stored on the incident when it was investigated; whoever
clicks it makes the call as themselves, so policy decides (an approval when it wants one, four eyes where it
says so) and the refusal of someone not allowed is audited like any other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.incidents.alertmanager import WebhookPayload, observations, resolved_fingerprints
from agent.incidents.investigate import fixes_for, investigate
from agent.incidents.watchers import WATCHERS, Watcher, WatchFailed, watcher_caller
from core.config import Settings
from core.errors import BackendUnavailable, ConfigError, InvalidArguments, ToolError
from core.incidents import Incident, IncidentStore, Observation
from knowledge.service import DocsService
from policies.guard import Caller, Guard
from tools.base import Tool, ToolResult

__all__ = ["CycleReport", "DeskEvent", "IncidentDesk"]

log = logging.getLogger(__name__)

EventKind = Literal["opened", "changed", "resolved", "acknowledged", "fixed"]


@dataclass(kw_only=True, frozen=True)
class DeskEvent:
    """One change to one incident, for listeners."""

    kind: EventKind
    incident: Incident
    by: str = "labops"
    result: ToolResult | None = None  # a fix's result


@dataclass(kw_only=True, frozen=True)
class CycleReport:
    """What one watcher cycle did."""

    watcher: str
    ok: bool
    error: str | None = None
    opened: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    seen: int = 0


@dataclass(kw_only=True)
class IncidentDesk:
    """Turns observations into incidents and incidents into investigations and fixes."""

    settings: Settings
    store: IncidentStore
    guard: Guard
    tools: list[Tool[Any]]
    docs: DocsService | None = None
    listeners: list[Callable[[list[DeskEvent]], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: Settings, *, guard: Guard, tools: list[Tool[Any]],
              docs: DocsService | None) -> IncidentDesk:  # fmt: skip
        """A desk over the settings' store."""
        return cls(settings=settings, store=IncidentStore.from_settings(settings), guard=guard, tools=tools, docs=docs)

    # --- telling ------------------------------------------------------------------------------------------
    def _announce(self, events: list[DeskEvent]) -> None:
        if not events:
            return
        for listener in list(self.listeners):
            try:
                listener(events)
            except Exception:  # boundary: a failing listener (Slack down) must not undo what the store has
                log.exception("an incident listener failed on %d events", len(events))

    def _audit(self, event: str, incident: Incident, *, caller: Caller | None = None, **fields: Any) -> None:
        who = caller or Caller(user=self.settings.alerts.watcher_user, channel="watcher", request_text=None)
        self.guard.note(who, event, tool="(incident)", args={"incident": incident.id},
                        incident=incident.id, fingerprint=incident.fingerprint, title=incident.title,
                        severity=incident.severity, state=incident.state, **fields)  # fmt: skip

    # --- observing ----------------------------------------------------------------------------------------
    def _investigate(self, incident: Incident) -> Incident:
        alerts = self.settings.alerts
        caller = watcher_caller(self.settings, f"investigation of {incident.id}")
        try:
            found = investigate(incident, guard=self.guard, caller=caller, tools=self.tools, docs=self.docs,
                                steps=alerts.investigation_steps, timeout_s=alerts.investigation_timeout_s)  # fmt: skip
        except (ToolError, BackendUnavailable, ConfigError) as exc:
            log.warning("investigating %s failed: %s", incident.id, exc)
            return incident
        return self.store.annotate(incident.id, investigation=found.as_dict(), fixes=fixes_for(incident, self.tools))

    def observe(
        self, found: list[Observation], *, clear: tuple[str, set[str]] | None = None, caller: Caller | None = None
    ) -> list[DeskEvent]:
        """Record what was observed; with ``clear=(source, kinds)``, resolve what those kinds no longer show."""
        events: list[DeskEvent] = []
        with self._lock:
            for observation in found:
                observed = self.store.observe(observation)
                incident = observed.incident
                if observed.change == "seen":
                    continue
                self._audit(f"incident_{observed.change}", incident, caller=caller)
                incident = self._investigate(incident)
                events.append(DeskEvent(kind=observed.change, incident=incident))
            if clear is not None:
                source, kinds = clear
                present = {o.fingerprint for o in found}
                reason = "the check no longer finds it" if source == "watcher" else "cleared"
                cleared = self.store.clear(source=source, kinds=kinds, present=present, reason=reason)  # type: ignore[arg-type]
                for incident in cleared:
                    self._audit("incident_resolved", incident, caller=caller, reason=reason)
                    events.append(DeskEvent(kind="resolved", incident=incident))
        self._announce(events)
        return events

    def run_watcher(self, watcher: Watcher) -> CycleReport:
        """One check of one watcher, its findings recorded and what cleared resolved."""
        caller = watcher_caller(self.settings, watcher.name)
        try:
            found = watcher.check(self.guard, caller, self.settings, self.store)
        except (WatchFailed, ToolError, BackendUnavailable, ConfigError) as exc:
            log.warning("watcher %s could not check: %s", watcher.name, exc)
            return CycleReport(watcher=watcher.name, ok=False, error=str(exc))
        events = self.observe(found, clear=("watcher", {watcher.kind}), caller=caller)
        return CycleReport(
            watcher=watcher.name,
            ok=True,
            opened=[e.incident.id for e in events if e.kind == "opened"],
            changed=[e.incident.id for e in events if e.kind == "changed"],
            resolved=[e.incident.id for e in events if e.kind == "resolved"],
            seen=len(found),
        )

    def run_cycle(self, names: list[str] | None = None) -> list[CycleReport]:
        """Every enabled watcher once (or the named ones, enabled or not)."""
        settings = self.settings.alerts.watchers
        chosen = [w for w in WATCHERS if (w.name in names if names else getattr(settings, w.name).enabled)]
        unknown = set(names or []) - {w.name for w in WATCHERS}
        if unknown:
            raise InvalidArguments(
                f"no watcher {', '.join(sorted(unknown))}; the watchers are: {', '.join(w.name for w in WATCHERS)}"
            )
        return [self.run_watcher(w) for w in chosen]

    def alert(self, payload: WebhookPayload, *, caller: Caller) -> list[DeskEvent]:
        """One Alertmanager notification: firing alerts observed, resolved ones resolved."""
        events = self.observe(observations(payload), caller=caller)
        resolved: list[DeskEvent] = []
        with self._lock:
            reason = "Alertmanager sent resolved"
            for fingerprint in resolved_fingerprints(payload):
                incident = self.store.resolve_fingerprint(fingerprint, reason=reason, by="alertmanager")
                if incident is not None:
                    self._audit("incident_resolved", incident, caller=caller, reason=reason)
                    resolved.append(DeskEvent(kind="resolved", incident=incident))
        self._announce(resolved)
        return events + resolved

    # --- people -------------------------------------------------------------------------------------------
    def decide(self, ref: str, verb: Literal["acknowledge", "resolve"], *, caller: Caller,
               reason: str = "") -> ToolResult:  # fmt: skip
        """Acknowledge or resolve an incident by hand, if policy lets ``caller``."""
        try:
            incident = self.store.get(ref)
        except InvalidArguments as exc:
            return ToolResult.error(str(exc))
        decision = self.guard.action(f"incident.{verb}", {"incident": incident.id, "reason": reason}, caller=caller)
        if decision.decision != "allow":
            return ToolResult(status="denied", message="; ".join(decision.reasons), data=decision.as_dict())
        try:
            done = self.store.transition(incident.id, "acknowledged" if verb == "acknowledge" else "resolved",
                                         by=caller.user, reason=reason)  # fmt: skip
        except InvalidArguments as exc:
            return ToolResult.error(str(exc))
        kind: EventKind = "acknowledged" if verb == "acknowledge" else "resolved"
        self._audit(f"incident_{kind}", done, caller=caller, reason=reason or None)
        self._announce([DeskEvent(kind=kind, incident=done, by=caller.user)])
        return ToolResult.ok(f"{done.id} {kind} by {caller.user}: {done.title}", data=done.model_dump(mode="json"))

    def fix(self, ref: str, fix_id: str, *, caller: Caller) -> ToolResult:
        """Make one of an incident's fixes as ``caller``: the stored call, through the guard."""
        try:
            incident = self.store.get(ref)
        except InvalidArguments as exc:
            return ToolResult.error(str(exc))
        chosen = next((f for f in incident.fixes if f.id == fix_id), None)
        if chosen is None:
            offered = ", ".join(f.id for f in incident.fixes) or "none"
            return ToolResult.error(f"{incident.id} offers no fix {fix_id!r} (it offers: {offered})")
        if not incident.active:
            return ToolResult.error(f"{incident.id} is resolved ({incident.resolution}); nothing to fix")
        started = time.monotonic()
        # The request key makes a double click (or Slack's retry) one call: the same key returns the first result.
        key = f"incident-{incident.id}-{chosen.id}-{caller.user}"
        result = self.guard.call(chosen.tool, dict(chosen.args), caller=caller, call_id=key)
        self._audit("incident_fix", incident, caller=caller, fix=chosen.id, call=chosen.tool, status=result.status,
                    seconds=round(time.monotonic() - started, 3))  # fmt: skip
        if result.status != "denied":  # a refusal is the clicker's business (and in the audit log), not the thread's
            self._announce([DeskEvent(kind="fixed", incident=incident, by=caller.user, result=result)])
        return result
