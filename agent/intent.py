"""The intent gate: a side effect runs only when the person asked for that kind of action.

Policy decides whether a user *may* do something; this gate checks that the user *asked* for it. A model
that read "delete all VMs" in a document or in a VM's description, and proposes ``vm.delete`` while the
user asked about backups, is stopped here, before the guard, whatever the model believes. Read tools
pass freely. Each tool that changes the lab declares how people ask for it (``Tool.asks``); the phrases are
deliberately broad: the gate catches actions nobody asked for, not unusual wording. A request in words no tool
declares ("could you power down void-analysis") passes for the one change :mod:`agent.requested` read in it (the
model's constrained reading and the words' meaning agreeing), for that message only.
"""

from __future__ import annotations

import re
from typing import Any

from agent.spelling import one_edit
from tools.base import Tool

__all__ = ["asked_for", "asking_pattern", "asks_in_words", "requests"]


# A sentence asking for information ("which templates can I run?", "how do I stop a job?", "is VM 131
# running?") asks for no action, unless it is put to the assistant as a request ("can you stop it?",
# "please ...", "is it possible to ..."). The bench's "Which Ray job templates can I run?" got ray.submit
# after ray.templates: "run" and "job" are both ways of asking for it.
_SENTENCES = re.compile(r"[.!?;\n]+")
_QUESTION = re.compile(
    r"^\W*(?:which|what|what's|whats|how|when|where|who|whom|whose|why|is|are|was|were|does|did|has|have|any"
    r"|anything"
    # "Can my job pip install ...?", "do I need ...?", "should the VM ...?": a question about one's things or
    # the lab ("can you", "can we" ask the assistant, and the request words below keep them).
    r"|(?:can|could)\s+(?:my|the|a|an|our|this|that|these|those|it)|do\s+(?:i|they|my|the|our)"
    r"|(?:should|will|would)\s+(?:i|my|the|it|our)"
    # "Would stopping void-analysis lose its data?": the action as the subject of a question about what it does
    # (vm.stop ran). "Would you stop it?" is put to the assistant, and _REQUEST keeps it.
    r"|(?:should|will|would|could|might|may|can|does|do|did)\s+(?!(?:no|some|any|every)thing\b)[a-z]+ing"
    # "If I reboot agn-fit, will I lose anything?": a condition, then a question about what follows from it
    # (vm.reboot ran). "If it hangs, reboot it" has no such question and stays a request.
    # "Is"/"are" only after a comma: "if that is the case, reboot it" is a request.
    r"|(?:what\s+)?if\b(?=[^.!?;\n]*?(?:\b(?:will|would|does|do|did)|,\s*(?:is|are))\s+(?:i|we|it|that|this|they|my"
    r"|our|the|there|anything|everything|something|anyone|someone)\b))\b",
    re.I,
)
_REQUEST = re.compile(r"\b(?:you|please|pls|plz|possible|ok|okay|alright|fine)\b", re.I)


# Question words long enough that one typo leaves them recognisable ("whcih", "wich", "wat"), and words one
# edit from them that open other sentences ("that one, stop it", "there is ...").
_LONG_QUESTION_WORDS = ("which", "what", "when", "where", "whose", "does", "have")
_NOT_QUESTIONS = {"that", "there", "here", "whet", "then", "goes", "hive", "save", "dose", "gave", "wave", "whom",
                  "whole"}  # fmt: skip


def _asks(sentence: str) -> bool:
    """Whether a sentence opens with a question word, or one typo from one."""
    if _QUESTION.match(sentence):
        return True
    first = re.match(r"^\W*([a-z]+)\b", sentence.lower())
    word = first.group(1) if first else ""
    return len(word) >= 3 and word not in _NOT_QUESTIONS and any(one_edit(word, q) for q in _LONG_QUESTION_WORDS)


def requests(user_text: str) -> str:
    """The sentences of ``user_text`` that may ask for an action: all but questions asking for information."""
    kept = [s for s in _SENTENCES.split(user_text) if not _asks(s) or _REQUEST.search(s)]
    return "\n".join(kept)


# English phrasal verbs come apart around their object: "turn it back on", "shut the VM down", "back it up".
_PARTICLES = frozenset({"on", "off", "up", "down", "out", "over"})


def asking_pattern(phrase: str) -> str:
    """A pattern for an asking phrase, its particle allowed up to three words after the verb ("turn ... on")."""
    words = phrase.lower().split()
    exact = rf"(?<![a-z]){re.escape(phrase.lower())}"
    if len(words) < 2 or words[-1] not in _PARTICLES:
        return exact
    verb, particle = re.escape(" ".join(words[:-1])), re.escape(words[-1])
    return rf"(?:{exact}|(?<![a-z]){verb}(?:\s+[\w'-]+){{1,3}}?\s+{particle}(?![a-z]))"


def _says(tool: Tool[Any], user_text: str, *, whole_words: bool) -> bool:
    """Whether ``user_text`` asks with one of ``tool``'s phrases (as a word's start, or as whole words)."""
    text = f" {requests(user_text).lower()} "
    end = r"(?![a-z])" if whole_words else ""
    return any(re.search(asking_pattern(phrase) + end, text) for phrase in tool.asks)


def asked_for(tool: Tool[Any], user_text: str) -> bool:
    """Whether ``user_text`` asks for the kind of action ``tool`` performs (always true for read tools)."""
    return tool.risk == "read" or _says(tool, user_text, whole_words=False)


def asks_in_words(tool: Tool[Any], user_text: str) -> bool:
    """Whether ``user_text`` holds one of ``tool``'s asking phrases as whole words ("stop", not "stopped")."""
    return _says(tool, user_text, whole_words=True)
