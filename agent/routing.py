"""Where a message's answer comes from: the lab as it is now (its tools), its documentation, or small talk.

A question about the lab's live state is answered from the tools even when a page describes the same
thing; whether the documentation is indexed never changes where a message goes. In order:

1. How the lab works ("how do I", "why", "who approves", a policy, a runbook, what one may do) → docs; but a
   question for the things one may use ("which templates can I run?") that a tool lists closely → lab.
2. What a follow-up's "it" or "the stopped one" stands for among the last answer's things → lab. A thing the
   lab lists, named in the message (a VM, a node: names read from the lab itself), text only one
   tool takes (``Tool.recognizes``: an SQL statement), or a thing referred to by its id ("VM 132", "job
   labops_1a2b", a 64-bit target id) → lab.
3. The asker's own things ("my VMs", "what do I have") → lab.
4. A request for a change, in the words a tool declares it is asked with (``Tool.asks``) → lab.
5. A question for a list, a count or a state of something a toolset covers (its family words, or what its tools
   list) → lab; but one asking for something no tool lists or reads ("which port is the dashboard on?") or about
   any such thing rather than one there is ("does a new VM get backups?") is the model's choice, as in step 6.
6. Anything else: the model chooses among the three, constrained to a JSON object naming one
   (Ollama's ``format`` with a JSON schema), shown the best-fitting tool and the best page. Without a model
   to ask (the scripted test model), a message the documentation matches well goes to the documentation,
   else to the tools.

Steps 1 and 5 are cues of wording; where the scores disagree with them (a tool fits a "can I" question
closely; a page beats every tool by a wide margin on a question with a family word), the model decides as in
step 6, and without a model the cue holds.

The cue words of steps 1 and 5 are about the shape of a question, not about this lab; every name and every
tool word comes from the lab or from the tools' declarations.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models.chat_models import BaseChatModel

from agent.context import asks_about_self
from agent.intent import asking_pattern
from agent.labnames import LabNames
from agent.steering import json_reply
from core.config import Settings
from policies.guard import Caller
from tools.base import Tool, Toolset

__all__ = ["Candidates", "Route", "Routed", "Router"]

log = logging.getLogger(__name__)

Route = Literal["lab", "docs", "chat"]

# How the lab works: procedures, reasons, rules, permissions, schedules, who does what.
_DOCS = re.compile(
    r"\b(?:how (?:do|does|can|should|to|would)|why|explain|policy|policies|procedure|runbook|documentation|docs|guide"
    r"|who (?:has to|must|may|can|approves?|is allowed)|am i allowed|are we allowed|is it allowed|allowed to"
    # A wish followed by whether it is permitted ("i need a vm with a 1tb disk, is that ok?") asks for the rule.
    r"|is (?:that|this) (?:ok|okay|fine|allowed|possible|a problem)|would (?:that|this) (?:work|be ok|be fine)"
    r"|may i|may a|can i|can a|can my|can our|should i|supposed to|what is our|what's our|what are our|how often"
    r"|rules? (?:for|about|on)|naming|conventions?"
    r"|how long (?:is|are|do|does|may|can)|when (?:is|are|do|does)|objective|rpo|rto|quota|quotas|limit for"
    # What a thing is for: its purpose is written down, not read from its state ("proj-pg02 - what's it for?").
    r"|used for|purpose|what(?:'s|s| is| are| was)\b[^?.!]{0,60}\bfor(?=\W*$)"
    # Defaults and limits are set down, not read off a thing's state ("whats the default template for new vms").
    r"|what(?:'s|s| is| are) (?:the |our )?(?:default|max(?:imum)?|min(?:imum)?|limits?)\b"
    # What a word means is written down ("what does pending mean for a backup?"), whatever state it names.
    r"|what (?:does|do)\b[^?.!]{0,60}\bmean|meaning of|what is meant by|definition of"
    # "according to the documentation" in the languages lab members write.
    r"|dokumentation|documentaci[oó]n|laut (?:doku|wiki)|selon la doc)\b",
    re.I,
)
# A question for the live state of things: a list, a count, a state.
# A state only the live system knows, or "right now": with a family's word, the question is for its tools even when a
# page matches it better ("is pbs healthy?" went to the backup pages, and the answer spelt PBS out wrongly).
# Not "running" ("what hardware is the backup server running on?"), "down" ("the process if a node goes down"),
# "now", "free" or "left": each as often says how something works.
_LIVE_NOW = re.compile(
    r"\b(?:right now|currently|at the moment|stopped|offline|online|failed|failing|broken|healthy|unhealthy"
    r"|status|pending|queued)\b"
    # "Down" after "is"/"are" is a state ("are any hypervisors down"); after "goes" it says what happens.
    r"|\b(?:is|are|isn't|aren't)\s+(?:[\w-]+\s+){0,3}?down\b",
    re.I,
)
_ASKS_STATE = re.compile(
    r"^\W*(?:which|what|whats|wat|wht|list|show|any|anything|how many|are there|is there|count|give me|get|find"
    r"|tell me|is|are|has|have|did|does|was|were)\b"
    r"|\b(?:are there|is there|do we have|do i have|now|today|running|down|working|free|full|left)\b|"
    + _LIVE_NOW.pattern,
    re.I,
)
# Cues of _DOCS that ask what one may do; "which templates can I run?" asks for a list with one of them.
_PERMISSION = re.compile(
    r"^(?:can i|may i|can a|can my|can our|may a|allowed to|am i allowed|are we allowed|is it allowed)$", re.I
)
# Cues a tool may answer too ("can I run 10 jobs at once?", "what is my quota?"); the others (when, why, how
# do I, how often, policy) ask how the lab works whatever tool fits the words ("when are backups checked?").
_WEAK_DOCS = re.compile(
    r"^(?:can i|may i|can a|can my|can our|may a|allowed to|am i allowed|are we allowed|is it allowed|should i"
    r"|is (?:that|this) \w+(?: \w+)?|would (?:that|this) \w+(?: \w+)?"
    r"|quota|quotas"
    r"|limit for|how long (?:is|are|do|does|may|can))$",
    re.I,
)
# A question for a list of things: "which/what" followed by a noun (not "what is", "what can", "which of").
_LIST_QUESTION = re.compile(
    r"^\W*(?:which|what)\s+(?!(?:is|are|was|were|do|does|did|can|could|may|might|should|would|will|if|about|of"
    r"|happens|kind|sort|type|'s)\b)[a-z]",
    re.I,
)
# What a "which ...?" or "what's the ...?" question asks for: the words up to its verb ("which port is the dashboard
# on", "what's the subnet for ..."); an "of" phrase belongs to it ("what share of the vms are ...").
_ASKED_FOR = re.compile(
    r"^\W*(?:(?:which|what|whats|wat|wht)\s+(?!(?:is|are|was|were|do|does|did|can|could|may|might|should|would|will|if"
    r"|about|of|happens|kind|sort|type|'s)\b)|what(?:'s|s| is| are)\s+(?:the|our|a|an)\s+)"
    r"(?P<head>(?:[\w-]+\s+){0,2}?[\w-]+)(?P<of>\s+of\s+(?:the\s+|our\s+|my\s+)?[\w-]+(?:\s+[\w-]+)?)?"
    r"\s+(?P<verb>is|are|was|were|do|does|did|can|could|should|will|would|has|have|had|on|in|for|at|to|with|runs?)\b",
    re.I,
)
# A question about any such thing, not one that is: "does a vm i just made get backups on its own?", "will new
# jobs be queued?", "if I stop a VM, is it still backed up?". Its family's tools list the things there are.
_GENERIC = re.compile(
    r"^\W*(?:does|do|will|would)\s+(?:a|an|new|a new|any new)\s+[a-z]"
    r"|(?<!check )(?<!see )(?<!know )(?<!out )\bif (?:i|we|you|someone|somebody|a|an)\b",
    re.I,
)
# The verbs of a question about what happened: "what time did the backup run" asks the live record, not a property.
_PAST = re.compile(r"^(?:was|were|did|had)$", re.I)
_LONG_ID = re.compile(r"\b\d{6,}\b|\b[a-z]+_[0-9a-f]{6,}\b", re.I)
# Where a request opens: the message's start, or after "please", "I need", "can you" and the like.
# ("I need a VM ..." opens with a subject before the asking phrase "need a vm".)
_REQUEST = r"(?:^\W*(?:please\s+)?(?:i |we )?|\b(?:i need|i want|i'd like|can you|could you|please|pls)\b[^.?!]{0,30}?)"
# A request's opening: its first words, after a "please" or a "can you" ("start qso-vae-dev back up" opens with
# "start"; its "back up" is no request for a backup).
_OPENING = r"^\W*(?:(?:please|pls|plz|ok|okay|now|then)\W+)?(?:(?:can|could|would|will) you\s+(?:please\s+)?)?"
_GREETING_ONLY = re.compile(
    r"^\W*(?:hi|hello|hey|thanks?|thank you|cheers|good (?:morning|afternoon|evening)|bye)\b", re.I
)


@dataclass(kw_only=True, frozen=True)
class Routed:
    """A route and why it was taken (kept in the turn for people and the eval's transcripts).

    ``families`` are the tool families a question is about (their tools are offered first); for things the
    message names, ``takes`` are the arguments that identify them (``vmid``: tools taking one are offered first)
    and ``lists`` the tools that list them; ``tool`` the one tool the message is for (its first model call must
    call it).
    """

    route: Route
    why: str
    families: frozenset[str] = frozenset()
    takes: frozenset[str] = frozenset()
    lists: frozenset[str] = frozenset()
    # The one tool the message is for: it holds text only that tool takes, or a request opens with its asking
    # phrase for the thing it names. The first model call must call it.
    tool: str | None = None
    notes: tuple[str, ...] = ()  # what the things it names by name stand for ("void-analysis: vmid 130")
    mine: bool = False  # about the asker's own things: the tools that list a person's things fit


@dataclass(kw_only=True, frozen=True)
class Candidates:
    """What could answer a message: the best-fitting tool and the best passage (for the model's choice)."""

    tool: str | None = None  # "vm.nodes: Cluster nodes with their status."
    passage: str | None = None  # "cluster-overview.md § Kubernetes: The RKE2 cluster has ..."


# Measured on the dev questions (bench numbers in docs/agent.md): passages of the lab's pages score 0.77-0.89 for
# almost any lab question, so a page's score alone says little; a page beating every tool by more than this margin
# does (a storage subnet, the Kubernetes cluster's size), and a tool scoring this high matches what is listed.
DOCS_MARGIN = 0.1
STRONG_TOOL_FIT = 0.8

_ROUTER_PROMPT = (
    "You route the messages of a research computing lab's members to the source that answers them. The sources:\n"
    '- "lab": the lab as it is right now, read or changed through its tools ({lab}).\n'
    '- "docs": how the lab works, from its documentation (schedules, policies, procedures, hardware, networks, '
    "access).\n"
    '- "chat": greetings, thanks and small talk.\n'
    "Pick the source whose content answers the message itself. Answer with JSON only."
)
_ROUTER_SCHEMA = {"type": "object", "properties": {"route": {"enum": ["lab", "docs", "chat"]}}, "required": ["route"]}


@dataclass(kw_only=True)
class Router:
    """Chooses the route of a message (see the module docstring)."""

    settings: Settings
    tools: list[Tool[Any]]
    toolsets: tuple[Toolset, ...]
    names: LabNames | None = None
    model: Callable[[], BaseChatModel | None] = lambda: None

    def _asked_at(self, text: str, where: str) -> dict[str, int]:
        """``{write tool: its longest asking phrase's length}`` for the phrases standing where ``where`` ends.

        In registry order; ``where`` is a pattern for what precedes the phrase (:data:`_REQUEST`, :data:`_OPENING`).
        """
        lowered = text.lower().strip()
        found: dict[str, int] = {}
        for tool in self.tools:
            if tool.risk == "read":
                continue
            lengths = [len(p) for p in tool.asks if re.search(where + asking_pattern(p) + r"\b", lowered)]
            if lengths:
                found[tool.name] = max(lengths)
        return found

    def _asks_change(self, text: str) -> str | None:
        """The write tool whose asking phrase opens the message or follows a request ("please", "I need")."""
        return next(iter(self._asked_at(text, _REQUEST)), None)

    def _opening_change(self, text: str, takes: Collection[str], lists: Collection[str]) -> str | None:
        """The one write tool a request opens with, declared to take the thing the message names.

        The longest asking phrase at the opening settles look-alikes ("start a backup" is backup.run's, "start"
        alone vm.start's and ray.submit's); of the tools it leaves, the one whose ``named_by`` takes that thing:
        an argument in ``takes`` named by a listing in ``lists`` (a VM's ``vmid`` by vm.list; vm.provision's
        ``template`` is a VM template, no job template of ray.templates). None when that leaves no tool or several.
        """
        found = self._asked_at(text, _OPENING)
        if not found:
            return None
        longest = max(found.values())
        fits = [
            t.name
            for t in self.tools
            if found.get(t.name) == longest
            and any(arg in takes and lookup.tool in lists for arg, lookup in t.named_by.items())
        ]
        return fits[0] if len(fits) == 1 else None

    def _id_reference(self, text: str) -> str | None:
        """The family of a thing the message refers to by id ("VM 132", "job labops_1a2b", a long target id)."""
        lowered = text.lower()
        for toolset in self.toolsets:
            for word in toolset.words:
                # Written together with a zero-padded number, the word is a host's name, not an id: "pbs01",
                # "node07" (the backup server was read as backup 01). Ids are written "VM 132", "vm132", "job #3".
                if re.search(rf"(?<![a-z]){re.escape(word.lower())}(?:\s*#?\s*[1-9]|\s+#?\s*0)\d*\b", lowered):
                    return toolset.name
        return "lab" if _LONG_ID.search(text) else None

    def _asks_for_a_property(self, text: str) -> str | None:
        """What a "which/what ...?" question asks for when it is nothing the tools list or read; None otherwise.

        "Which port is the Ray dashboard on?" and "what hardware is pbs01?" hold a family's word, but what they ask
        for (a port, the hardware) is no thing the tools list (``Tool.rows``), no word a tool or family is named by
        (``words``) and no state: a page may answer it better than the family's tools, which answered with the
        job templates and the backups' status. Not for questions about what happened ("what time did the backup
        run?") or about the state right now: the live record answers those.
        """
        asked = _ASKED_FOR.search(text)
        if asked is None or _PAST.match(asked.group("verb")) or _LIVE_NOW.search(text):
            return None
        words = f" {asked.group('head')} {asked.group('of') or ''} ".lower()
        things = {w.lower() for s in self.toolsets for w in s.words}
        things |= {w.lower() for t in self.tools for w in (*t.rows, *(t.words if t.risk == "read" else ()))}
        things |= {"state", "states", "status", "health"}
        if any(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", words) for w in things):
            return None
        return re.sub(r"^(?:the|our|a|an)\s+", "", asked.group("head"), flags=re.I)

    def _family_question(self, text: str) -> frozenset[str]:
        """The families whose words a question for a list, a count or a state uses."""
        lowered = f" {text.lower()} "
        if not _ASKS_STATE.search(text):
            return frozenset()
        # A family is named by its own words and by what its tools list ("hypervisors": vm.nodes's rows).
        return frozenset(
            toolset.name
            for toolset in self.toolsets
            if toolset.name != "docs"
            and any(
                re.search(rf"(?<![a-z]){re.escape(w.lower())}(?![a-z])", lowered)
                for w in (*toolset.words, *(row for t in toolset.tools for row in t.rows))
            )
        )

    def _unsure(
        self, text: str, candidates: Candidates, *, lean: Route, why: str, families: frozenset[str] = frozenset()
    ) -> Routed:
        """The wording and the scores disagree: the model chooses; without one, the wording's ``lean`` holds."""
        chosen = self._ask_model(text, candidates)
        if chosen is not None:
            return Routed(route=chosen, why=f"{why}; the model chose", families=families if chosen == "lab" else
                          frozenset())  # fmt: skip
        return Routed(route=lean, why=why, families=families)

    def route(
        self,
        text: str,
        *,
        caller: Caller,
        docs_score: float = 0.0,
        docs_floor: float = 0.65,
        tool_fit: float = 0.0,
        candidates: Candidates | None = None,
        refers: str | None = None,
    ) -> Routed:
        """The route of ``text``.

        ``docs_score`` is the best passage's score and ``tool_fit`` the best tool's: where a cue of the wording
        and these two disagree, the model decides between the ``candidates`` (see :meth:`_unsure`). ``refers``
        is what the message's "it" or "the stopped one" stands for among the last answer's things
        (:mod:`agent.referents`): a question about them, unless it asks how the lab works, is about the lab.
        """
        text = text.strip()
        candidates = candidates or Candidates()
        cues = [m.group(0) for m in _DOCS.finditer(text)]
        if cues:
            weak = all(_WEAK_DOCS.match(c) for c in cues)
            strong_tool = weak and tool_fit >= STRONG_TOOL_FIT and tool_fit > docs_score
            if strong_tool and _LIST_QUESTION.search(text) and all(_PERMISSION.match(c) for c in cues):
                # "Which job templates can I run?": a list of things one may use, and a tool lists exactly that
                # (the model, asked, sent it to the documentation in most runs).
                return Routed(route="lab", why="asks which things one may use, and a tool lists them")
            # "Can I run 10 jobs at once?" reads like a permission question, but a tool fits it closely.
            if strong_tool:
                return self._unsure(text, candidates, lean="docs",
                                    why="asks how the lab works, and a tool fits it closely")  # fmt: skip
            return Routed(route="docs", why="asks how the lab works")
        if refers is not None:
            # "Is the stopped one backed up?": the thing is the last answer's, the question's own words say which
            # tools (its family words), not the thing's kind.
            families = self._family_question(text)
            return Routed(route="lab", why=f"refers to what was listed before {refers}",
                          families=families if len(families) == 1 else frozenset())  # fmt: skip
        if self.names is not None:
            named = self.names.named(text, caller)
            if named:
                takes, lists = self.names.where(named)
                # "Start qso-vae-dev back up": the request's opening verb, for the thing named, is the action.
                opening = self._opening_change(text, takes, lists)
                return Routed(route="lab", why=f"names {', '.join(sorted(named))} (in the lab)"
                              + (f" and opens with a request for {opening}" if opening else ""),
                              families=frozenset(named.values()) if not takes else frozenset(),
                              takes=takes, lists=lists, notes=tuple(self.names.ids(named)), tool=opening)  # fmt: skip
        recognized = next((t for t in self.tools if any(re.search(p, text) for p in t.recognizes)), None)
        if recognized is not None:
            family = recognized.name.split(".")[0]
            return Routed(route="lab", why=f"holds what {recognized.name} takes", families=frozenset({family}),
                          tool=recognized.name)  # fmt: skip
        referenced = self._id_reference(text)
        if referenced is not None:
            return Routed(route="lab", why=f"refers to {referenced} by its id", families=frozenset({referenced}))
        if asks_about_self(text):
            if docs_score - tool_fit > DOCS_MARGIN:
                # "My query got killed, what's the statement timeout?": "my" opens it, a page answers it.
                return self._unsure(text, candidates, lean="lab", why="asks about the asker's own things, which a "
                                    "page describes better")  # fmt: skip
            return Routed(route="lab", why="asks about the asker's own things", mine=True)
        change = self._asks_change(text)
        if change is not None:
            return Routed(route="lab", why=f"asks for a change ({change})")
        families = self._family_question(text)
        if families:
            which = ", ".join(sorted(families))
            # One family: its tools first. Several ("VMs not in any backup job"): tool retrieval picks.
            boost = families if len(families) == 1 else frozenset()
            # Whichever answers what happens to any new VM, or the port or the hardware of a thing: the model
            # chooses; without a model, the better score of the two.
            lean: Route = "docs" if docs_score >= docs_floor and docs_score > tool_fit else "lab"
            if _GENERIC.search(text) and not _LIVE_NOW.search(text):
                why = f"asks what happens to any such thing ({which}), not to one there is"
                return self._unsure(text, candidates, lean=lean, why=why, families=boost)
            wanted = self._asks_for_a_property(text)
            if wanted is not None:
                why = f"asks for the {wanted} of something {which} names, which no tool lists"
                return self._unsure(text, candidates, lean=lean, why=why, families=boost)
            if docs_score - tool_fit > DOCS_MARGIN and not _LIVE_NOW.search(text):
                # "How many nodes does the Kubernetes cluster have?": a family word, but a page answers it far
                # better than any tool.
                why = f"asks about {which}, which a page describes better"
                return self._unsure(text, candidates, lean="lab", why=why, families=boost)
            return Routed(route="lab", why=f"asks for the live state of {which}", families=boost)
        chosen = self._ask_model(text, candidates)
        if chosen is not None:
            return Routed(route=chosen, why="the model chose it")
        if _GREETING_ONLY.search(text) and len(text.split()) <= 6:
            return Routed(route="chat", why="small talk")
        if docs_score >= docs_floor:
            return Routed(route="docs", why="the documentation matches it")
        return Routed(route="lab", why="nothing else fits")

    def _ask_model(self, text: str, candidates: Candidates) -> Route | None:
        """The model's choice among the three routes, constrained to one JSON object; None when not asked.

        The model sees what each route would answer with: the tool that fits best and the best passage.
        """
        model = self.model()
        if model is None:
            return None
        lab = ", ".join(s.title for s in self.toolsets if s.title and s.name != "docs")
        # The candidates close the instructions (measured on 46 routing questions: 27 of 30 and 16 of 16 right
        # this way; shown in the user's message instead, the model sent a Kubernetes question to the VM tools).
        system = _ROUTER_PROMPT.format(lab=lab)
        if candidates.tool:
            system += f"\nThe lab's tool that fits best: {candidates.tool}"
        if candidates.passage:
            system += f'\nThe documentation\'s best page: "{candidates.passage}"'
        reply = json_reply(model, self.settings, system, text, _ROUTER_SCHEMA, name="route")
        route = (reply or {}).get("route")
        return route if route in ("lab", "docs", "chat") else None
