"""A scripted chat model for deterministic agent tests, the eval harness's own tests, and the overhead benchmark.

It is a real LangChain chat model (``bind_tools``, ``invoke``, ``stream``, usage metadata), so the agent runs
the same code as with Ollama. Its answers come from a *responder*: a function of the messages and the
offered tools, or a fixed list of replies taken in order. Replies are written as text the way a small
model writes them (a fenced JSON tool call, or an answer), or as native tool calls.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr

from core.errors import ConfigError

__all__ = ["Reply", "Responder", "ScriptedChatModel", "call", "fenced_call", "load_script", "rules_responder"]

Reply = AIMessage | str
Responder = Callable[[list[BaseMessage], list[dict[str, Any]]], Reply]


def call(name: str, args: dict[str, Any] | None = None, *, text: str = "") -> AIMessage:
    """A native tool call (``name`` is the model-facing name, e.g. ``vm_list``)."""
    return AIMessage(content=text, tool_calls=[{"name": name, "args": dict(args or {}), "id": None}])


def fenced_call(name: str, args: dict[str, Any] | None = None) -> str:
    """A tool call written as a fenced JSON block, as the small model writes it."""
    return "```json\n" + json.dumps({"name": name, "arguments": dict(args or {})}, indent=2) + "\n```"


def _reply_of(item: Any) -> Reply:
    if isinstance(item, dict) and "call" in item:
        return call(str(item["call"]), dict(item.get("args") or {}), text=str(item.get("text", "")))
    return str(item)


def _result_message(content: str) -> str:
    """The ``message`` line of a tool result as the agent quotes it for the model (else its first line)."""
    for line in content.splitlines():
        text = line.lstrip("> ").strip()
        if text.startswith("message:"):
            return text[len("message:") :].strip()
    return content.strip().splitlines()[0] if content.strip() else ""


def rules_responder(rules: list[dict[str, Any]]) -> Responder:
    """A responder that picks the first rule matching the question, whatever order calls come in.

    A rule is ``{"when": REGEX, "reply": REPLY}`` for the first model call of a turn (``when`` searched in the
    user's message, case-insensitive; absent matches anything), or ``{"after": TOOL, "reply": REPLY}`` for the
    call that follows a result of tool ``TOOL`` (``vm_list`` or ``vm.list``; ``*`` for any). In a text reply,
    ``{result}`` is the tool result's message. ``"delay": SECONDS`` makes the reply take that long, like a
    real model (for tests of queues and timeouts). Concurrent conversations get consistent answers, which an
    ordered list cannot give.
    """
    compiled = []
    for rule in rules:
        after = rule.get("after")
        pattern = re.compile(str(rule.get("when", "")), re.I | re.S)
        tool = str(after).replace(".", "_") if after else None
        compiled.append((pattern, tool, rule.get("reply", ""), float(rule.get("delay", 0) or 0)))

    def respond(messages: list[BaseMessage], _tools: list[dict[str, Any]]) -> Reply:
        question = next((str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        last = messages[-1] if messages else None
        tool = str(last.name).replace(".", "_") if isinstance(last, ToolMessage) and last.name else None
        result = _result_message(str(last.content)) if isinstance(last, ToolMessage) else ""
        for pattern, after, reply, delay in compiled:
            if (after is None) != (tool is None) or (after not in (None, "*", tool)):
                continue
            if pattern.search(question):
                if delay:
                    time.sleep(delay)  # under the model's lock: one generation at a time, like one GPU
                made = _reply_of(reply)
                return made.replace("{result}", result) if isinstance(made, str) else made
        return f"Done: {result}" if tool else "The scripted model has no rule for this question."

    return respond


def load_script(path: Path) -> list[Reply] | Responder:
    """A model script from a JSON or YAML file.

    Either a list of replies taken in order (text, or ``{"call": "vm_list", "args": {...}}`` for a native
    call), or ``{"rules": [...]}`` for a :func:`rules_responder`.
    """
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the model script {path}: {exc}", setting="llm.script") from exc
    if isinstance(data, dict) and isinstance(data.get("rules"), list):
        if not all(isinstance(r, dict) for r in data["rules"]):
            raise ConfigError(f"every rule in {path} must be a mapping with when/after and reply", setting="llm.script")
        return rules_responder(data["rules"])
    if not isinstance(data, list):
        raise ConfigError(
            f"the model script {path} must be a list of replies or {{rules: [...]}}", setting="llm.script"
        )
    return [_reply_of(item) for item in data]


class ScriptedChatModel(BaseChatModel):
    """Answers from a responder function or a list of replies (in order; the last one repeats)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # Any, not list[Reply]: pydantic would try to validate a plain string as an AIMessage first.
    replies: list[Any] = Field(default_factory=list)
    responder: Responder | None = None
    tokens_per_char: float = 0.25
    _tools: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _calls: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _position: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every request the model received: ``{"messages", "tools"}`` (shared by bound copies)."""
        return self._calls

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any], *, tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:  # fmt: skip
        """A copy that offers ``tools`` (and records them with each call)."""
        bound = self.model_copy()
        bound._tools = [t for t in tools if isinstance(t, dict)]
        bound._calls = self._calls
        bound._lock = self._lock
        bound._position = 0
        bound.__dict__["_shared"] = self
        return bound

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        owner: ScriptedChatModel = self.__dict__.get("_shared", self)
        with owner._lock:
            owner._calls.append({"messages": list(messages), "tools": list(self._tools)})
            if self.responder is not None:
                reply: Reply = self.responder(list(messages), list(self._tools))
            elif self.replies:
                reply = self.replies[min(owner._position, len(self.replies) - 1)]
                owner._position += 1
            else:
                reply = "I have nothing scripted to say."
        message = AIMessage(content=reply) if isinstance(reply, str) else reply.model_copy()
        prompt = sum(len(str(m.content)) for m in messages)
        message.usage_metadata = {
            "input_tokens": max(1, int(prompt * self.tokens_per_char)),
            "output_tokens": max(1, int(len(str(message.content)) * self.tokens_per_char)),
            "total_tokens": 0,
        }
        message.usage_metadata["total_tokens"] = (
            message.usage_metadata["input_tokens"] + message.usage_metadata["output_tokens"]
        )
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._next(messages)
        text = str(message.content)
        pieces = [text[i : i + 8] for i in range(0, len(text), 8)] or [""]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            chunk = AIMessageChunk(
                content=piece,
                tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["args"]), "id": c.get("id"), "index": n}
                    for n, c in enumerate(message.tool_calls)
                ]
                if last
                else [],
                usage_metadata=message.usage_metadata if last else None,
            )
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=ChatGenerationChunk(message=chunk))
            yield ChatGenerationChunk(message=chunk)
