"""How the agent asks the model: tool calls constrained to one JSON object, doubt detected.

Measured with Qwen2.5-Coder-1.5B on lab questions: asked freely for a tool call, it narrates ("I will
call ...") about one time in six; constrained to one JSON object (a call or an answer), 12 of 12 calls were
right and the replies shorter. Where a message goes (documentation or tools) is :mod:`agent.routing`'s.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from core.config import Settings

__all__ = ["UNSURE", "constrains", "constraint", "json_reply", "mentions_docs", "schema_options"]

log = logging.getLogger(__name__)

UNSURE = re.compile(
    r"\b(do not know|don't know|not sure|cannot (?:find|answer|provide)|no information|not mentioned)\b"
    # "The passage ... does not provide any information about the principal investigator": the pages' silence,
    # said of the pages (not "LabOps does not move VMs itself", a fact of them).
    r"|\b(?:passages?|documentation|documents?|context|text|pages?|sources?)\s+(?:\w+\s+){0,2}?"
    r"(?:does not|doesn't|do not|don't|did not)\s+(?:\w+\s+)?(?:provide|give|contain|include|mention|say|specify"
    r"|state|cover|have)\b"
    r"|\b(?:not|no|n't)\s+(?:\w+\s+){0,3}?(?:information|details)\s+(?:about|on|regarding|of)\b",
    re.I,
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
    return schema_options(settings, {"oneOf": branches}, name="tool_choice")


def constrains(settings: Settings) -> bool:
    """Whether the provider constrains a reply to a JSON schema (the scripted test model does not).

    Read off :func:`schema_options`, the one place that knows which providers take a schema and how.
    """
    return bool(schema_options(settings, {}, name="probe"))


def schema_options(settings: Settings, schema: dict[str, Any], *, name: str) -> dict[str, Any]:
    """Model-call options constraining the reply to ``schema``: Ollama's ``format``, OpenAI's ``response_format``.

    Empty for any other provider (the scripted test model): nothing is constrained.
    """
    if settings.llm.provider == "openai":
        return {"response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}}
    if settings.llm.provider == "ollama":
        return {"format": schema}
    return {}


def json_reply(
    model: BaseChatModel, settings: Settings, system: str, text: str, schema: dict[str, Any], *, name: str
) -> dict[str, Any] | None:
    """One model call whose reply is a JSON object of ``schema``; None when not asked (no constraint) or it failed.

    A helper call (routing, translation) that fails leaves the turn to the rules that do without it.
    """
    options = schema_options(settings, schema, name=name)
    if not options:
        return None
    try:
        reply = model.bind(**options).invoke([SystemMessage(content=system), HumanMessage(content=text)])
        parsed = json.loads(str(reply.content))
    except Exception:  # boundary: the model server's client raised, or the reply was no JSON
        log.warning("the model's %s reply failed", name, exc_info=True)
        return None
    return parsed if isinstance(parsed, dict) else None


def mentions_docs(text: str) -> bool:
    """Whether a message names the documentation itself (then the ``docs.search`` tool is offered too)."""
    return bool(re.search(r"\b(doc|docs|documentation|runbook|runbooks|manual|guide|wiki|page)\b", text, re.I))
