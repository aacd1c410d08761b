"""pymilvus failures as the errors a caller can act on, for reads and writes alike.

A call either reaches a Milvus that refuses it (:class:`~core.errors.KnowledgeError`, with Milvus's reason)
or does not reach one (:class:`~core.errors.BackendUnavailable`, naming the setting ``milvus.uri``).
pymilvus reports most failures as ``MilvusException`` but lets some gRPC errors through unwrapped (an
upsert over the server's message size arrived as ``grpc.RpcError``); both are translated here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from core.errors import BackendUnavailable, KnowledgeError

if TYPE_CHECKING:
    from pymilvus import MilvusClient

__all__ = ["translate", "translating"]

_UNREACHABLE = ("unavailable", "connect", "timeout", "deadline", "closed")


def translate(exc: Exception, uri: str) -> KnowledgeError | BackendUnavailable:
    """``exc`` (a ``MilvusException`` or a ``grpc.RpcError``) as the error to raise in its place."""
    code_of, details_of = getattr(exc, "code", None), getattr(exc, "details", None)  # a grpc.RpcError's
    code = code_of() if callable(code_of) else None
    details = details_of() if callable(details_of) else None
    message = str(details or getattr(exc, "message", "") or exc)
    name = str(getattr(code, "name", ""))
    # pymilvus reports an unreachable server as a MilvusException with a connection/timeout message (no subclass).
    if name in {"UNAVAILABLE", "DEADLINE_EXCEEDED"} or any(w in message.lower() for w in _UNREACHABLE):
        return BackendUnavailable("Milvus", f"{uri}: {message}", setting="milvus.uri")
    return KnowledgeError(f"Milvus ({uri}) refused the request: {message}")


def translating(client: MilvusClient, uri: str) -> MilvusClient:
    """``client`` with every method's pymilvus and gRPC failures translated (:func:`translate`)."""
    return cast("MilvusClient", _Translating(client, uri))


class _Translating:
    def __init__(self, client: MilvusClient, uri: str) -> None:
        self._client = client
        self._uri = uri

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        return self._wrap(attr)

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        import grpc
        from pymilvus.exceptions import MilvusException

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except (MilvusException, grpc.RpcError) as exc:
                raise translate(exc, self._uri) from exc

        return call
