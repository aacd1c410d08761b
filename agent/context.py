"""Who asks and what they said: the caller of a thread, the user's recent words, the evidence for arguments."""

from __future__ import annotations

import re

from langchain_core.messages import HumanMessage, ToolMessage

from agent.state import AgentState
from policies.guard import Caller

__all__ = ["asked_text", "asks_about_self", "caller_of", "evidence", "previous_user_text", "recent_user_text"]


def caller_of(state: AgentState) -> Caller:
    """The thread's owner as the guard's caller (from the channel, never from the model)."""
    turn = state.get("turn") or {}
    return Caller(
        user=state.get("user", "anonymous"),
        channel=state.get("channel", "chat"),  # type: ignore[arg-type]
        request_text=str(turn.get("text", ""))[:2000],
        request_id=turn.get("request_id"),
        real_user=turn.get("real_user"),
        origin=turn.get("origin"),
    )


_SELF = re.compile(r"\b(?:my|mine|me|myself|i|i'm|i've|own)\b", re.I)


# Owning, not merely speaking in the first person ("can I see all VMs?" is not about the asker's VMs).
_MINE = re.compile(
    r"\b(?:my|mine|myself)\b|\bi(?:'ve| have)?\s+(?:own|have|got|run|started|made|created|submitted)\b"
    r"|\b(?:owned by|belong(?:ing)? to) me\b",
    re.I,
)


def asks_about_self(text: str) -> bool:
    """Whether a message is about the asker's own things ("my VMs", "which VMs do I own", "what do I have")."""
    return bool(_MINE.search(text))


def evidence(state: AgentState, *, user: bool = True) -> str:
    """What an argument may come from: the user's words (and, with ``user``, their name) and this turn's results."""
    turn = state.get("turn") or {}
    start = int(turn.get("start", 1))
    results = [str(m.content) for m in state.get("messages", [])[start:] if isinstance(m, ToolMessage)]
    said = recent_user_text(state)
    # The user's name is evidence for "my VMs", not for "which VMs are stopped" (an owner filter nobody asked for).
    who = [f"I am {state.get('user', '')}."] if user and _SELF.search(said) else []
    return "\n".join([*who, said, *results])


def previous_user_text(state: AgentState) -> str:
    """The user's message before the current one ('' in a new thread)."""
    texts = [str(m.content) for m in state.get("messages", []) if isinstance(m, HumanMessage)]
    return texts[-2] if len(texts) >= 2 else ""


def recent_user_text(state: AgentState, n: int = 3) -> str:
    """The user's last ``n`` messages, and the current one as the agent read it (translated, referents named)."""
    texts = [str(m.content) for m in state.get("messages", []) if isinstance(m, HumanMessage)][-n:]
    asked = str((state.get("turn") or {}).get("asked") or "")
    if asked and asked not in texts:
        texts.append(asked)
    return "\n".join(texts)


def asked_text(state: AgentState) -> str:
    """The current message as the agent reads it (``Turn.asked``; the message itself before retrieve ran)."""
    turn = state.get("turn") or {}
    return str(turn.get("asked") or turn.get("text", ""))
