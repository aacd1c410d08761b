"""A request in words no tool declares: the model names the change, and the request's meaning must agree.

A tool that changes the lab declares how people ask for it (``Tool.asks``), and the intent gate
(:mod:`agent.intent`) lets a change run only when the person asked for it in such words. People ask in more words
than any list holds: "could you power down void-analysis", "fire off parallel-sum", "I need a box for a
tutorial", "snapshot 131 to pbs". Of 20 requests written on 2026-12-07 before anything was changed for them
(evals/scenarios/dev/explore7.yaml), 8 failed, 6 of them this way (the model read the VM, or listed the templates,
instead of acting).

For a message that reads as a request (not a question, not a request to see something) and holds none of
the changes' asking phrases, the lab's model is asked, constrained to a JSON object, whether the message tells
the assistant to do something and which of the write tools it asks for. Asked to pick a change, the small model
picks one for nearly any message; so its answer counts only when a second, independent reading agrees: the
change whose declared words (description, asking phrases) fit the message best by meaning
(:mod:`agent.toolselect`'s scores). Even then the change is only offered, not forced: the model, shown it beside
the reads, chooses the call. Measured on 20 messages written after the prompt was settled (docs/agent.md): of
10 questions or requests to see something, one was read as a change (the model then read, and changed
nothing); of 7 requests in words no tool declares, 2 were read right, 4 not at all (the turn goes on as before),
and one as another change (a job for "cycle void-analysis"; nothing ran without a template named).

What is taken here only lets the gate pass the one tool named, for this message; policy, quotas and approvals
decide as for any other request. Only the user's own message is read (translated when it is in another
language): a document or a tool result cannot ask for a change through it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from agent.intent import asks_in_words, requests
from agent.steering import json_reply
from core.config import Settings
from tools.base import Tool

__all__ = ["request_form", "requested_change"]

log = logging.getLogger(__name__)

# A request to see something asks for no change: "show me vm 130", "list my jobs", "check the backups",
# "tell me about ...", "gimme the logs", "explain ...".
_TO_SEE = re.compile(
    r"^\W*(?:(?:please|pls|plz|ok|okay|hey|hi)\W+)?(?:(?:can|could|would|will) (?:you|u)\s+(?:please\s+)?)?"
    r"(?:show|list|display|print|check|count|find|look|see|search|tell|give me|gimme|get me|explain|describe"
    r"|summari[sz]e|report|what|which|how|why|when|where|who"
    r"|i (?:need|want|would like|'d like) to (?:know|see|understand)"
    # Asking what one may or must do: "can i ssh straight into the proxmox hosts"; but "could i get a fresh vm
    # named spec-fit-2" asks for a thing to be made (not for "a list", "a look" or "a summary" of things).
    r"|(?:can|could|may|might|should|must|do|does|did) (?:i|we|they|it)"
    r"(?!\s+(?:please\s+)?(?:get|have|grab|borrow)\s+(?:a|an|another|one|two|three|\d+|some)\s+"
    r"(?!list\b|look\b|summary\b|count\b|report\b|overview\b|quick look\b))"
    r"|am i|are we)\b",
    re.I,
)
# Put to the assistant ("can you ...?", "please ...?") a question mark still ends a request.
_PUT_TO_YOU = re.compile(r"\b(?:you|u|please|pls|plz)\b", re.I)

_PROMPT = (
    "You sort the messages a research computing lab's members send to the lab's assistant.\n"
    '"kind" is "do" when the message tells or asks the assistant to do something to the lab now (start, stop, '
    "restart or create a VM, run or stop a job, back a VM up), in whatever words, slang or language; "
    '"ask" when it asks a question, or asks to see, list, check or explain something.\n'
    'For "do", "change" names what to do:\n{changes}\nAnswer with JSON only.'
)


def request_form(text: str) -> bool:
    """Whether ``text`` reads as a request to act: not a question, not a request to see or explain something."""
    kept = requests(text).strip()
    # The whole message too: "how many galaxies have a redshift between 0.5 and 1" splits at "0.5".
    if not kept or _TO_SEE.search(kept) or _TO_SEE.search(text):
        return False
    return not (text.rstrip().endswith("?") and not _PUT_TO_YOU.search(text))


def requested_change(
    model: BaseChatModel | None,
    settings: Settings,
    text: str,
    tools: Sequence[Tool[Any]],
    scores: Mapping[str, float],
) -> str | None:
    """The write tool a request in undeclared words asks for, when the model and the meaning agree; else None.

    ``scores`` are the tools' fit to the message by meaning (before any route's boosts). None without a model
    that can be constrained, for a message that is no request, or one holding any change's asking phrase (the
    gate reads those itself).
    """
    # Not a destructive change: the model read "Apaga la VM" ("turn off the VM") as a deletion, and the words'
    # meaning agreed. Destroying something is done only when asked in the words its tool declares.
    writes = [t for t in tools if t.risk == "write"]
    # The asking phrases last: dozens of patterns, read only for a message in a request's form.
    if model is None or not writes or not request_form(text):
        return None
    if any(asks_in_words(t, text) for t in tools if t.risk != "read"):
        return None
    changes = "\n".join(f"- {t.name}: {t.description.splitlines()[0]} (asked as: {', '.join(t.asks[:8])})"
                        for t in writes)  # fmt: skip
    schema = {
        "type": "object",
        "properties": {"kind": {"enum": ["do", "ask"]}, "change": {"enum": [t.name for t in writes]}},
        "required": ["kind", "change"],
    }
    reply = json_reply(model, settings, _PROMPT.format(changes=changes), text, schema, name="change") or {}
    if reply.get("kind") != "do":
        return None
    named = reply.get("change")
    # Of every change, the destructive ones too: "nuke scratch-sandbox" fits vm.delete best, and the model's
    # vm.stop for it must not be taken.
    fitting = max((t for t in tools if t.risk != "read"), key=lambda t: scores.get(t.name, 0.0))
    if named != fitting.name or scores.get(fitting.name, 0.0) <= 0.0:
        log.info("a request the model read as %s, its meaning as %s: neither taken", named, fitting.name)
        return None
    return fitting.name
