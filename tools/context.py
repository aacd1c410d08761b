"""What a tool call runs with: the settings, the caller, the request key and shared clients."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.config import Settings

__all__ = ["ToolContext"]

T = TypeVar("T")


@dataclass(kw_only=True)
class ToolContext:
    """Per-process dependencies of the tools, plus the identity of one call.

    Attributes:
        settings: the loaded settings.
        user: who asked (the principal the guard checked), used e.g. as a new VM's owner.
        request_key: idempotency key of the call (from the chat's tool-call id or the CLI);
            a mutating tool called twice with the same key returns the first result.
        clients: lazily created client objects shared by calls (see :meth:`client`).
    """

    settings: Settings
    user: str = "anonymous"
    request_key: str | None = None
    clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, name: str, factory: Callable[[Settings], T]) -> T:
        """The shared client ``name``, created by ``factory(settings)`` on first use."""
        with self._lock:
            if name not in self.clients:
                self.clients[name] = factory(self.settings)
            value: T = self.clients[name]
            return value

    def for_call(self, *, user: str, request_key: str | None) -> ToolContext:
        """A context for one call that shares this one's clients."""
        return ToolContext(
            settings=self.settings, user=user, request_key=request_key, clients=self.clients, _lock=self._lock
        )
