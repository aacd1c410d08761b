"""Alertmanager's webhook payload (version 4) and the observations it carries.

Each alert is one problem, known by Alertmanager's own ``fingerprint`` (stable per label set): a re-sent group
updates its incidents instead of opening new ones, and ``status: resolved`` resolves them. Labels whose names
are tool arguments (``vmid``, ``node``, ``job_id``, ``store``) become the incident's subject, so its
investigation reads the right things; a ``labops_problem`` label (``backup:failed``) names the problem a fix
remedies. Both are conventions of this project for the lab's alert rules (deploy/alertmanager).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.incidents import Observation, Severity

__all__ = ["Alert", "WebhookPayload", "observations", "resolved_fingerprints"]

_SEVERITIES: dict[str, Severity] = {
    "critical": "critical",
    "page": "critical",
    "error": "critical",
    "warning": "warning",
    "warn": "warning",
    "info": "info",
    "none": "info",
}
# Labels that name what the alert is about, as tool arguments take them.
_SUBJECT_LABELS = {"vmid": int, "node": str, "job_id": str, "store": str, "datastore": str}


class Alert(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1, max_length=128)

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname"):
            raise ValueError("every alert has an alertname label")
        return labels


class WebhookPayload(BaseModel):
    """A notification of one alert group."""

    model_config = ConfigDict(extra="allow")

    version: str
    groupKey: str = Field(min_length=1, max_length=2000)
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert] = Field(max_length=5000)

    @field_validator("version")
    @classmethod
    def _version_4(cls, version: str) -> str:
        if version != "4":
            raise ValueError(f"only version 4 payloads are understood (got {version!r})")
        return version


def _epoch(text: str) -> float | None:
    if not text or text.startswith("0001-"):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _subject(labels: dict[str, str]) -> dict[str, Any]:
    subject: dict[str, Any] = {}
    for name, kind in _SUBJECT_LABELS.items():
        value = labels.get(name)
        if value is None:
            continue
        if kind is int:
            if value.isdigit():
                subject[name] = int(value)
        else:
            subject["store" if name == "datastore" else name] = value
    return subject


def observations(payload: WebhookPayload) -> list[Observation]:
    """The firing alerts as observations (resolved ones: :func:`resolved_fingerprints`)."""
    out = []
    for alert in payload.alerts:
        if alert.status != "firing":
            continue
        labels = alert.labels
        name = labels["alertname"]
        where = labels.get("instance") or labels.get("node") or labels.get("vmid") or ""
        summary = alert.annotations.get("summary") or f"{name}" + (f" on {where}" if where else "")
        problem = labels.get("labops_problem")
        out.append(
            Observation(
                fingerprint=f"am:{alert.fingerprint}",
                source="alertmanager",
                kind=name,
                title=summary[:300],
                severity=_SEVERITIES.get(labels.get("severity", "").lower(), "warning"),
                detail=(alert.annotations.get("description") or "")[:2000],
                problems=[problem] if problem else [],
                subject=_subject(labels),
                group=f"am:{payload.groupKey}",
                labels={k: v[:300] for k, v in list(labels.items())[:50]},
                runbook_url=alert.annotations.get("runbook_url"),
                started=_epoch(alert.startsAt),
            )
        )
    return out


def resolved_fingerprints(payload: WebhookPayload) -> list[str]:
    """The fingerprints of the alerts this notification says have resolved."""
    return [f"am:{a.fingerprint}" for a in payload.alerts if a.status == "resolved"]
