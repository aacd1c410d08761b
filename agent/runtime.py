"""The agent the channels call: one turn at a time per thread, streamed or collected, paused and resumed.

``Agent.stream`` yields events as the turn runs (``token``, ``retrieved``, ``tool_call``, ``tool_result``,
``approval``, ``notice``) and ends with ``done`` carrying a :class:`TurnResult`; ``Agent.ask`` is the same
path collected. A turn that needs an approval pauses; ``Agent.resume_approval`` continues the waiting
thread once an approver decided (from any channel or replica). The requester's identity comes from the
channel (``Caller``), never from the model; a thread belongs to the user and channel that started it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Command

from agent.checkpoints import open_checkpointer
from agent.evidence import audit, turn_evidence, turn_passages
from agent.graph import AgentDeps, build_graph
from agent.labnames import LabNames
from agent.models import ModelInfo, chat_model, close_model
from agent.routing import Router
from agent.spelling import Speller
from agent.state import Turn, new_turn
from agent.toolselect import ToolSelector, vocabulary
from agent.waits import Waits
from core.config import Settings
from core.endpoints import ollama_url
from core.errors import ConfigError, IdentityError, LabOpsError
from policies.guard import Caller, Guard
from tools.registry import all_tools, toolsets

__all__ = ["Agent", "TurnResult"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class TurnResult:
    """What one turn did (``labops ask --json`` prints this)."""

    thread: str
    status: Literal["answered", "needs_approval", "busy"]
    answer: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    model: str = ""
    latency_s: float = 0.0
    tokens: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    model_calls: int = 0
    # Why the turn ended early, when it did: "model_unavailable", "step_limit", ... (None: it answered).
    stop: str | None = None
    # Where the answer's facts may come from: the tool results (message and bounded data) and the passages.
    sources: dict[str, Any] = field(default_factory=dict)
    # The grounding audit of the answer shown: statements left out before it was shown, and any problem left in.
    grounding: dict[str, Any] = field(default_factory=dict)
    # The message as the agent read it (translated to English, what "it" stands for) and where it sent it.
    read_as: str = ""
    route: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


class Agent:
    """The LangGraph agent over the guard, the docs and a chat model."""

    def __init__(
        self,
        settings: Settings,
        *,
        model: BaseChatModel | None = None,
        guard: Guard | None = None,
        docs: Any = None,
        embedder: Any = None,
        checkpointer: Any = None,
    ) -> None:
        self.settings = settings
        self._owns_docs = docs is None
        if docs is None:
            from knowledge.service import DocsService

            docs = DocsService(settings, embedder=embedder)
        self.docs = docs
        self.guard = guard or Guard.from_settings(settings, services={"docs": docs})
        self.guard.context.services.setdefault("docs", docs)
        # A model handed in belongs to the caller (e.g. the eval runner shares one across agents): not closed here.
        self._owns_model = model is None
        if model is not None and settings.llm.provider != "scripted":
            self.model: BaseChatModel = model
            self.model_info = ModelInfo(provider="given", model=type(model).__name__, url=None)
        else:
            self.model, self.model_info = chat_model(settings, scripted=model)
        if embedder is None:
            try:
                from knowledge.embeddings import embedder_for

                embedder = embedder_for(settings)
            except LabOpsError as exc:
                log.warning("tool retrieval without embeddings: %s", exc)
                embedder = None
        tools = all_tools(settings)
        sets = toolsets(settings)
        self.deps = AgentDeps(
            settings=settings,
            guard=self.guard,
            model=self.model,
            tools=tools,
            selector=ToolSelector(tools, embedder, sets),
            speller=Speller(vocabulary(tools, sets)),
            router=Router(
                settings=settings,
                tools=tools,
                toolsets=sets,
                names=LabNames(guard=self.guard, tools=tools),
                model=lambda: self.model,
            ),
            docs=docs,
        )
        self.deps.refresh = self.refresh_model
        self._retired: list[BaseChatModel] = []
        self._model_lock = threading.Lock()
        self._close_checkpointer = None
        if checkpointer is None:
            checkpointer, self._close_checkpointer = open_checkpointer(settings)
        self.checkpointer = checkpointer
        self.graph = build_graph(self.deps, checkpointer)
        self.waits = Waits.from_settings(settings)
        self._thread_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def refresh_model(self) -> bool:
        """Look up the embedded lab's model server again; True when it moved and the client now points there.

        Only an address this agent resolved itself from the embedded lab is looked up again (``llm.ollama_url``
        set means a real host the operator chose). The old client is closed with the agent: a turn in another
        thread may still be reading from it.
        """
        llm = self.settings.llm
        if not self._owns_model or llm.provider != "ollama" or llm.ollama_url:
            return False
        try:
            url = ollama_url(self.settings)
        except ConfigError:
            return False
        with self._model_lock:
            if url == self.model_info.get("url"):
                return False
            log.warning("the model server moved from %s to %s", self.model_info.get("url"), url)
            self._retired.append(self.model)
            self.model, self.model_info = chat_model(self.settings)
            self.deps.model = self.model
        return True

    def warm_up(self) -> float | None:
        """Have the model server cache the long start every tool prompt shares; seconds taken (None: not done)."""
        return self.deps.warm_up()

    def close(self) -> None:
        """Release the model's HTTP client, the checkpoint store and the docs store."""
        if self._owns_model:
            for model in (*self._retired, self.model):
                close_model(model)
        if self._close_checkpointer is not None:
            self._close_checkpointer()
        close = getattr(self.docs, "close", None)
        if self._owns_docs and callable(close):
            close()

    # --- threads --------------------------------------------------------------------------------------
    @staticmethod
    def new_thread() -> str:
        """A fresh thread id."""
        return "thr_" + uuid.uuid4().hex[:16]

    def _config(self, thread: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread}, "recursion_limit": 100}

    def _lock(self, thread: str) -> threading.Lock:
        with self._locks_guard:
            return self._thread_locks.setdefault(thread, threading.Lock())

    def pending(self, thread: str) -> dict[str, Any] | None:
        """The approval this thread waits for, or None."""
        snapshot = self.graph.get_state(self._config(thread))
        for task in snapshot.tasks:
            for item in task.interrupts:
                value = item.value
                if isinstance(value, dict):
                    return value
        return None

    def history(self, thread: str) -> list[dict[str, str]]:
        """The user turns and answers of a thread."""
        values = self.graph.get_state(self._config(thread)).values
        out = []
        for m in values.get("messages", []):
            if isinstance(m, HumanMessage):
                out.append({"role": "user", "content": str(m.content)})
            elif isinstance(m, AIMessage) and not m.tool_calls:
                out.append({"role": "assistant", "content": str(m.content)})
        return out

    def _check_owner(self, thread: str, caller: Caller) -> dict[str, Any]:
        values: dict[str, Any] = self.graph.get_state(self._config(thread)).values
        owner = values.get("user")
        if owner is not None and (owner != caller.user or values.get("channel") != caller.channel):
            raise IdentityError(f"thread {thread} belongs to another user or channel; start a new thread")
        return values

    # --- a turn ----------------------------------------------------------------------------------------
    def stream(
        self, text: str, *, caller: Caller, thread: str | None = None, request_id: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Run one turn, yielding events; the last event is ``{"type": "done", "result": TurnResult}``."""
        thread = thread or self.new_thread()
        if not text.strip():
            raise LabOpsError("the message is empty: ask a question or give an instruction")
        started = time.monotonic()
        with self._lock(thread):
            values = self._check_owner(thread, caller)
            waiting = self.pending(thread)
            if waiting is not None:
                approvers = list(waiting.get("approvers") or [])
                who = (
                    approvers[0]
                    if len(approvers) == 1
                    else "one of " + ", ".join(approvers)
                    if approvers
                    else (f"a user with role {waiting.get('role')}")
                )
                answer = (
                    f"This conversation is waiting for approval {waiting.get('approval_id')} "
                    f"({waiting.get('summary')}). It continues as soon as {who} decides; nothing else runs here "
                    "until then."
                )
                yield {"type": "token", "text": answer}
                result = TurnResult(thread=thread, status="busy", answer=answer, pending=waiting,
                                    model=self.model_info.get("model", ""))  # fmt: skip
                yield {"type": "done", "result": result}
                return
            start = len(values.get("messages", [])) + 1
            state_in = {
                "messages": [HumanMessage(content=text, id=f"user-{uuid.uuid4().hex[:12]}")],
                "user": caller.user,
                "channel": caller.channel,
                "turn": new_turn(
                    text, start, request_id or caller.request_id, real_user=caller.real_user, origin=caller.origin
                ),
            }
            yield from self._run(state_in, thread, caller, started)

    def resume(self, thread: str, decision: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Continue a paused thread with an approver's ``decision`` (``{"decision": "approved"|"denied", ...}``)."""
        started = time.monotonic()
        with self._lock(thread):
            values = self.graph.get_state(self._config(thread)).values
            caller = Caller(user=values.get("user", "anonymous"), channel=values.get("channel", "chat"))
            if self.pending(thread) is None:
                raise LabOpsError(f"thread {thread} is not waiting for an approval")
            yield from self._run(Command(resume=decision), thread, caller, started)

    def resume_approval(
        self, approval_id: str, *, decision: Literal["approved", "denied", "expired"], by: str, reason: str = ""
    ) -> TurnResult | None:
        """Continue the thread waiting for ``approval_id`` (exactly once); None when no thread waits for it."""
        wait = self.waits.find(approval_id)
        if wait is None or wait["resumed"] is not None:
            return None
        if not self.waits.claim_resume(wait["approval_id"]):
            return None
        try:
            result: TurnResult | None = None
            payload = {"decision": decision, "by": by, "reason": reason, "approval_id": wait["approval_id"]}
            for event in self.resume(wait["thread_id"], payload):
                if event["type"] == "done":
                    result = event["result"]
            if result is not None:
                self.waits.complete(wait["approval_id"], result.answer)
            return result
        except BaseException:
            self.waits.release(wait["approval_id"])
            raise

    def ask(self, text: str, *, caller: Caller, thread: str | None = None, request_id: str | None = None) -> TurnResult:
        """One turn, collected (the same path as :meth:`stream`)."""
        for event in self.stream(text, caller=caller, thread=thread, request_id=request_id):
            if event["type"] == "done":
                result: TurnResult = event["result"]
                return result
        raise RuntimeError("the turn ended without a result")

    def _run(self, graph_input: Any, thread: str, caller: Caller, started: float) -> Iterator[dict[str, Any]]:
        config = self._config(thread)
        for mode, data in self.graph.stream(graph_input, config, stream_mode=["custom", "updates"]):
            if mode == "custom":
                yield data
            elif isinstance(data, dict) and "__interrupt__" in data:
                for item in data["__interrupt__"]:
                    value = dict(item.value) if isinstance(item.value, dict) else {"value": item.value}
                    if value.get("approval_id"):
                        self.waits.add(value["approval_id"], thread_id=thread, requester=caller.user,
                                       channel=caller.channel)  # fmt: skip
                    yield {**value, "type": "approval", "thread": thread}
        yield {"type": "done", "result": self._result(thread, started)}

    def _result(self, thread: str, started: float) -> TurnResult:
        snapshot = self.graph.get_state(self._config(thread))
        values = snapshot.values
        turn = values.get("turn") or {}
        pending = self.pending(thread)
        messages = values.get("messages", [])
        answer = ""
        if pending is not None:
            answer = str(pending.get("message", ""))
        elif messages and isinstance(messages[-1], AIMessage):
            answer = str(messages[-1].content)
        log_entries = list(turn.get("log", []))
        tools = [
            {k: e.get(k) for k in ("name", "args", "status", "message", "data")}
            for e in log_entries
            if e.get("status") in ("ok", "no_data")
        ]
        shown = turn_passages(cast(Turn, turn))
        passages = [{"citation": p.get("citation"), "text": p.get("text")} for p in shown]
        problems = audit(answer, turn_evidence(values), cite=bool(log_entries)) if pending is None else []
        return TurnResult(
            thread=thread,
            status="needs_approval" if pending is not None else "answered",
            answer=answer,
            tool_calls=[{k: e.get(k) for k in ("name", "args", "status", "message")} for e in log_entries],
            decisions=[{"tool": e["name"], "outcome": e["status"]} for e in log_entries],
            citations=[str(p["citation"]) for p in shown],
            pending=pending,
            model=str(self.model_info.get("model", "")),
            latency_s=round(time.monotonic() - started, 3),
            tokens=int(turn.get("tokens", 0)),
            tokens_in=int(turn.get("tokens_in", 0)),
            tokens_out=int(turn.get("tokens_out", 0)),
            model_calls=int(turn.get("model_calls", 0)),
            stop=turn.get("stop"),
            sources={"tools": tools, "passages": passages},
            grounding={
                "left_out": list((turn.get("grounding") or {}).get("dropped", [])),
                "unsourced": [p.as_dict() for p in problems if p.kind == "unsourced"],
                "contradictions": [p.as_dict() for p in problems if p.kind == "contradiction"],
            },
            read_as=str(turn.get("asked") or turn.get("text", "")),
            route=dict(turn.get("route") or {}),
        )
