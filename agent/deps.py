"""What the graph's nodes use: settings, the guard, the model, the tools and how they are chosen, the docs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from agent.models import one_token
from agent.prompts import SYSTEM_PROMPT, tool_definition
from agent.routing import Router
from agent.spelling import Speller
from agent.steering import constrains
from agent.toolselect import ToolSelector
from core.config import AgentSettings, Settings
from policies.guard import Guard
from tools.base import Tool

__all__ = ["AgentDeps", "Nodes", "stable_prefix", "warm_up"]

log = logging.getLogger(__name__)


def stable_prefix(settings: Settings) -> bool:
    """Whether every tool prompt carries every tool (``agent.all_tools_in_prompt``).

    Only where the choice is constrained to the offered tools: a model that is not (the scripted test model)
    is shown just those, or it could pick any.
    """
    agent = settings.agent
    return agent.all_tools_in_prompt and agent.constrained_calls and constrains(settings)


def warm_up(model: BaseChatModel, tools: list[Tool[Any]]) -> float | None:
    """Have the model server evaluate the start every tool prompt shares (system prompt, every tool); seconds.

    None when the server did not answer (then the first question pays for it instead). Measured on the
    2-core machine: about 3,200 tokens, 40-60 s once per model server start; a question then waits for its
    own tokens only.
    """
    definitions = [tool_definition(t) for t in tools]
    started = time.monotonic()
    try:
        one_token(model).bind_tools(definitions).invoke(
            [SystemMessage(content=SYSTEM_PROMPT), HumanMessage(content="Ready?")]
        )
    except Exception:  # boundary: the model server is down or slow; nothing depends on the warm-up
        log.warning("warming the model server's prompt cache failed", exc_info=True)
        return None
    return time.monotonic() - started


@dataclass(kw_only=True)
class AgentDeps:
    """What the graph's nodes use."""

    settings: Settings
    guard: Guard
    model: BaseChatModel
    tools: list[Tool[Any]]
    selector: ToolSelector
    router: Router
    speller: Speller | None = None  # reads misspelt words as the words meant (agent.spelling)
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

    @property
    def identity_fields(self) -> frozenset[str]:
        """The fields that name a thing in tool data (``vmid``, ``name``, ``node``): the tools' name lookups."""
        return frozenset(
            f for t in self.tools for lookup in t.named_by.values() for f in (lookup.value, lookup.name) if f
        )

    @property
    def stable_prefix(self) -> bool:
        """Whether every tool prompt carries every tool (see :func:`stable_prefix`)."""
        return stable_prefix(self.settings)

    def bound_model(self, names: tuple[str, ...]) -> Any:
        """The model with these tools bound (cached per selection; every tool when the prefix is kept stable).

        The chat template writes the tool definitions into the system message, before the conversation: the
        same definitions in the same order make the same long prefix for every question, which the model
        server evaluates once and then serves from its cache (measured in bench/agent.py).
        """
        key = ("*",) if self.stable_prefix and names else names
        if key not in self._bound:
            tools = [tool_definition(t) for t in self.tools if key == ("*",) or t.name in names]
            self._bound[key] = self.model.bind_tools(tools) if tools else self.model
        return self._bound[key]

    def warm_up(self) -> float | None:
        """Have the model server evaluate the stable start of the tool prompts once (see :func:`warm_up`)."""
        return warm_up(self.model, self.tools) if self.stable_prefix else None


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
