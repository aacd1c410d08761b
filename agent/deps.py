"""What the graph's nodes use: settings, the guard, the model, the tools and how they are chosen, the docs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from agent.prompts import tool_definition
from agent.routing import Router
from agent.toolselect import ToolSelector
from core.config import AgentSettings, Settings
from policies.guard import Guard
from tools.base import Tool

__all__ = ["AgentDeps", "Nodes"]


@dataclass(kw_only=True)
class AgentDeps:
    """What the graph's nodes use."""

    settings: Settings
    guard: Guard
    model: BaseChatModel
    tools: list[Tool[Any]]
    selector: ToolSelector
    router: Router
    docs: Any = None  # knowledge.service.DocsService (anything with hits(query, k) and chunks())
    docs_min_score: float = 0.65  # hybrid score of a relevant passage (measured: off-topic questions score < 0.6)
    tool_fit_floor: float = 0.6  # a tool this similar to the message answers it (measured on 20 questions)
    offtopic_floor: float = 0.35  # below this, and with no passage, nothing in the lab answers the message
    on_model_call: Any = None  # callback(duration_s, usage) for metrics
    # Looks the model server up again when it stopped answering; True when it moved and ``model`` was replaced.
    refresh: Callable[[], bool] | None = None
    _bound: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def tool(self, name: str) -> Tool[Any] | None:
        """The registered tool ``name``."""
        return next((t for t in self.tools if t.name == name), None)

    def refresh_model(self) -> bool:
        """Whether the model server was found at a new address (then ``model`` is the new client)."""
        if self.refresh is None or not self.refresh():
            return False
        self._bound.clear()
        return True

    def bound_model(self, names: tuple[str, ...]) -> Any:
        """The model with these tools bound (cached per selection)."""
        if names not in self._bound:
            tools = [tool_definition(t) for t in self.tools if t.name in names]
            self._bound[names] = self.model.bind_tools(tools) if tools else self.model
        return self._bound[names]


@dataclass(kw_only=True)
class Nodes:
    """Base of the node groups (model, calls, answers): their dependencies and the settings they read."""

    deps: AgentDeps

    @property
    def settings(self) -> Settings:
        """The agent's settings."""
        return self.deps.settings

    @property
    def bounds(self) -> AgentSettings:
        """The turn's bounds."""
        return self.deps.settings.agent
