"""The graph's state: one conversation thread, owned by one user on one channel.

``messages`` is the conversation as the model sees it (user turns, tool calls, tool results, answers).
``turn`` is the scratch of the turn in progress: the passages and tools offered, the queue of proposed
calls, the call being handled, counters against the bounds, and the log of what ran; a node replaces it
whole (no reducer), so a resumed node starts from the state the checkpoint holds.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

__all__ = ["AgentState", "Turn", "new_turn"]


class Turn(TypedDict, total=False):
    """Scratch of the turn in progress; every key the nodes read or write is declared here."""

    # Set by new_turn from the channel.
    text: str  # the user's message
    start: int  # index of the first message of this turn (after the user's)
    request_id: str | None
    real_user: str | None  # an operator behind --as
    origin: dict[str, Any] | None  # the channel's facts about who asked (audited with every call)
    # retrieve
    asked: str  # the message as the agent reads it: in English, with what a follow-up refers to (agent.referents)
    language: str  # the language the message was written in, when not English (agent.language)
    route: dict[str, str]  # {"route": lab|docs|chat, "why": ...}
    passages: list[dict[str, Any]]  # text, source, section, score, citation
    advice: list[dict[str, Any]]  # passages for the line under a live answer (cues.ADVICE), not shown to the model
    tools: list[str]  # the tool names offered to the model
    asks_docs: bool  # answered from the passages first
    offtopic: bool  # small talk: a friendly answer, no model call
    docs_missing: str  # why no page could be searched (an empty index, a search that failed)
    must_call: str  # the message holds text only this tool takes: the first model call must call it
    requested: str  # a write tool a request in undeclared words asks for (agent.requested): the gate lets it pass
    names_given: int  # how many things the message names by name (more than one: a read is made of each)
    tool_fit: float  # how well the best tool fits the message (toolselect scores, with the route's boosts)
    # model
    modes: list[str]  # the binding used for each model call (quote, docs, pick, free)
    docs_answer: str  # the model's answer from the passages
    quoted: list[str]  # quote mode: the citations of the sentences the model picked (empty: none answers)
    model_calls: int
    tokens: int
    tokens_in: int
    tokens_out: int
    # guard, approval, execute
    queue: list[dict[str, Any]]  # proposed calls not yet handled
    current: dict[str, Any] | None  # the call being handled
    named: dict[str, Any]  # ids the user named by name this turn, with the name (agent.names)
    clarify: str  # a question back to the user (a required value is missing)
    steps: int  # tool calls made, against agent.max_tool_steps
    repairs: int  # calls sent back to the model to be repaired
    log: list[dict[str, Any]]  # what ran: tool, args, status, message, bounded data
    # respond
    grounding: dict[str, Any]  # what the grounding check left out
    stop: str | None  # why the turn ended early (bounded, model_unavailable, ...)


class AgentState(TypedDict, total=False):
    """State of one thread."""

    messages: Annotated[list[AnyMessage], add_messages]
    user: str
    channel: str
    turn: Turn
    things: list[dict[str, Any]]  # what the last turn's results were about, for the next one's "it" (referents)
    awaiting: str  # the question a change asked back (clarify): a short reply completes that request


def new_turn(
    text: str,
    start: int,
    request_id: str | None = None,
    *,
    real_user: str | None = None,
    origin: dict[str, Any] | None = None,
) -> Turn:
    """Scratch for a new turn whose user message is ``messages[start - 1]``.

    ``real_user`` and ``origin`` are the channel's facts about who asked (an operator behind ``--as``, the API
    key, the forwarded or Slack identity): the guard writes them into every audit entry of the turn.
    """
    return Turn(
        text=text,
        start=start,
        request_id=request_id,
        real_user=real_user,
        origin=dict(origin) if origin else None,
        passages=[],
        tools=[],
        queue=[],
        current=None,
        steps=0,
        repairs=0,
        tokens=0,
        tokens_in=0,
        tokens_out=0,
        model_calls=0,
        log=[],
        named={},
        stop=None,
    )
