"""Prometheus metrics of ``labops serve`` (``/metrics``), in a registry of the app's own.

Requests and latency by route, agent turns and their latency, model calls and tokens, tool calls by tool and
outcome, turns refused because the queue was full, housekeeping answers, incident changes, Alertmanager
notifications and watcher checks, and approvals pending and incidents by state (read from the store at scrape
time, so every replica reports the shared number).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Metrics"]

log = logging.getLogger(__name__)

_TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class _Pending(Collector):
    """``labops_approvals_pending``, counted when scraped."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("labops_approvals_pending", "Approval requests waiting for a decision.")
        try:
            family.add_metric([], float(self.count()))
        except Exception:  # a scrape must not fail because the store is down; readyz reports that
            log.warning("cannot count pending approvals", exc_info=True)
            family.add_metric([], float("nan"))
        yield family


class _Incidents(Collector):
    """``labops_incidents{state}``, counted in the shared store when scraped."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("labops_incidents", "Incidents by state (open, acknowledged, resolved).",
                                   labels=["state"])  # fmt: skip
        try:
            counts = self.counts()
        except Exception:  # a scrape must not fail because the store is down; readyz reports that
            log.warning("cannot count incidents", exc_info=True)
            counts = {}
        for state in ("open", "acknowledged", "resolved"):
            family.add_metric([state], float(counts.get(state, 0)))
        yield family


class Metrics:
    """Every metric of the service."""

    def __init__(
        self,
        *,
        pending_approvals: Callable[[], int] | None = None,
        incidents: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("labops_http_requests", "HTTP requests by route and status.",
                                ["route", "method", "status"], registry=r)  # fmt: skip
        self.latency = Histogram("labops_http_request_seconds", "HTTP request latency by route.",
                                 ["route", "method"], registry=r)  # fmt: skip
        self.turns = Counter("labops_agent_turns", "Agent turns by channel and status.", ["channel", "status"],
                             registry=r)  # fmt: skip
        self.turn_latency = Histogram("labops_agent_turn_seconds", "Agent turn latency (model and tools).",
                                      ["channel"], buckets=_TURN_BUCKETS, registry=r)  # fmt: skip
        self.model_calls = Counter("labops_model_calls", "Chat model calls.", registry=r)
        self.model_tokens = Counter("labops_model_tokens", "Tokens the chat model read and wrote.", registry=r)
        self.tool_calls = Counter("labops_tool_calls", "Tool calls by tool and outcome.", ["tool", "outcome"],
                                  registry=r)  # fmt: skip
        self.rejected = Counter("labops_turns_rejected", "Turns refused with 429 because the queue was full.",
                                registry=r)  # fmt: skip
        self.housekeeping = Counter("labops_housekeeping_answers",
                                    "Front-end background tasks (titles, tags, follow-ups) answered without the model.",
                                    registry=r)  # fmt: skip
        self.queue = Gauge("labops_turns_admitted", "Agent turns running or waiting.", registry=r)
        self.incident_changes = Counter("labops_incident_changes", "Incident changes this process made, by kind.",
                                        ["kind"], registry=r)  # fmt: skip
        self.alerts_received = Counter("labops_alertmanager_notifications", "Alertmanager notifications by outcome.",
                                       ["outcome"], registry=r)  # fmt: skip
        self.watcher_cycles = Counter("labops_watcher_cycles", "Watcher checks by watcher and outcome.",
                                      ["watcher", "outcome"], registry=r)  # fmt: skip
        if pending_approvals is not None:
            r.register(_Pending(pending_approvals))
        if incidents is not None:
            r.register(_Incidents(incidents))

    def observe_turn(self, result: Any, *, channel: str) -> None:
        """Count one finished agent turn (a :class:`agent.runtime.TurnResult`)."""
        self.turns.labels(channel, result.status).inc()
        self.turn_latency.labels(channel).observe(float(result.latency_s))
        self.model_calls.inc(int(result.model_calls))
        self.model_tokens.inc(int(result.tokens))
        for call in result.tool_calls:
            self.tool_call(str(call.get("name")), str(call.get("status")))

    def tool_call(self, tool: str, outcome: str) -> None:
        """Count one tool call by its envelope status."""
        self.tool_calls.labels(tool, outcome).inc()
