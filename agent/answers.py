"""What the user reads at the end of a turn: the answer's fallback and its sources line."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk

from agent.state import AgentState

__all__ = ["as_message", "fallback_answer", "sources_line"]


def as_message(chunk: AIMessageChunk) -> AIMessage:
    """A complete message from the streamed chunks."""
    return AIMessage(
        content=chunk.content,
        tool_calls=chunk.tool_calls,
        usage_metadata=chunk.usage_metadata,
        response_metadata=chunk.response_metadata,
    )


def fallback_answer(state: AgentState) -> str:
    """When the model says nothing: what the tools found this turn, or that there is no answer."""
    turn = state.get("turn") or {}
    found = [f"{e['name']}: {e['message']}" for e in turn.get("log", []) if e["status"] in ("ok", "no_data")]
    if found:
        return "Here is what the lab reports:\n" + "\n".join(found)
    if turn.get("passages"):
        p = turn["passages"][0]
        return f"The closest passage of the documentation, {p['citation']}, says: {' '.join(p['text'].split())[:400]}"
    return "I do not know: neither the lab's documentation nor its tools answer this."


def sources_line(turn: dict[str, Any], answer: str) -> str:
    """The deterministic sources line: documents offered (and cited) and the tools whose data answered."""
    parts = []
    cites = [p["citation"] for p in turn.get("passages", [])]
    if cites:
        used = [c for c in cites if c in answer] or cites
        parts.append("Sources: " + ", ".join(dict.fromkeys(used)))
    tools = [e["name"] for e in turn.get("log", []) if e["status"] in ("ok", "no_data")]
    if tools:
        parts.append("Data from: " + ", ".join(dict.fromkeys(tools)))
    return "\n".join(parts)
