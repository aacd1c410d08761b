"""A turn's evidence: what an answer may state, and the grounding audit of the final answer.

The evidence is what an answer may state (:mod:`agent.grounding`): the results of this turn's tool calls
(their messages and bounded data), the results of earlier calls in the thread (as the model saw them), the
passages retrieved for the question, and the user's own recent messages.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage

from agent.claims import Problem
from agent.grounding import check
from agent.haystack import Evidence
from agent.state import AgentState, Turn

__all__ = ["DATA_CHARS", "audit", "bounded_data", "turn_evidence", "turn_passages"]

# What a tool result keeps in the turn's log for grounding: enough rows for any listing a person reads in chat,
# bounded so that one 10,000-row query does not bloat every checkpoint of the thread.
DATA_ROWS = 200
DATA_CHARS = 40_000


def bounded_data(data: Any) -> Any:
    """Tool data as the turn keeps it: at most ``DATA_ROWS`` rows of a list and ``DATA_CHARS`` of JSON."""
    if isinstance(data, list) and len(data) > DATA_ROWS:
        data = data[:DATA_ROWS]
    if isinstance(data, dict):
        data = {k: (v[:DATA_ROWS] if isinstance(v, list) else v) for k, v in data.items()}
    try:
        text = json.dumps(data, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    if len(text) <= DATA_CHARS:
        return json.loads(text)
    if isinstance(data, list):
        kept: list[Any] = []
        size = 2
        for row in data:
            size += len(json.dumps(row, default=str, ensure_ascii=False)) + 2
            if size > DATA_CHARS:
                break
            kept.append(row)
        return json.loads(json.dumps(kept, default=str, ensure_ascii=False))
    return None


def _user_texts(state: AgentState, n: int = 3) -> list[str]:
    return [str(m.content) for m in state.get("messages", []) if isinstance(m, HumanMessage)][-n:]


def turn_passages(turn: Turn) -> list[dict[str, Any]]:
    """Every passage the turn's answer may quote: those shown to the model, then ``advice`` (under a live answer)."""
    return [*turn.get("passages", []), *turn.get("advice", [])]


def turn_evidence(state: AgentState) -> Evidence:
    """Everything the answer of the turn in ``state`` may state."""
    turn = state.get("turn") or {}
    start = int(turn.get("start", 1))
    results: list[tuple[str, Any]] = [
        (str(e.get("message", "")), e.get("data"))
        for e in turn.get("log", [])
        if e.get("status") in ("ok", "no_data", "denied", "error", "needs_approval")
    ]
    # Earlier turns' results as the model saw them (follow-ups: "which node is it on?").
    earlier = [m for m in state.get("messages", [])[: max(0, start - 1)] if isinstance(m, ToolMessage)]
    results += [(str(m.content), None) for m in earlier[-12:]]
    passages = turn_passages(turn)
    return Evidence.build(
        results=results,
        passages=[str(p.get("text", "")) for p in passages],
        user_texts=_user_texts(state),
        sources=[str(p.get("source", "")) for p in passages],
    )


def audit(answer: str, evidence: Evidence, *, cite: bool) -> list[Problem]:
    """The problems of a final answer against the turn's evidence (the grounding audit of ``TurnResult``).

    ``evidence`` is what the respond step checked the answer against (:func:`turn_evidence`): the audit and
    the check must agree on what counts as a source. The answer's own note about left-out sentences quotes
    what was left out; it is not a statement.
    """
    body = "\n".join(line for line in answer.splitlines() if not line.startswith("_(Left out"))
    return check(body, evidence, cite=cite)
