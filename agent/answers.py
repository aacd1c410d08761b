"""What the user reads at the end of a turn: answers grounded in the tools' own words, refusals, questions back.

A small model's summary of a tool result drops items, repeats the prompt or narrates the call ("you can
call the `vm_list` function ..."). So the tools' own summaries (each tool writes one line or a short
list for people) are shown under the model's sentence, and a model answer that is not an answer is left
out. Refusals (policy, a checker, a backend) and changes are reported in the guard's and the tools' words,
without asking the model to paraphrase them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk

from agent.claims import Problem
from agent.compact import asked_fields, named_records
from agent.state import AgentState, Turn
from agent.steering import UNSURE
from agent.toolcalls import model_name

__all__ = [
    "COULD_NOT_FIND",
    "as_message",
    "clarify_question",
    "fallback_answer",
    "junk_reason",
    "left_out_note",
    "read_answer",
    "report_text",
    "sources_line",
]

_NARRATION = re.compile(
    r"\b(?:you can|you could|you would|i will|i would|i called|i have called|i need to|to answer this|to find|"
    r"to determine|to get|to check|let me)\b[^.]{0,80}\b(?:call|use|run|calling|using|query|check)\b|\bfunction\b",
    re.I,
)


_REPORTS = "Here is what the lab reports:"
COULD_NOT_FIND = "I could not find that: nothing in the lab's documentation or tools answers it."
_STILL_UNSURE = "says it does not know although the tools answered"
_NOT_IN_DOCS = "That is not in the lab's documentation. What the lab's tools report (it may not answer the question):"


def as_message(chunk: AIMessageChunk) -> AIMessage:
    """A complete message from the streamed chunks."""
    return AIMessage(
        content=chunk.content,
        tool_calls=chunk.tool_calls,
        usage_metadata=chunk.usage_metadata,
        response_metadata=chunk.response_metadata,
    )


def fallback_answer(state: AgentState) -> str:
    """When the model says nothing: what the tools found this turn, or that there is no answer."""
    turn = state.get("turn") or {}
    found = [f"{e['name']}: {e['message']}" for e in turn.get("log", []) if e["status"] in ("ok", "no_data")]
    if found:
        return f"{_REPORTS}\n" + "\n".join(found)
    done = report_text(turn.get("log", []))
    tried = [e for e in turn.get("log", []) if e["status"] not in ("ok", "no_data")]
    if done or tried:
        # Nothing answered, and a call was refused: why, in the refusal's words (the model's last try, if every
        # try was one it could have corrected: "num_gpus: less than or equal to 1").
        return done or report_text([{**tried[-1], "repairable": False}])
    if turn.get("passages"):
        p = turn["passages"][0]
        return f"The closest passage of the documentation, {p['citation']}, says: {' '.join(p['text'].split())[:400]}"
    return "I do not know: neither the lab's documentation nor its tools answer this."


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def echo_reason(answer: str, *, question: str, user: str) -> str | None:
    """Why an answer is the prompt given back (the question, or the "I am <user>" line), or None."""
    text = answer.strip()
    asked = _squash(question)
    if len(asked) >= 12 and asked in _squash(text):
        return "repeats the question"
    if re.match(rf"^i am {re.escape(user.lower())}\b", text.lower()):
        return "repeats the prompt"
    return None


def junk_reason(answer: str, *, question: str, user: str, tools: list[str]) -> str | None:
    """Why a model's answer after tool results is not an answer for the user (None: it is one)."""
    text = answer.strip()
    if not text or text.startswith(_REPORTS):
        return "empty"  # or the stand-in for an empty answer (fallback_answer), which the summaries repeat
    echoed = echo_reason(text, question=question, user=user)
    if echoed is not None:
        return echoed
    if _NARRATION.search(text):
        return "describes calling a tool instead of answering"
    if any(model_name(name) in text for name in tools):
        return "names a tool instead of answering"
    if UNSURE.search(text):
        return _STILL_UNSURE
    return None


def _tool_lines(log: list[dict[str, Any]], question: str, keys: Collection[str]) -> list[str]:
    """Each answering call's summary, and under it the rows of its data the question names (or the fields)."""
    lines = []
    for entry in log:
        if entry["status"] in ("ok", "no_data"):
            lines.append(f"- {entry['name']}: {entry['message']}")
            lines += [f"  - {record}" for record in named_records(entry.get("data"), question, keys)]
            lines += [f"  - {field}" for field in asked_fields(entry.get("data"), question, str(entry["message"]))]
    return lines


def read_answer(model_text: str, turn: Turn, *, question: str, user: str, keys: Collection[str] = ()) -> str:
    """The answer to a question the read tools answered: the model's words if they are an answer, then theirs.

    Under the tools' summaries stand the rows the question names by an identity field ``keys`` (``vmid``,
    ``name``, ``node``): "how much memory is free on node02" shows node02's row from the tool's data,
    whatever the model made of it. When the tools were a second try after the passages did not answer
    (``docs_answer``), a model that still does not know is believed (the tools' lines stand under its words).
    """
    lines = _tool_lines(turn.get("log", []), question, keys)
    if not lines and turn.get("docs_answer"):
        # The tools were a second try after the pages said nothing, and no call answered either.
        return COULD_NOT_FIND
    if not lines:
        # No call answered (refused, failed): the model's words stand, unless they give the prompt back.
        if echo_reason(model_text, question=question, user=user) is None:
            return model_text.strip()
        done = report_text(turn.get("log", []))
        return done or COULD_NOT_FIND
    reason = junk_reason(model_text, question=question, user=user, tools=[e["name"] for e in turn.get("log", [])])
    second_try = bool(turn.get("docs_answer"))
    believed = second_try and reason == _STILL_UNSURE
    body = model_text.strip() if reason is None or believed else ""
    facts = "\n".join(lines)
    # A second try whose model answer said nothing that stands: the tools' lines are what was tried, not an answer.
    lead = _NOT_IN_DOCS if second_try else _REPORTS
    text = f"{body}\n\nFrom the lab:\n{facts}" if body else f"{lead}\n{facts}"
    # Only pages the words cite: a page retrieved beside the tools, not used, is no source of this answer.
    docs = sources_line({"passages": turn.get("passages", [])}, text, cited_only=True)
    return f"{text}\n\n{docs}" if docs else text


# What a left-out claim was, in words; the claim itself is not repeated: an invented VM's name or a wrong number
# shown under the answer, even as left out, is read as said (and is found by anyone searching the answer for it).
_ABOUT = {"number": "a number", "id": "a name or id", "ref": "an id", "time": "a time", "date": "a date",
          "state": "a state", "address": "an address", "code": "a command", "sentence": "a statement",
          "citation": "a citation", "expansion": "what an abbreviation stands for",
          "verdict": "a yes or no"}  # fmt: skip


def left_out_note(dropped: list[Problem]) -> str:
    """The note under an answer whose model sentences were left out for stating what no evidence supports.

    It says how many sentences, and what in them had no source or contradicted the tools' data (a number, a
    name, a command); the statements themselves are in the turn's ``grounding`` (``labops ask --json``, the eval
    reports), not repeated under the answer.
    """

    def kinds(problem_kind: str) -> str:
        return ", ".join(dict.fromkeys(_ABOUT[p.about] for p in dropped if p.kind == problem_kind))

    parts = []
    if kinds("unsourced"):
        parts.append(f"{kinds('unsourced')} found in no tool result, passage or message of yours")
    if kinds("contradiction"):
        parts.append(f"{kinds('contradiction')} that the tools' data states otherwise")
    count = len({p.sentence for p in dropped})
    return f"_(Left out {count} sentence(s) of the model's: {'; '.join(parts)}.)_"


def report_text(log: list[dict[str, Any]]) -> str:
    """What the turn's calls did, in their own words: results, and what was not done and why."""
    lines = []
    for entry in log:
        if entry.get("repairable"):
            continue  # a call the model corrected or dropped later in the turn
        if entry["status"] in ("ok", "no_data"):
            lines.append(str(entry["message"]))
        elif entry["status"] == "denied":
            lines.append(f"Not done (refused by policy): {entry['message']}")
        else:
            lines.append(f"Not done: {entry['message']}")
    return "\n".join(lines)


def clarify_question(tool_name: str, missing: list[tuple[str, str]]) -> str:
    """A question back when a change lacks something only the user can say (which VM, what name)."""
    # The field's description without its examples: "e.g. 130" reads as a fact about a VM nobody named.
    described = [(name, re.sub(r"[,;]?\s*\(?\b(?:e\.g\.|for example)[^)]*\)?", "", d).strip().rstrip(".,;"))
                 for name, d in missing]  # fmt: skip
    wanted = "; ".join(f"{name} ({description})" if description else name for name, description in described)
    action = tool_name.split(".")[-1]
    first = missing[0][0].replace("_", " ")
    # A name for something new is chosen, not picked out: "which name do you mean?" asked for one that exists.
    question = f"What {first} should it have?" if first.endswith("name") else f"Which {first} do you mean?"
    return f"Before I {action} anything I need to know more: {wanted}. I will not guess this for a change. {question}"


def sources_line(turn: Turn, answer: str, *, cited_only: bool = False) -> str:
    """The deterministic sources line: documents offered (and cited) and the tools whose data answered.

    The documents the answer cites; when it cites none, every one offered, unless ``cited_only``.
    """
    parts = []
    cites = [p["citation"] for p in turn.get("passages", [])]
    used = [c for c in cites if c in answer] or ([] if cited_only else cites)
    if used:
        parts.append("Sources: " + ", ".join(dict.fromkeys(used)))
    tools = [e["name"] for e in turn.get("log", []) if e["status"] in ("ok", "no_data")]
    if tools:
        parts.append("Data from: " + ", ".join(dict.fromkeys(tools)))
    return "\n".join(parts)
