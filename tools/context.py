"""What a tool call runs with: the settings, the caller, the request key and shared clients."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from core.config import Settings
from core.errors import ConfigError

__all__ = ["Journal", "NullJournal", "ToolContext"]

T = TypeVar("T")


class Journal(Protocol):
    """Where a multi-step call records its steps against its request key (the guard provides one)."""

    def record(self, step: str, **data: Any) -> None:
        """Record ``step`` before doing it."""
        ...

    def steps(self) -> list[dict[str, Any]]:
        """Steps recorded so far by this request key (also by an earlier, cut-off attempt)."""
        ...


class NullJournal:
    """No request key: nothing to record, nothing to resume."""

    def record(self, step: str, **data: Any) -> None:
        """Nothing is recorded."""

    def steps(self) -> list[dict[str, Any]]:
        """Nothing was recorded."""
        return []


@dataclass(kw_only=True)
class ToolContext:
    """Per-process dependencies of the tools, plus the identity of one call.

    Attributes:
        settings: the loaded settings.
        user: who asked (the principal the guard checked), used e.g. as a new VM's owner.
        request_key: idempotency key of the call (from the chat's tool-call id or the CLI);
            a mutating tool called twice with the same key returns the first result.
        clients: lazily created client objects shared by calls (see :meth:`client`).
        services: objects a higher layer hands to the tools (e.g. ``"docs"``, the documentation
            search), so tools use them without importing that layer.
        audit_seq: the audit entry that records this call; set only by the guard, and a tool refuses to
            run without it (see :meth:`tools.base.Tool.run`).
        resuming: an earlier call with the same request key was cut off (its process died); the tool
            finishes or cleans up what that call started instead of starting afresh.
        journal: the request key's step journal (a :class:`NullJournal` without a key).
        landed: a tool that makes something quotas count (a job, a VM) calls this as soon as that thing
            shows in the lab with its final size; the guard then drops the call's quota reservation, which
            would otherwise count it twice. Optional (the reservation ends with the call), harmless to repeat.
    """

    settings: Settings
    user: str = "anonymous"
    request_key: str | None = None
    clients: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    audit_seq: int | None = None
    resuming: bool = False
    journal: Journal = field(default_factory=NullJournal)
    landed: Callable[[], None] = field(default=lambda: None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, name: str, factory: Callable[[Settings], T]) -> T:
        """The shared client ``name``, created by ``factory(settings)`` on first use."""
        with self._lock:
            if name not in self.clients:
                self.clients[name] = factory(self.settings)
            value: T = self.clients[name]
            return value

    def forget_clients(self) -> None:
        """Drop the shared clients, so the next call resolves each backend's address again."""
        with self._lock:
            self.clients.clear()

    def service(self, name: str) -> Any:
        """A service handed in by a higher layer; ConfigError naming it when it was not."""
        try:
            return self.services[name]
        except KeyError:
            raise ConfigError(
                f"the {name!r} service is not available in this process (it is provided by the agent and the CLI)"
            ) from None

    def for_call(
        self,
        *,
        user: str,
        request_key: str | None,
        audit_seq: int | None = None,
        resuming: bool = False,
        journal: Journal | None = None,
        landed: Callable[[], None] | None = None,
    ) -> ToolContext:
        """A context for one call that shares this one's clients and services."""
        return ToolContext(
            settings=self.settings,
            user=user,
            request_key=request_key,
            clients=self.clients,
            services=self.services,
            audit_seq=audit_seq,
            resuming=resuming,
            journal=journal or NullJournal(),
            landed=landed or (lambda: None),
            _lock=self._lock,
        )
