"""Incidents: one record per problem, in the shared store, so every replica sees the same ones.

A problem is known by its fingerprint (a watcher's ``backup:vm:132``, an Alertmanager alert's own
fingerprint). :meth:`IncidentStore.observe` opens an incident for a fingerprint no open incident has, and
otherwise updates that incident: a problem seen again never opens a second one. While an incident is open its
fingerprint sits in the unique ``open_key`` column; resolving clears it, so the same problem coming back later
opens a new incident. Every write runs in one transaction holding the table's lock, so two replicas observing
the same problem at once make one incident between them.

Slack threads are claimed the same way (:meth:`IncidentStore.claim_thread`): the replica whose insert wins posts
the message; the other sees the claim and posts nothing.
"""

from __future__ import annotations

import builtins
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.config import Settings
from core.errors import InvalidArguments
from core.store import Database, Session

__all__ = ["Change", "Fix", "Incident", "IncidentStore", "Observation", "Observed", "Severity", "State", "as_json"]

Severity = Literal["critical", "warning", "info"]
State = Literal["open", "acknowledged", "resolved"]
Source = Literal["watcher", "alertmanager"]
SEVERITY_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
_REF = re.compile(r"inc_[0-9a-f]{2,12}")
DIGEST = "digest"  # the channel column of a thread row folded into a digest message (its ts: the digest's key)


class Observation(BaseModel):
    """What a check or an alert says about one problem now."""

    fingerprint: str = Field(min_length=1, max_length=300)
    source: Source
    kind: str = Field(description="The check or the alert name: backup, node, ray, datastore, or an alertname.")
    title: str
    severity: Severity = "warning"
    detail: str = ""
    problems: list[str] = Field(default_factory=list, description="'<kind>:<problem>' (backup:failed), for fixes.")
    subject: dict[str, Any] = Field(default_factory=dict, description="What it is about: vmid, node, job_id, ...")
    group: str | None = Field(None, description="Alerts of one group share one Slack message (Alertmanager's key).")
    labels: dict[str, str] = Field(default_factory=dict)
    runbook_url: str | None = None
    started: float | None = None


class Fix(BaseModel):
    """A next step one click away: a guarded tool call with its exact arguments."""

    id: str
    label: str
    tool: str
    args: dict[str, Any]
    summary: str


class Incident(Observation):
    """An observed problem with its lifecycle."""

    id: str
    state: State = "open"
    opened: float
    updated: float
    last_seen: float
    seen: int = 1
    resolved_at: float | None = None
    acked_by: str | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    investigation: dict[str, Any] | None = None
    fixes: list[Fix] = Field(default_factory=list)

    @property
    def active(self) -> bool:
        """Open or acknowledged."""
        return self.state != "resolved"

    def line(self) -> str:
        """One line for people."""
        return f"{self.id} [{self.state}] {self.severity}: {self.title}"


Change = Literal["opened", "changed", "seen"]


@dataclass(kw_only=True, frozen=True)
class Observed:
    """What observing did: the incident as it is now, and whether it was opened, changed, or only seen again."""

    incident: Incident
    change: Change


def _material(old: Incident, new: Observation) -> bool:
    # What a person would want told again. The detail alone (an age growing by the hour) is updated quietly.
    return (old.severity, old.title, sorted(old.problems)) != (new.severity, new.title, sorted(new.problems))


class IncidentStore:
    """Incidents and their Slack threads in the store (SQLite, or PostgreSQL shared by replicas)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def from_settings(cls, settings: Settings) -> IncidentStore:
        """The store of ``audit.database_url`` (or the lab directory's SQLite file)."""
        return cls(Database.from_settings(settings))

    # --- reading ------------------------------------------------------------------------------------------
    @staticmethod
    def _load(row: Any) -> Incident:
        return Incident.model_validate_json(row[0])

    def get(self, ref: str) -> Incident:
        """The incident ``ref`` names (its id, or a unique prefix of it); InvalidArguments otherwise."""
        ref = ref.strip()
        if not _REF.fullmatch(ref):
            raise InvalidArguments(f"{ref!r} is not an incident id (inc_…): `labops incidents list` shows them")
        self.db.ensure_schema()
        with self.db.session() as s:
            rows = s.execute("SELECT data FROM incidents WHERE id LIKE ? ORDER BY opened", (ref + "%",)).fetchall()
        if not rows:
            raise InvalidArguments(f"no incident {ref}: `labops incidents list --all` shows every incident")
        if len(rows) > 1:
            raise InvalidArguments(f"{ref} matches {len(rows)} incidents: give more of the id")
        return self._load(rows[0])

    def find(self, *, state: Literal["active", "all"] | State = "active", limit: int = 200) -> list[Incident]:
        """Incidents, worst and newest first (``active``: open or acknowledged)."""
        self.db.ensure_schema()
        with self.db.session() as s:
            if state == "all":
                rows = s.execute("SELECT data FROM incidents ORDER BY updated DESC LIMIT ?", (limit,)).fetchall()
            elif state == "active":
                rows = s.execute(
                    "SELECT data FROM incidents WHERE state <> 'resolved' ORDER BY updated DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = s.execute(
                    "SELECT data FROM incidents WHERE state = ? ORDER BY updated DESC LIMIT ?", (state, limit)
                ).fetchall()
        found = [self._load(r) for r in rows]
        return sorted(found, key=lambda i: (i.state == "resolved", SEVERITY_ORDER[i.severity], -i.opened))

    def counts(self) -> dict[str, int]:
        """How many incidents are in each state."""
        self.db.ensure_schema()
        with self.db.session() as s:
            rows = s.execute("SELECT state, count(*) FROM incidents GROUP BY state").fetchall()
        return {str(state): int(n) for state, n in rows}

    # --- writing ------------------------------------------------------------------------------------------
    def _save(self, s: Session, incident: Incident) -> None:
        open_key = incident.fingerprint if incident.active else None
        s.execute(
            "UPDATE incidents SET open_key = ?, state = ?, updated = ?, data = ? WHERE id = ?",
            (open_key, incident.state, incident.updated, incident.model_dump_json(), incident.id),
        )

    def observe(self, observation: Observation, *, now: float | None = None) -> Observed:
        """Open an incident for the problem, or update the open one with its fingerprint."""
        now = time.time() if now is None else now
        with self.db.transaction(lock="incidents") as s:
            row = s.execute("SELECT data FROM incidents WHERE open_key = ?", (observation.fingerprint,)).fetchone()
            if row is None:
                incident = Incident(
                    **observation.model_dump(), id=f"inc_{secrets.token_hex(6)}", opened=now, updated=now, last_seen=now
                )
                s.execute(
                    "INSERT INTO incidents (id, open_key, fingerprint, state, grp, opened, updated, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (incident.id, incident.fingerprint, incident.fingerprint, incident.state, incident.group, now, now,
                     incident.model_dump_json()),
                )  # fmt: skip
                return Observed(incident=incident, change="opened")
            old = self._load(row)
            material = _material(old, observation)
            fields = observation.model_dump(exclude={"fingerprint", "source", "started"})
            incident = old.model_copy(update={**fields, "last_seen": now, "seen": old.seen + 1})
            if material:
                incident = incident.model_copy(update={"updated": now})
            self._save(s, incident)
            return Observed(incident=incident, change="changed" if material else "seen")

    def clear(self, *, source: Source, kinds: set[str], present: set[str], reason: str,
              now: float | None = None) -> list[Incident]:  # fmt: skip
        """Resolve the active incidents of ``source`` and ``kinds`` whose fingerprint is not in ``present``.

        A watcher calls it after a complete check: what it no longer sees has cleared.
        """
        now = time.time() if now is None else now
        resolved: list[Incident] = []
        with self.db.transaction(lock="incidents") as s:
            rows = s.execute("SELECT data FROM incidents WHERE state <> 'resolved'").fetchall()
            for row in rows:
                incident = self._load(row)
                if incident.source != source or incident.kind not in kinds or incident.fingerprint in present:
                    continue
                incident = incident.model_copy(
                    update={"state": "resolved", "resolved_at": now, "updated": now, "resolved_by": "labops",
                            "resolution": reason}
                )  # fmt: skip
                self._save(s, incident)
                resolved.append(incident)
        return resolved

    def resolve_fingerprint(self, fingerprint: str, *, reason: str, by: str = "labops",
                            now: float | None = None) -> Incident | None:  # fmt: skip
        """Resolve the open incident with this fingerprint (Alertmanager's ``resolved``); None if none is open."""
        now = time.time() if now is None else now
        with self.db.transaction(lock="incidents") as s:
            row = s.execute("SELECT data FROM incidents WHERE open_key = ?", (fingerprint,)).fetchone()
            if row is None:
                return None
            incident = self._load(row).model_copy(
                update={"state": "resolved", "resolved_at": now, "updated": now, "resolved_by": by,
                        "resolution": reason}
            )  # fmt: skip
            self._save(s, incident)
            return incident

    def transition(self, ref: str, to: Literal["acknowledged", "resolved"], *, by: str, reason: str = "",
                   now: float | None = None) -> Incident:  # fmt: skip
        """Acknowledge or resolve an incident by hand; InvalidArguments when it cannot go there."""
        now = time.time() if now is None else now
        target = self.get(ref)
        with self.db.transaction(lock="incidents") as s:
            row = s.execute("SELECT data FROM incidents WHERE id = ?", (target.id,)).fetchone()
            incident = self._load(row)
            if incident.state == "resolved":
                raise InvalidArguments(f"{incident.id} is already resolved ({incident.resolution or 'no reason'})")
            if to == "acknowledged" and incident.state == "acknowledged":
                raise InvalidArguments(f"{incident.id} was already acknowledged by {incident.acked_by}")
            update: dict[str, Any] = {"state": to, "updated": now}
            if to == "acknowledged":
                update["acked_by"] = by
            else:
                update.update(resolved_at=now, resolved_by=by, resolution=reason or f"resolved by {by}")
            incident = incident.model_copy(update=update)
            self._save(s, incident)
            return incident

    def annotate(self, incident_id: str, *, investigation: dict[str, Any], fixes: list[Fix]) -> Incident:
        """Store an incident's investigation and the fixes it offers."""
        with self.db.transaction(lock="incidents") as s:
            row = s.execute("SELECT data FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                raise InvalidArguments(f"no incident {incident_id}")
            incident = self._load(row).model_copy(update={"investigation": investigation, "fixes": fixes})
            self._save(s, incident)
            return incident

    # --- Slack threads ------------------------------------------------------------------------------------
    def claim_thread(self, key: str, *, now: float | None = None) -> bool:
        """Claim the right to post the message of ``key`` (an incident id or an alert group); True once only."""
        now = time.time() if now is None else now
        with self.db.transaction(lock="incident_threads") as s:
            if s.execute("SELECT key FROM incident_threads WHERE key = ?", (key,)).fetchone() is not None:
                return False
            s.execute("INSERT INTO incident_threads (key, claimed) VALUES (?, ?)", (key, now))
            return True

    def set_thread(self, key: str, *, channel: str, ts: str) -> None:
        """Remember where the message of ``key`` was posted."""
        with self.db.transaction() as s:
            s.execute("UPDATE incident_threads SET channel = ?, ts = ? WHERE key = ?", (channel, ts, key))

    def release_thread(self, key: str) -> None:
        """Give a claim back (the post failed), so a later attempt may post."""
        with self.db.transaction() as s:
            s.execute("DELETE FROM incident_threads WHERE key = ? AND ts IS NULL", (key,))

    def thread(self, key: str) -> tuple[str, str] | None:
        """``(channel, ts)`` of the message of ``key``, once posted (None for a digest's member)."""
        self.db.ensure_schema()
        with self.db.session() as s:
            row = s.execute("SELECT channel, ts FROM incident_threads WHERE key = ?", (key,)).fetchone()
        if row is None or row[1] is None or row[0] == DIGEST:
            return None
        return str(row[0]), str(row[1])

    def threads_since(self, since: float) -> int:
        """How many messages were claimed since ``since`` (flood control; a digest's members are not messages)."""
        self.db.ensure_schema()
        with self.db.session() as s:
            row = s.execute(
                "SELECT count(*) FROM incident_threads WHERE claimed >= ? AND (channel IS NULL OR channel <> ?)",
                (since, DIGEST),
            ).fetchone()
        return int(row[0]) if row else 0

    def join_digest(self, key: str, digest: str, *, now: float | None = None) -> bool:
        """Fold the message of ``key`` into the digest message ``digest``; False if ``key`` has a message already."""
        now = time.time() if now is None else now
        with self.db.transaction(lock="incident_threads") as s:
            if s.execute("SELECT key FROM incident_threads WHERE key = ?", (key,)).fetchone() is not None:
                return False
            s.execute("INSERT INTO incident_threads (key, channel, ts, claimed) VALUES (?, ?, ?, ?)",
                      (key, DIGEST, digest, now))  # fmt: skip
            return True

    def digest_of(self, key: str) -> str | None:
        """The digest message ``key`` was folded into, if it was."""
        self.db.ensure_schema()
        with self.db.session() as s:
            row = s.execute("SELECT ts FROM incident_threads WHERE key = ? AND channel = ?", (key, DIGEST)).fetchone()
        return str(row[0]) if row is not None else None

    def digest_members(self, digest: str) -> list[str]:
        """The keys folded into the digest message ``digest``."""
        self.db.ensure_schema()
        with self.db.session() as s:
            rows = s.execute("SELECT key FROM incident_threads WHERE channel = ? AND ts = ? ORDER BY claimed",
                             (DIGEST, digest)).fetchall()  # fmt: skip
        return [str(r[0]) for r in rows]

    def in_group(self, group: str) -> builtins.list[Incident]:
        """Every incident of one alert group (its message lists them)."""
        self.db.ensure_schema()
        with self.db.session() as s:
            rows = s.execute("SELECT data FROM incidents WHERE grp = ? ORDER BY opened", (group,)).fetchall()
        return [self._load(r) for r in rows]

    # --- what watchers remember between cycles ------------------------------------------------------------
    def recall(self, name: str) -> dict[str, Any]:
        """What watcher ``name`` stored last ({} at first)."""
        self.db.ensure_schema()
        with self.db.session() as s:
            row = s.execute("SELECT data FROM watcher_state WHERE name = ?", (name,)).fetchone()
        return dict(json.loads(row[0])) if row is not None else {}

    def remember(self, name: str, data: dict[str, Any], *, now: float | None = None) -> None:
        """Store what watcher ``name`` needs next time (one row per watcher, replaced)."""
        now = time.time() if now is None else now
        with self.db.transaction(lock="watcher_state") as s:
            s.execute("DELETE FROM watcher_state WHERE name = ?", (name,))
            s.execute("INSERT INTO watcher_state (name, data, updated) VALUES (?, ?, ?)", (name, json.dumps(data), now))


def as_json(incident: Incident) -> dict[str, Any]:
    """An incident as JSON-safe data (CLI ``--json``, the tool's result)."""
    return json.loads(incident.model_dump_json())
