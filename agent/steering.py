"""How the agent asks the model: docs questions answered from passages, tool calls constrained, doubt detected.

Measured with Qwen2.5-Coder-1.5B on lab questions: offered tools alongside passages, it calls tools for
questions the passages answer (2 of 5 answered); without tools it answers all 5 from the passages. Asked
freely for a tool call, it narrates ("I will call ...") about one time in six; constrained to one JSON
object (a call or an answer), 12 of 12 calls were right and the replies shorter.
"""

from __future__ import annotations

import re
from typing import Any

from core.config import Settings

__all__ = ["UNSURE", "asks_docs", "constraint", "mentions_docs"]

# Questions about how the lab works (the documentation), as opposed to its live state (the tools).
DOC_WORDS = (
    "how do", "how does", "how to", "how can", "how should", "how long", "why ", "when are", "when is", "when do",
    "when does", "who ", "whom", "explain", "what does", "what is our", "what's our", "what are our", "policy",
    "policies", "runbook", "procedure", "rule", "allowed", "should i", "can i", "may i", "do we", "objective",
    "rpo", "rto", "documentation", "docs", "guide", "where is", "where are", "what is the policy",
)  # fmt: skip


UNSURE = re.compile(
    r"\b(do not know|don't know|not sure|cannot (?:find|answer|provide)|no information|not mentioned)\b", re.I
)


def asks_docs(text: str) -> bool:
    """Whether a message asks how the lab works (documentation) rather than about its live state."""
    lowered = f" {text.lower()} "
    return any(w in lowered for w in DOC_WORDS)


def constraint(settings: Settings, definitions: list[dict[str, Any]]) -> dict[str, Any]:
    """Model-call options that force one JSON object: a call of an offered tool, or ``{"tool": "none", "answer"}``.

    Constrained decoding removes the small model's narration ("I will call ...") and malformed calls; it
    slows token generation, but the call is short. Ollama takes a JSON schema in ``format``; OpenAI-compatible
    servers take ``response_format``.
    """
    branches: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"tool": {"const": d["function"]["name"]}, "arguments": d["function"]["parameters"]},
            "required": ["tool", "arguments"],
        }
        for d in definitions
    ]
    branches.append(
        {
            "type": "object",
            "properties": {"tool": {"const": "none"}, "answer": {"type": "string"}},
            "required": ["tool", "answer"],
        }
    )
    schema = {"oneOf": branches}
    if settings.llm.provider == "openai":
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "tool_choice", "schema": schema}}}
    if settings.llm.provider == "ollama":
        return {"format": schema}
    return {}


def mentions_docs(text: str) -> bool:
    """Whether a message names the documentation itself (then the ``docs.search`` tool is offered too)."""
    return bool(re.search(r"\b(doc|docs|documentation|runbook|runbooks|manual|guide|wiki|page)\b", text, re.I))
