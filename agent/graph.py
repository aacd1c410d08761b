"""The agent's graph: retrieve → model → (guard → approval → execute)* → model … → respond.

- ``retrieve``: documentation passages when the question is about how the lab works, and the tools to
  offer (tool retrieval).
- ``model``: one model call; tool calls are parsed from any shape (:mod:`agent.toolcalls`) and queued.
- ``guard``: the next queued call is repaired where unambiguous, validated, checked against what the user
  asked (:mod:`agent.intent`), then authorized by the policy guard: allowed, needs approval, or refused.
- ``approval``: a LangGraph ``interrupt``; resumed with ``Command(resume=...)`` once an approver decided.
  It changes nothing itself, so a resumed graph cannot repeat a side effect.
- ``execute``: the only node with side effects (``Guard.execute``), after the approval node. The tool
  call's id is the request key, so a process killed mid-call is resumed, not repeated.
- ``respond``: the answer, with its sources. ``answered``: the read tools' results are the answer, in their
  own words, without another model call (``agent.read_answers``). ``bounded``: a bound was hit; the user is told which.

Several calls from one model message go through guard/approval/execute one at a time, so an approval
can only ever reach the call it was given for.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.graph import END, START, StateGraph

from agent.deps import AgentDeps
from agent.intent import asked_for
from agent.node_answers import AnswerNodes
from agent.node_calls import CallNodes
from agent.node_model import ModelNodes
from agent.state import AgentState, Turn
from core.config import AgentSettings

__all__ = ["AgentDeps", "build_graph"]


def _changed_something(log_entries: list[dict[str, Any]], deps: AgentDeps) -> bool:
    """Whether this turn's calls changed the lab (a write or destructive call that succeeded)."""
    for entry in log_entries:
        tool = deps.tool(entry["name"])
        if tool is not None and tool.risk != "read" and entry["status"] == "ok":
            return True
    return False


def _only_refusals(log_entries: list[dict[str, Any]]) -> bool:
    """Whether the turn ends on a refusal or failure the model cannot fix, with nothing that worked."""
    last = log_entries[-1]
    return (
        not last.get("repairable")
        and last["status"] in ("denied", "error")
        and not any(e["status"] in ("ok", "no_data") for e in log_entries)
    )


@dataclass(kw_only=True)
class _Routes:
    """Where a turn goes after each node."""

    bounds: AgentSettings
    deps: AgentDeps

    def after_model(self, state: AgentState) -> str:
        """After a model call: its answer, the queued calls, or another model call (docs first, then tools)."""
        turn = state["turn"]
        if turn.get("stop") == "model_unavailable":
            return END
        if turn.get("docs_answer") and int(turn["model_calls"]) == 1 and not turn["queue"]:
            return "model"
        if not turn["queue"]:
            return "respond"
        if int(turn["tokens"]) >= self.bounds.token_budget:
            return "bounded"
        return "next"

    def next_call(self, state: AgentState) -> str:
        """After a call: the next queued one, a question back, the report, a bound, or the model again."""
        turn = state["turn"]
        if turn["queue"]:
            if int(turn["steps"]) >= self.bounds.max_tool_steps:
                return "bounded"
            return "guard"
        if turn.get("clarify"):
            return "clarify"
        messages = state.get("messages") or []
        if messages and isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls:
            return "respond"  # a step wrote the answer (a repeated read ends with its result: CallNodes.repeat)
        if turn["log"] and (_changed_something(turn["log"], self.deps) or _only_refusals(turn["log"])):
            return "report"
        if int(turn["steps"]) >= self.bounds.max_tool_steps:
            return "bounded"
        if int(turn["tokens"]) >= self.bounds.token_budget:
            return "bounded"
        if int(turn["repairs"]) > 2:
            return "respond_refused"
        if self.reads_answered(turn):
            return "answered"
        return "model"

    def reads_answered(self, turn: Turn) -> bool:
        """Whether the read calls' results are the answer, with no model call to phrase them (agent.read_answers).

        The second model call of a read turn (the tool's result in, a sentence out) took 6-10 s of the 14.6 s
        median read turn on the 2-core machine, and its sentence is checked against the very summaries shown
        under it. A message that also asks for a change ("list the templates and run the first") goes back to
        the model, which makes that call; so does a call the model must repair.
        """
        if self.bounds.read_answers != "tools" or turn.get("docs_answer"):
            # After the passages did not answer, the tools are a second try the model judges: a result that
            # does not answer the question ("How much did the lab spend on hardware?" got backup.status) must
            # not become the answer.
            return False
        log_entries = turn["log"]
        last = log_entries[-1] if log_entries else None
        if last is None or last["status"] not in ("ok", "no_data") or last.get("repairable"):
            return False
        if any((tool := self.deps.tool(e["name"])) is None or tool.risk != "read" for e in log_entries):
            return False
        if turn.get("requested"):
            return False  # a request in undeclared words (agent.requested): the model may still make the change
        asked = str(turn.get("asked") or turn.get("text") or "")
        return not any(tool.risk != "read" and asked_for(tool, asked) for tool in self.deps.tools)

    def after_guard(self, state: AgentState) -> str:
        """Authorized calls run, calls needing approval wait, the rest go back."""
        current = state["turn"].get("current")
        if current is None:
            return self.next_call(state)
        return "execute" if current.get("authorized") else "approval"

    def after_approval(self, state: AgentState) -> str:
        """An approved call runs; a denied one is reported."""
        current = state["turn"].get("current")
        if current is not None and current.get("authorized"):
            return "execute"
        return self.next_call(state)

    def after_retrieve(self, state: AgentState) -> str:
        """Off-topic messages end at once; the rest go to the model."""
        return "offtopic" if state["turn"].get("offtopic") else "model"


def build_graph(deps: AgentDeps, checkpointer: Any) -> Any:
    """The compiled graph."""
    asks, calls, ends = ModelNodes(deps=deps), CallNodes(deps=deps), AnswerNodes(deps=deps)
    routes = _Routes(bounds=deps.settings.agent, deps=deps)
    graph = StateGraph(AgentState)
    for name, fn in (
        ("retrieve", asks.retrieve),
        ("model", asks.model),
        ("guard", calls.guard),
        ("approval", calls.approval),
        ("execute", calls.execute),
        ("respond", ends.respond),
        ("answered", ends.answered),
        ("report", ends.report),
        ("clarify", ends.clarify),
        ("bounded", ends.bounded),
        ("offtopic", ends.offtopic),
        ("respond_refused", ends.refused),
    ):
        graph.add_node(name, fn)
    graph.add_edge(START, "retrieve")
    graph.add_conditional_edges("retrieve", routes.after_retrieve, {"model": "model", "offtopic": "offtopic"})
    route: dict[Hashable, str] = {
        "report": "report",
        "guard": "guard",
        "bounded": "bounded",
        "model": "model",
        "respond_refused": "respond_refused",
        "clarify": "clarify",
        "respond": "respond",
        "answered": "answered",
    }
    graph.add_conditional_edges(
        "model",
        routes.after_model,
        {"respond": "respond", "next": "guard", "bounded": "bounded", "model": "model", END: END},
    )
    graph.add_conditional_edges("guard", routes.after_guard, {**route, "execute": "execute", "approval": "approval"})
    graph.add_conditional_edges("approval", routes.after_approval, {**route, "execute": "execute"})
    graph.add_conditional_edges("execute", routes.next_call, route)
    for end in ("respond", "answered", "report", "clarify", "bounded", "offtopic", "respond_refused"):
        graph.add_edge(end, END)
    return graph.compile(checkpointer=checkpointer)
