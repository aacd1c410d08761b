"""One parser for tool calls from every backend: native ``tool_calls``, ``<tool_call>`` tags, fenced or bare JSON.

Small models often write a tool call as text instead of using the API's tool-call field: a fenced
```` ```json ```` block, a bare JSON object, or Qwen's ``<tool_call>`` tags that the server did not turn
into a call. :func:`extract_calls` finds calls in all of these shapes, maps the model-facing function name
(``vm_provision``) back to the tool (``vm.provision``), and returns what is left of the text as the answer.
A JSON object in the text counts as a call only when its name is one of the offered tools.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage

__all__ = ["ProposedCall", "extract_calls", "model_name", "tool_name"]

_FENCE = re.compile(r"```(?:json|tool_call|python)?\s*(.*?)```", re.S | re.I)
_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_NAME_KEYS = ("name", "tool", "function", "tool_name")
_ARG_KEYS = ("arguments", "args", "parameters", "params", "input")


def model_name(tool: str) -> str:
    """The function name the model sees (``vm.provision`` → ``vm_provision``; OpenAI allows no dots)."""
    return tool.replace(".", "_")


def tool_name(name: str, known: set[str]) -> str | None:
    """The tool a model-facing name refers to, or None (``vm_provision``, ``vm.provision`` → ``vm.provision``)."""
    if name in known:
        return name
    for tool in known:
        if model_name(tool) == name or model_name(tool) == name.replace("-", "_"):
            return tool
    return None


@dataclass(kw_only=True)
class ProposedCall:
    """A tool call the model proposed (before validation)."""

    id: str
    name: str  # the tool's name (vm.provision), or what the model wrote if no tool matches
    args: dict[str, Any]
    known: bool
    source: str  # native | tag | fence | json | listing (the agent's, for a guessed id: node_calls)
    raw: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the state."""
        return {"id": self.id, "name": self.name, "args": self.args, "known": self.known, "source": self.source}

    def with_args(self, args: dict[str, Any]) -> ProposedCall:
        """The same call with other arguments, under an id of its own."""
        return ProposedCall(id=_new_id(), name=self.name, args=args, known=self.known, source=self.source, raw=self.raw)


def _new_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]


def _from_object(obj: Any, known: set[str], source: str) -> ProposedCall | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # OpenAI shape {"type": "function", "function": {...}}
        obj = obj["function"]
    name = next((obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str)), None)
    if name is None:
        return None
    args: Any = next((obj[k] for k in _ARG_KEYS if k in obj), {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return None
    resolved = tool_name(name, known)
    if resolved is None and source in ("fence", "json"):
        return None  # free text that merely looks like JSON is an answer, not a call
    return ProposedCall(
        id=_new_id(), name=resolved or name, args=args, known=resolved is not None, source=source, raw=obj
    )


def _objects(text: str) -> list[tuple[int, int, Any]]:
    """Every top-level JSON object or array in ``text`` with its span."""
    decoder = json.JSONDecoder()
    found: list[tuple[int, int, Any]] = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            found.append((i, end, value))
            i = end
        else:
            i += 1
    return found


def _calls_in(value: Any, known: set[str], source: str) -> list[ProposedCall]:
    items = value if isinstance(value, list) else [value]
    calls = [_from_object(item, known, source) for item in items]
    return [c for c in calls if c is not None]


def extract_calls(message: AIMessage, known: set[str]) -> tuple[list[ProposedCall], str]:
    """``(calls, remaining text)`` of a model message; ``known`` are the tool names offered."""
    calls: list[ProposedCall] = []
    for call in message.tool_calls or []:
        resolved = tool_name(call["name"], known)
        calls.append(
            ProposedCall(
                id=call.get("id") or _new_id(),
                name=resolved or call["name"],
                args=dict(call.get("args") or {}),
                known=resolved is not None,
                source="native",
            )
        )
    text = message.content if isinstance(message.content, str) else _text_of(message.content)
    if calls:
        return calls, text.strip()
    spans: list[tuple[int, int]] = []
    for pattern, source in ((_TAG, "tag"), (_FENCE, "fence")):
        for match in pattern.finditer(text):
            if any(s <= match.start() < e for s, e in spans):
                continue
            found: list[ProposedCall] = []
            for _s, _e, value in _objects(match.group(1)):
                found += _calls_in(value, known, source)
            if found:
                calls += found
                spans.append((match.start(), match.end()))
    if not calls:
        for start, end, value in _objects(text):
            found = _calls_in(value, known, "json")
            if found:
                calls += found
                spans.append((start, end))
    if not calls:
        answer = _answer_object(text)
        if answer is not None:
            return [], answer
        stated = _stated_call(text, known)
        if stated is not None:
            return [stated], ""
    remaining = text
    for start, end in sorted(spans, reverse=True):
        remaining = remaining[:start] + remaining[end:]
    return calls, remaining.strip()


# First-person intent only: "you can call X" is advice to the user, not a call.
def _answer_object(text: str) -> str | None:
    """The answer of a constrained reply ``{"tool": "none", "answer": "..."}``, if that is what ``text`` is."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        obj = json.loads(stripped)
    except ValueError:
        return None
    if isinstance(obj, dict) and obj.get("tool") in ("none", None) and isinstance(obj.get("answer"), str):
        return obj["answer"]
    return None


_STATED = re.compile(
    r"\b(i will|i'll|i am going to|i'm going to|let me|i need to|i should|i must|i shall|now i)\s+"
    r"(call|use|run|invoke|check|query)\b|^\s*(calling|using|invoking)\b",
    re.I | re.M,
)


def _stated_call(text: str, known: set[str]) -> ProposedCall | None:
    """'I will call the `vm_show` function with {...}': one named tool, the arguments as the only JSON object.

    Small models announce a call instead of making it. When the text names exactly one offered tool next to a
    calling verb, that is the call; a JSON object in the text, if there is exactly one, is its arguments.
    """
    if not _STATED.search(text):
        return None
    named = {t for t in known if re.search(rf"(?<![\w.]){re.escape(model_name(t))}(?!\w)", text)}
    named |= {t for t in known if re.search(rf"(?<![\w.]){re.escape(t)}(?!\w)", text)}
    if len(named) != 1:
        return None
    objects = [v for _s, _e, v in _objects(text) if isinstance(v, dict)]
    if len(objects) > 1:
        return None
    args = objects[0] if objects else {}
    if isinstance(args.get("arguments"), dict):
        args = args["arguments"]
    return ProposedCall(id=_new_id(), name=named.pop(), args=dict(args), known=True, source="stated")


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content or "")
