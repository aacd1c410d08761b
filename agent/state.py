"""The graph's state: one conversation thread, owned by one user on one channel.

``messages`` is the conversation as the model sees it (user turns, tool calls, tool results, answers).
``turn`` is the scratch of the turn in progress: the passages and tools offered, the queue of proposed
calls, the call being handled, counters against the bounds, and the log of what ran; a node replaces it
whole (no reducer), so a resumed node starts from the state the checkpoint holds.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

__all__ = ["AgentState", "new_turn"]


class AgentState(TypedDict, total=False):
    """State of one thread."""

    messages: Annotated[list[AnyMessage], add_messages]
    user: str
    channel: str
    turn: dict[str, Any]


def new_turn(
    text: str,
    start: int,
    request_id: str | None = None,
    *,
    real_user: str | None = None,
    origin: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Scratch for a new turn whose user message is ``messages[start - 1]``.

    ``real_user`` and ``origin`` are the channel's facts about who asked (an operator behind ``--as``, the API
    key, the forwarded or Slack identity): the guard writes them into every audit entry of the turn.
    """
    return {
        "text": text,
        "start": start,
        "request_id": request_id,
        "real_user": real_user,
        "origin": dict(origin) if origin else None,
        "passages": [],
        "tools": [],
        "queue": [],
        "current": None,
        "steps": 0,
        "repairs": 0,
        "tokens": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "model_calls": 0,
        "log": [],
        "named": {},  # VM ids the user named by name this turn (agent.vmnames)
        "stop": None,
    }
