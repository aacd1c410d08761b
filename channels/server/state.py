"""What one ``labops serve`` process holds: settings, the agent, keys, chats, the turn gate and metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.runtime import Agent
from agent.services import Services, build_services
from channels.server.admission import TurnGate
from channels.server.chats import ChatStore
from channels.server.metrics import Metrics
from core.config import Settings
from policies.apikeys import ApiKeys
from policies.guard import Caller
from tools.base import ToolResult

__all__ = ["ServerState"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class ServerState:
    """The service's parts; channels reach them through ``app.state.labops``."""

    settings: Settings
    services: Services
    agent: Agent
    keys: ApiKeys
    chats: ChatStore
    gate: TurnGate
    metrics: Metrics
    # Called with every approval event a turn yields (the Slack bot posts it to the approvals channel).
    approval_listeners: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, *, agent: Agent | None = None) -> ServerState:
        """Open the stores and the agent (the model server is not contacted until the first turn)."""
        services = build_services(settings)
        agent = agent or services.agent
        db = services.store
        approvals = agent.guard.approvals
        assert approvals is not None

        def pending() -> int:
            return len(approvals.list(state="pending"))

        return cls(
            settings=settings,
            services=services,
            agent=agent,
            keys=ApiKeys(db),
            chats=ChatStore(db),
            gate=TurnGate(running=settings.server.max_concurrent_turns, queued=settings.server.max_queued_turns),
            metrics=Metrics(pending_approvals=pending, incidents=lambda: services.incidents.store.counts()),
        )

    def known_user(self, name: str) -> bool:
        """Whether ``name`` is a lab user (``policies/lab.toml``)."""
        engine = self.agent.guard.engine
        return engine is not None and name in engine.directory.users

    def approval_requested(self, event: dict[str, Any]) -> None:
        """Tell every listener about an approval a turn asked for; a failing listener is logged, not raised."""
        for listener in self.approval_listeners:
            try:
                listener(event)
            except Exception:  # a notification must never break the turn that asked
                log.exception("approval listener failed for %s", event.get("approval_id"))

    def result_needs_approval(self, caller: Caller, tool: str, result: ToolResult) -> None:
        """Announce the approval a call outside a chat asked for (MCP, a Slack button), like one from a chat."""
        if result.status != "needs_approval" or not isinstance(result.data, dict):
            return
        approval = result.data.get("approval") or {}
        self.approval_requested({
            "approval_id": approval.get("id"), "summary": approval.get("summary"), "tool": tool,
            "args": approval.get("args"), "expires": approval.get("expires"), "plan": result.data.get("plan"),
            "approvers": result.data.get("approvers"), "role": approval.get("role"), "requester": caller.user,
            "channel": caller.channel,
        })  # fmt: skip

    def close(self) -> None:
        """Release the agent's model client, checkpoint store and docs store."""
        if self.services._agent is not self.agent:  # an agent handed in (tests): closed here, not by services
            self.agent.close()
        self.services.close()
