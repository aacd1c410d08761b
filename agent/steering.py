"""How the agent asks the model: tool calls constrained to one JSON object, doubt detected.

Measured with Qwen2.5-Coder-1.5B on lab questions: asked freely for a tool call, it narrates ("I will
call ...") about one time in six; constrained to one JSON object (a call or an answer), 12 of 12 calls were
right and the replies shorter. Where a message goes (documentation or tools) is :mod:`agent.routing`'s.
"""

from __future__ import annotations

import re
from typing import Any

from core.config import Settings

__all__ = ["UNSURE", "constraint", "mentions_docs"]

UNSURE = re.compile(
    r"\b(do not know|don't know|not sure|cannot (?:find|answer|provide)|no information|not mentioned)\b", re.I
)


def constraint(settings: Settings, definitions: list[dict[str, Any]], *, answer: bool = True) -> dict[str, Any]:
    """Model-call options that force one JSON object: a call of an offered tool, or ``{"tool": "none", "answer"}``.

    Without ``answer`` the object must be a call (the message holds text only that tool takes).

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
    if answer:
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
