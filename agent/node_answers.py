"""The nodes that end a turn: ``respond``, ``report``, ``clarify``, ``bounded``, ``offtopic``, ``refused``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage

from agent.answers import read_answer, report_text, sources_line
from agent.deps import Nodes
from agent.events import emit as _emit
from agent.state import AgentState
from agent.toolcalls import model_name

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class AnswerNodes(Nodes):
    """The turn's last word."""

    def respond(self, state: AgentState) -> dict[str, Any]:
        """The answer: the model's words (checked and grounded in the tools' when tools answered) and sources."""
        turn = dict(state["turn"])
        messages = state.get("messages", [])
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage) or last.tool_calls:
            return {"turn": turn}
        if turn["log"]:
            text = read_answer(str(last.content), turn, question=str(turn["text"]), user=str(state.get("user", "")))
            _emit({"type": "token", "text": text})
            return {
                "messages": [AIMessage(content=text, id=last.id, usage_metadata=last.usage_metadata)],
                "turn": turn,
            }
        footer = sources_line(turn, str(last.content))
        if not footer:
            return {"turn": turn}
        _emit({"type": "token", "text": "\n\n" + footer})
        return {
            "messages": [
                AIMessage(content=f"{last.content}\n\n{footer}", id=last.id, usage_metadata=last.usage_metadata)
            ],
            "turn": turn,
        }

    def bounded(self, state: AgentState) -> dict[str, Any]:
        """A bound was hit (tool steps or tokens): say which, what ran and what did not."""
        turn = dict(state["turn"])
        dropped = list(turn["queue"])
        turn["queue"] = []
        if int(turn["tokens"]) >= self.bounds.token_budget:
            turn["stop"] = "tokens"
            text = (
                f"I stopped: this turn used {turn['tokens']} model tokens, the limit is {self.bounds.token_budget} "
                "(agent.token_budget)."
            )
        else:
            turn["stop"] = "steps"
            text = (
                f"I stopped after {turn['steps']} tool calls, the limit per turn (agent.max_tool_steps = "
                f"{self.bounds.max_tool_steps})."
            )
        if dropped:
            text += " Not run: " + ", ".join(f"{c['name']} {c['args']}" for c in dropped) + "."
        done = [f"{e['name']}: {e['status']}" for e in turn["log"]]
        if done:
            text += " Done so far: " + "; ".join(done) + "."
        text += " Nothing was left half-done; ask again to continue."
        notes = [
            ToolMessage(
                content="not run: the turn's limit was reached", tool_call_id=c["id"], name=model_name(c["name"])
            )
            for c in dropped
        ]
        _emit({"type": "token", "text": text})
        return {"messages": [*notes, AIMessage(content=text)], "turn": turn}

    def report(self, state: AgentState) -> dict[str, Any]:
        """After a change went through, its own report is the answer (no model call to paraphrase it)."""
        turn = dict(state["turn"])
        text = report_text(turn["log"])
        footer = sources_line(turn, text)
        answer = f"{text}\n\n{footer}" if footer else text
        _emit({"type": "token", "text": answer})
        return {"messages": [AIMessage(content=answer)], "turn": turn}

    def offtopic(self, state: AgentState) -> dict[str, Any]:
        """Nothing in the lab's docs or tools answers the message."""
        text = (
            "I don't know: that is not in the lab's documentation, and none of the lab's tools covers it. I can help "
            "with the lab's VMs, backups, Ray jobs, the DESI DR1 tables, and how the lab works (its runbooks and "
            "policies)."
        )
        _emit({"type": "token", "text": text})
        return {"messages": [AIMessage(content=text)], "turn": dict(state["turn"])}

    def clarify(self, state: AgentState) -> dict[str, Any]:
        """Ask the user what a change needs and they did not say."""
        turn = dict(state["turn"])
        text = str(turn.pop("clarify"))
        _emit({"type": "token", "text": text})
        return {"messages": [AIMessage(content=text)], "turn": turn}

    def refused(self, state: AgentState) -> dict[str, Any]:
        """The model could not form a valid call after repairs."""
        turn = dict(state["turn"])
        errors = [e["message"] for e in turn["log"] if e["status"] == "error"][-1:]
        text = "I could not form a valid request for the lab's tools" + (f": {errors[0]}" if errors else "") + "."
        _emit({"type": "token", "text": text})
        return {"messages": [AIMessage(content=text)], "turn": turn}
