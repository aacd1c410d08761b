"""The nodes that ask: ``retrieve`` (:mod:`agent.node_retrieve`) and ``model`` (one model call).

- ``model``: one call in one of four modes (quote: pick the documentation's sentences that answer, constrained;
  docs: write the answer from passages, no tools; pick: one JSON call or answer, constrained; free); tool calls
  are parsed from any shape and queued. After tool results the answer is held back for
  :func:`agent.answers.read_answer` to check and ground.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage

from agent.answers import as_message, fallback_answer
from agent.context import caller_of
from agent.cues import BARE_NUMBER
from agent.events import emit as _emit
from agent.names import each_named, each_own
from agent.node_retrieve import RetrieveNodes
from agent.prompts import SYSTEM_PROMPT, format_passages, tool_definition
from agent.quotes import Quotable, quotable
from agent.ranking import focused
from agent.state import AgentState, Turn
from agent.steering import UNSURE, constrains, constraint, schema_options
from agent.toolcalls import ProposedCall, extract_calls, model_name
from core.errors import BackendUnavailable, LabOpsError

log = logging.getLogger(__name__)


def _unreachable(exc: BaseException) -> bool:
    """Whether a model client's exception means the server could not be reached (not a bug, not a bad answer)."""
    # ollama's client turns httpx's ConnectError into the built-in ConnectionError; langchain-openai raises
    # openai.APIConnectionError, which wraps httpx's error as its cause.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionError | TimeoutError | httpx.TransportError):
            return True
        if type(seen).__name__ in ("APIConnectionError", "APITimeoutError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(kw_only=True)
class ModelNodes(RetrieveNodes):
    """The model call."""

    def _asker(self, state: AgentState) -> str:
        user = state.get("user", "anonymous")
        assert self.deps.guard.engine is not None
        roles = ", ".join(self.deps.guard.engine.user(user).roles) or "unknown user"
        return f"{user} ({roles})"

    def _quotable(self, turn: Turn) -> Quotable | None:
        embedder = self.deps.selector.embedder
        about = str(turn.get("asked") or turn["text"])
        return quotable(about, list(turn["passages"]), embed=embedder.embed if embedder is not None else None)

    def prompt(self, state: AgentState, offer: Quotable | None = None) -> list[BaseMessage]:
        """The messages for the model: system prompt, recent history, passages and the question.

        With ``offer`` (quote mode): the numbered sentences and the question, nothing else.
        """
        if offer is not None:
            return offer.messages(self._asker(state))
        turn = state["turn"]
        messages = list(state.get("messages", []))
        start = int(turn["start"])
        earlier, current = messages[: start - 1], messages[start - 1 :]
        # Earlier turns: questions and answers only (their tool chatter would crowd the small context).
        history = [m for m in earlier if isinstance(m, HumanMessage) or (isinstance(m, AIMessage) and not m.tool_calls)]
        history = history[-6:]
        passages = list(turn["passages"])
        if self.bounds.focus_passages and passages:
            embedder = self.deps.selector.embedder
            about = str(turn.get("asked") or turn["text"])
            passages = focused(about, passages, embed=embedder.embed if embedder is not None else None)
        block = format_passages(passages)
        first, *rest = current
        # The message as the agent read it: translated to English, with what a follow-up's "it" stands for.
        said = str(turn.get("asked") or first.content)
        asked = f"I am {self._asker(state)}. {said}"
        question = HumanMessage(content=f"{block}\n\n{asked}" if block else asked)
        return [SystemMessage(content=SYSTEM_PROMPT), *history, question, *rest]

    def mode_of(self, turn: Turn) -> str:
        """The call's mode: quote or docs (from the passages), pick (one tool or an answer, constrained) or free.

        quote: the model picks the sentences that answer; docs: it writes the answer; neither offers tools.
        """
        first = int(turn["model_calls"]) == 0
        if first and turn.get("asks_docs"):
            # Quoting needs a reply kept to a schema; the scripted test model (and any server that does not
            # constrain) writes the answer instead.
            quote = self.bounds.docs_answers == "quote" and constrains(self.settings)
            return "quote" if quote else "docs"
        tool_results = any(e.get("status") for e in turn["log"])
        if self.bounds.constrained_calls and not tool_results and not turn.get("repairs"):
            return "pick"
        return "free"

    def _unavailable(self, turn: Turn, exc: Exception) -> dict[str, Any]:
        where = self.settings.llm.ollama_url or "the embedded lab's Ollama"
        why = BackendUnavailable("the language model", f"{type(exc).__name__}: {exc}", setting="llm.ollama_url")
        text = f"I cannot reach the language model ({where}): {why}. Nothing was changed."
        _emit({"type": "token", "text": text})
        turn["stop"] = "model_unavailable"
        return {"messages": [AIMessage(content=text)], "turn": turn}

    def _each_named(self, state: AgentState, turn: Turn, calls: list[ProposedCall]) -> list[ProposedCall]:
        """A first call on one of several things the message names, made for each (``each_named``)."""
        tool = self.deps.tool(calls[0].name) if len(calls) == 1 else None
        if tool is not None and tool.own is not None and tool.risk != "read" and not int(turn.get("steps", 0)):
            mine = each_own(self.deps.guard, caller_of(state), tool, self.deps.tool(tool.own.tool), str(turn["asked"]))
            if mine:
                # The user's words ("all my vms") name these: a change on them is not the model's guess.
                said = {str(v): f"{tool.own.arg} = {v} (one of your {tool.own.what}s)" for v in mine}
                turn["named"] = {**turn.get("named", {}), **said}
                return [calls[0].with_args({**calls[0].args, tool.own.arg: v}) for v in mine]
        several = int(turn.get("names_given", 0)) >= 2 or len(BARE_NUMBER.findall(str(turn["asked"]))) >= 2
        if tool is None or not several or int(turn.get("steps", 0)) > 0:
            return calls
        variants = each_named(self.deps.guard, caller_of(state), tool, calls[0].args, str(turn["asked"]))
        return [calls[0].with_args(v) for v in variants] if len(variants) > 1 else calls

    def _bound(
        self, mode: str, names: tuple[str, ...], must_call: str | None = None, offer: Quotable | None = None
    ) -> Any:
        if mode == "quote" and offer is not None:
            return self.deps.model.bind(**schema_options(self.settings, offer.schema(), name="quote"))
        if mode == "docs":
            return self.deps.model
        if mode == "pick":
            if must_call in names:
                # The message holds that tool's input (an SQL statement): it is called, and says what it makes
                # of it (a write refused as not SELECT), instead of the model explaining how to run it.
                only = [tool_definition(t) for t in self.deps.tools if t.name == must_call]
                return self.deps.bound_model(names).bind(**constraint(self.settings, only, answer=False))
            offered = [tool_definition(t) for t in self.deps.tools if t.name in names]
            return self.deps.bound_model(names).bind(**constraint(self.settings, offered))
        return self.deps.bound_model(names)

    def model(self, state: AgentState) -> dict[str, Any]:
        """One model call; queue the tool calls it makes, or end with its answer."""
        turn = state["turn"].copy()
        names = tuple(turn["tools"])
        mode = self.mode_of(turn)
        offer = self._quotable(turn) if mode == "quote" else None
        if mode == "quote" and offer is None:
            mode = "docs"  # no sentence to offer (passages of a table's separators only): the model writes
        turn["modes"] = [*turn.get("modes", []), mode]
        started = time.monotonic()
        acc: AIMessageChunk | None = None
        # Nothing is streamed from here: an answer is checked against the turn's evidence before anyone sees it
        # (respond shows it), and a tool call written as text is never shown at all.
        retried = False
        while True:
            try:
                for chunk in self._bound(mode, names, turn.get("must_call"), offer).stream(self.prompt(state, offer)):
                    acc = chunk if acc is None else acc + chunk
                break
            except LabOpsError:
                raise
            except Exception as exc:  # boundary: the model server's client raised (down, timeout, bad answer)
                unreachable = _unreachable(exc)
                # An embedded lab's model server that restarted elsewhere is looked up again, once.
                if unreachable and acc is None and not retried and self.deps.refresh_model():
                    retried = True
                    log.info("the model server moved; asking it at its new address")
                    continue
                if unreachable:
                    # The user is told; a refused connection's traceback helps nobody at a terminal.
                    log.warning("model call failed: %s: %s", type(exc).__name__, exc)
                else:
                    log.warning("model call failed", exc_info=True)
                return self._unavailable(turn, exc)
        duration = time.monotonic() - started
        message = AIMessage(content="") if acc is None else as_message(acc)
        usage: dict[str, Any] = dict(message.usage_metadata or {})
        turn["tokens"] = int(turn["tokens"]) + int(usage.get("total_tokens", 0))
        turn["tokens_in"] = int(turn.get("tokens_in", 0)) + int(usage.get("input_tokens", 0))
        turn["tokens_out"] = int(turn.get("tokens_out", 0)) + int(usage.get("output_tokens", 0))
        turn["model_calls"] = int(turn["model_calls"]) + 1
        if self.deps.on_model_call is not None:
            self.deps.on_model_call(duration, usage)
        calls: list[ProposedCall] = []
        if offer is not None:
            chosen = offer.chosen(str(message.content))
            if chosen is None:
                log.warning("the model's sentence choice was no JSON list of numbers: %.200s", message.content)
            turn["quoted"] = [r.citation for r in chosen or []]
            text = offer.answer(chosen or [])
        else:
            calls, text = extract_calls(message, set(names) | {t.name for t in self.deps.tools})
            calls = self._each_named(state, turn, calls)
        if not calls and not text.strip():
            text = fallback_answer(state)
        fits = float(turn.get("tool_fit", 0.0)) >= self.deps.offtopic_floor
        if mode in ("docs", "quote") and not calls and UNSURE.search(text) and turn["tools"] and fits:
            # The passages did not answer it: try the tools once before saying so, unless no tool fits the message
            # better than small talk would: "How much did the lab spend on hardware in 2024?" (best tool 0.28) got
            # backup.status and its summary as the answer. The floor is the small-talk one, not tool_fit_floor:
            # "anything stopped right now?" (0.40) needs vm.list after the pages said nothing.
            turn["asks_docs"] = False
            turn["docs_answer"] = text
            return {"turn": turn}
        if not calls:
            return {
                "messages": [AIMessage(content=text or "(no answer)", usage_metadata=message.usage_metadata)],
                "turn": turn,
            }
        # A text call becomes a native one in the history, so the model sees the right form next time.
        recorded = AIMessage(
            content=text,
            tool_calls=[{"name": model_name(c.name), "args": c.args, "id": c.id, "type": "tool_call"} for c in calls],
            usage_metadata=message.usage_metadata,
        )
        turn["queue"] = [c.as_dict() for c in calls]
        return {"messages": [recorded], "turn": turn}
