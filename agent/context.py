"""Who asks and what they said: the caller of a thread, the user's recent words, the evidence for arguments."""

from __future__ import annotations

from langchain_core.messages import HumanMessage, ToolMessage

from agent.state import AgentState
from policies.guard import Caller

__all__ = ["caller_of", "evidence", "recent_user_text"]


def caller_of(state: AgentState) -> Caller:
    """The thread's owner as the guard's caller (from the channel, never from the model)."""
    turn = state.get("turn") or {}
    return Caller(
        user=state.get("user", "anonymous"),
        channel=state.get("channel", "chat"),  # type: ignore[arg-type]
        request_text=str(turn.get("text", ""))[:2000],
        request_id=turn.get("request_id"),
    )


def evidence(state: AgentState) -> str:
    """What an optional argument may come from: the user (with their name) and this turn's tool results."""
    turn = state.get("turn") or {}
    start = int(turn.get("start", 1))
    results = [str(m.content) for m in state.get("messages", [])[start:] if isinstance(m, ToolMessage)]
    return "\n".join([f"I am {state.get('user', '')}.", recent_user_text(state), *results])


def recent_user_text(state: AgentState, n: int = 3) -> str:
    """The user's last ``n`` messages."""
    texts = [str(m.content) for m in state.get("messages", []) if isinstance(m, HumanMessage)]
    return "\n".join(texts[-n:])
