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
# Strong forms decide on their own; weak ones only when nothing in the message is about live state.
STRONG_DOC = (
    "how do", "how does", "how to", "how can", "how should", "how long", "how often", "why ", "when are", "when is",
    "when do", "when does", "explain", "policy", "policies", "runbook", "procedure", "documentation", "docs",
    "guide", "who has to", "who must", "who may", "who can", "who approves", "what is our", "what's our",
    "what are our", "objective", "rpo", "rto",
)  # fmt: skip
WEAK_DOC = (
    "who ", "whom", "what does", "rule", "allowed", "should i", "can i", "may i", "do we", "where is", "where are",
    "what is the policy",
)  # fmt: skip
# Words about the lab's current state or its data: the tools answer these.
LIVE_WORDS = re.compile(
    r"\b(?:my|mine|own|owns|owned|running|stopped|offline|online|free|status|state|problems?|failed|failing|"
    r"healthy|unhealthy|health|broken|working|reachable|"
    r"full|usage|configured|enabled|templates?|list|show|count|find|search|look up|right now|currently|"
    r"at the moment|today|quasars?|galax(?:y|ies)|stars?|objects?|targets?|redshifts?|spectra|arcmin\w*|sql|"
    r"select|update|insert|drop)\b",
    re.I,
)
# Asking for a change is for the tools (which then ask back what is missing), not for the docs.
ACTION = re.compile(
    r"^\W*(?:please\s+)?(?:create|make|provision|spin up|start|stop|shut down|reboot|restart|delete|remove|destroy|"
    r"submit|launch|cancel|kill|power (?:on|off))\b|\b(?:i need|i want|i'd like|give me|can you|could you|please)\b"
    r"[^.?!]{0,40}\b(?:create|make|provision|spin up|start|stop|reboot|restart|delete|remove|destroy|submit|run)\b",
    re.I,
)
# A message naming one live thing (a VM, job or target by its id, or a resource by its hyphenated name) asks
# about the lab's state, whatever its words: "what do we know about target 39627000000126704" answered from
# the docs would be invented.
LIVE = re.compile(
    r"\b(?:vm|vmid|job|target|targetid|object|node)\s*#?\d+|\b(?:labops|raysubmit)_\w+|\b\d{5,}\b"
    r"|\b[a-z][a-z0-9]*(?:-[a-z0-9]+)+\b",
    re.I,
)


UNSURE = re.compile(
    r"\b(do not know|don't know|not sure|cannot (?:find|answer|provide)|no information|not mentioned)\b", re.I
)


def asks_docs(text: str, *, passages: bool = True) -> bool:
    """Whether a message asks how the lab works (documentation) rather than about its live state.

    In order: a named live thing → tools; a how/why/policy question → docs; a request for a change or
    live-state words → tools; other question words → docs; anything else → docs when passages matched it
    (``passages``), else tools.
    """
    lowered = f" {text.lower()} "
    # Hyphenated words that are not resource names ("read-only", "on-premises") are not live things.
    named = [m.group(0) for m in LIVE.finditer(text) if m.group(0).lower() not in _PLAIN_HYPHENATED]
    if named:
        return False
    if any(w in lowered for w in STRONG_DOC):
        return True
    if ACTION.search(text) or LIVE_WORDS.search(text):
        return False
    if any(w in lowered for w in WEAK_DOC):
        return True
    return passages


_PLAIN_HYPHENATED = {"read-only", "on-premises", "on-prem", "off-site", "e-mail", "well-known", "up-to-date",
                     "four-eyes", "time-out", "non-production", "follow-up", "set-up", "step-by-step"}  # fmt: skip


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
