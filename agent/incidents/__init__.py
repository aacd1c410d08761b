"""Incidents: watchers and Alertmanager's alerts in, investigated incidents and one-click guarded fixes out."""

from __future__ import annotations

from agent.incidents.desk import CycleReport, DeskEvent, IncidentDesk

__all__ = ["CycleReport", "DeskEvent", "IncidentDesk"]
