"""The composition root: the store, the guard, the documentation search and the agent, made once from settings.

Every channel (the CLI's commands, ``labops serve``), the evals and the benches take a :class:`Services` from
:func:`build_services` instead of wiring the parts themselves, so a guard always has the tools' services, an
agent always shares its guard's store, and closing them is one call. Parts that need the model (the agent)
or Milvus (the documentation search) are made on first use: ``labops tool call`` opens neither.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.store import Database
from policies.guard import Guard

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from agent.incidents import IncidentDesk
    from agent.runtime import Agent
    from knowledge.embeddings import Embedder
    from knowledge.service import DocsService

__all__ = ["Services", "build_services"]


@dataclass(kw_only=True)
class Services:
    """What one process uses: settings, the store, the guard (policy, approvals, audit), the docs, the agent."""

    settings: Settings
    store: Database
    guard: Guard
    docs: DocsService
    model: BaseChatModel | None = None
    embedder: Embedder | None = None
    _agent: Agent | None = field(default=None, repr=False)
    _desk: IncidentDesk | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def agent(self) -> Agent:
        """The agent over this guard and these docs (made on first use: it connects to the model server)."""
        with self._lock:
            if self._agent is None:
                from agent.runtime import Agent

                self._agent = Agent(
                    self.settings, model=self.model, guard=self.guard, docs=self.docs, embedder=self.embedder
                )
            return self._agent

    @property
    def incidents(self) -> IncidentDesk:
        """The incident desk over this guard, these docs and the store (made on first use)."""
        with self._lock:
            if self._desk is None:
                from agent.incidents import IncidentDesk
                from tools.registry import all_tools

                self._desk = IncidentDesk.build(
                    self.settings, guard=self.guard, tools=all_tools(self.settings), docs=self.docs
                )
            return self._desk

    def close(self) -> None:
        """Release the agent's model client and checkpoints, and the documentation store."""
        with self._lock:
            if self._agent is not None:
                self._agent.close()
                self._agent = None
        self.docs.close()


def build_services(
    settings: Settings,
    *,
    model: BaseChatModel | None = None,
    embedder: Embedder | None = None,
    docs: Any = None,
) -> Services:
    """Make the parts once: the store (schema checked), the guard with the tools' services, the docs search.

    ``model`` replaces the configured chat model (tests, the eval runner sharing one); ``docs`` a shared
    documentation search (the eval runner's index).
    """
    from knowledge.service import DocsService

    store = Database.from_settings(settings)
    store.ensure_schema()
    docs = docs if docs is not None else DocsService(settings, embedder=embedder)
    guard = Guard.from_settings(settings, services={"docs": docs})
    return Services(settings=settings, store=store, guard=guard, docs=docs, model=model, embedder=embedder)
