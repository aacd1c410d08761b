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

The cue words of steps 1 and 5 (:mod:`agent.cues`) are about the shape of a question, not about this lab; every
name and every tool word comes from the lab or from the tools' declarations.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from langchain_core.language_models.chat_models import BaseChatModel

from agent.context import asks_about_self
from agent.cues import (
    ASKED_FOR,
    ASKS_STATE,
    BARE_NUMBER,
    DOCS,
    GENERIC,
    GREETING_ONLY,
    LIST_QUESTION,
    LIVE_NOW,
    LONG_ID,
    NEW_NAME,
    OPENING,
    PAST,
    PERMISSION,
    REQUEST,
    WEAK_DOCS,
)
from agent.intent import asking_pattern
from agent.labnames import LabNames
from agent.steering import json_reply
from core.config import Settings
from policies.guard import Caller
from tools.base import Tool, Toolset

__all__ = ["Candidates", "Route", "Routed", "Router"]

log = logging.getLogger(__name__)

Route = Literal["lab", "docs", "chat"]


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
    # phrase for the thing it names, or asks for a thing to be made without its name. The first model call must
    # call it.
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


def _holds_word(text: str, words: Collection[str]) -> bool:
    """Whether lower-cased ``text`` holds one of ``words`` with no letter joined to it on either side."""
    return any(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", text) for w in words)


@dataclass(kw_only=True)
class Router:
    """Chooses the route of a message (see the module docstring)."""

    settings: Settings
    tools: list[Tool[Any]]
    toolsets: tuple[Toolset, ...]
    names: LabNames | None = None
    model: Callable[[], BaseChatModel | None] = lambda: None

    @cached_property
    def _family_words(self) -> dict[str, tuple[str, ...]]:
        """Each family's words, lower-cased: its own and what its tools list ("hypervisors": vm.nodes's rows)."""
        return {
            s.name: tuple(w.lower() for w in (*s.words, *(row for t in s.tools for row in t.rows)))
            for s in self.toolsets
            if s.name != "docs"
        }

    @cached_property
    def _things(self) -> frozenset[str]:
        """What the tools list or read, lower-cased: the families' words, the tools' rows, the read tools' words."""
        things = {w.lower() for s in self.toolsets for w in s.words}
        things |= {w.lower() for t in self.tools for w in (*t.rows, *(t.words if t.risk == "read" else ()))}
        return frozenset(things | {"state", "states", "status", "health"})

    def _asked_at(self, text: str, where: str) -> dict[str, int]:
        """``{write tool: its longest asking phrase's length}`` for the phrases standing where ``where`` ends.

        In registry order; ``where`` is a pattern for what precedes the phrase (:data:`REQUEST`, :data:`OPENING`).
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

    def _tool(self, name: str) -> Tool[Any] | None:
        return next((t for t in self.tools if t.name == name), None)

    def _numeric_ids(self, name: str) -> frozenset[str]:
        """The integer id arguments (``vmid``) of the tool ``name``."""
        tool = self._tool(name)
        if tool is None:
            return frozenset()
        props = tool.json_schema().get("properties", {})
        return frozenset(k for k, p in props.items() if k.endswith("id") and p.get("type") == "integer")

    def _asks_change(self, text: str, asked: dict[str, int] | None = None) -> str | None:
        """The write tool whose asking phrase opens the message or follows a request ("please", "I need").

        Or follows "can I" / "could we", when the message names the thing to be made ("can I get a VM named
        cosmo-nb?"): without a name, "can I get a VM with 64 cores?" may ask what the rules allow. ``asked`` is
        :meth:`_asked_at` for :data:`REQUEST`, when the caller has it already.
        """
        found = next(iter(asked if asked is not None else self._asked_at(text, REQUEST)), None)
        if found is None and NEW_NAME.search(text):
            found = next(iter(self._asked_at(text, r"^\W*(?:can|may|could) (?:i|we)\b[^.?!]{0,30}?")), None)
        return found

    def _needs_new_name(self, change: str) -> bool:
        """Whether the change requires a name for what it makes: a required ``*name`` no listing resolves."""
        tool = self._tool(change)
        if tool is None:
            return False
        required = tool.json_schema().get("required", [])
        return any(key.endswith("name") and key not in tool.named_by for key in required)

    def _opening_change(self, text: str, takes: Collection[str], lists: Collection[str]) -> str | None:
        """The one write tool a request opens with, declared to take the thing the message names.

        The longest asking phrase at the opening settles look-alikes ("start a backup" is backup.run's, "start"
        alone vm.start's and ray.submit's); of the tools it leaves, the one whose ``named_by`` takes that thing:
        an argument in ``takes`` named by a listing in ``lists`` (a VM's ``vmid`` by vm.list; vm.provision's
        ``template`` is a VM template, no job template of ray.templates). None when that leaves no tool or several.
        """
        found = self._asked_at(text, OPENING)
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
        return "lab" if LONG_ID.search(text) else None

    def _asks_for_a_property(self, text: str) -> str | None:
        """What a "which/what ...?" question asks for when it is nothing the tools list or read; None otherwise.

        "Which port is the Ray dashboard on?" and "what hardware is pbs01?" hold a family's word, but what they ask
        for (a port, the hardware) is no thing the tools list (``Tool.rows``), no word a tool or family is named by
        (``words``) and no state: a page may answer it better than the family's tools, which answered with the
        job templates and the backups' status. Not for questions about what happened ("what time did the backup
        run?") or about the state right now: the live record answers those.
        """
        asked = ASKED_FOR.search(text)
        if asked is None or PAST.match(asked.group("verb")) or LIVE_NOW.search(text):
            return None
        if _holds_word(f"{asked.group('head')} {asked.group('of') or ''}".lower(), self._things):
            return None
        return re.sub(r"^(?:the|our|a|an)\s+", "", asked.group("head"), flags=re.I)

    def _family_question(self, text: str) -> frozenset[str]:
        """The families whose words a question for a list, a count or a state uses."""
        lowered = text.lower()
        if not ASKS_STATE.search(text):
            return frozenset()
        return frozenset(family for family, words in self._family_words.items() if _holds_word(lowered, words))

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
        cues = [m.group(0) for m in DOCS.finditer(text)]
        if cues:
            weak = all(WEAK_DOCS.match(c) for c in cues)
            strong_tool = weak and tool_fit >= STRONG_TOOL_FIT and tool_fit > docs_score
            if strong_tool and LIST_QUESTION.search(text) and all(PERMISSION.match(c) for c in cues):
                # "Which job templates can I run?": a list of things one may use, and a tool lists exactly that
                # (the model, asked, sent it to the documentation in most runs).
                return Routed(route="lab", why="asks which things one may use, and a tool lists them")
            # "Can I get a VM named cosmo-nb, 2 cores 4gb?" asks for the thing itself: it names what is to be made.
            change = self._asks_change(text) if all(PERMISSION.match(c) for c in cues) else None
            if change is not None and NEW_NAME.search(text):
                return Routed(route="lab", why=f"asks for a change ({change}), naming what is to be made")
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
        asked = self._asked_at(text, REQUEST)
        change = self._asks_change(text, asked)
        if change is not None:
            # "Start 130 and 132": bare numbers after the request are the ids a tool of its kind takes (an
            # integer id, ``vmid``); the tools taking one are offered first (it was taken for small talk).
            takes = self._numeric_ids(change) if BARE_NUMBER.search(text) else frozenset()
            # "Give me a vm with 2 cores": the change needs a name only the user can give, and the model read the
            # VM list instead of asking. Made to call the change, it is asked back for the name (the gate's
            # question: a change on a value nobody gave is not made).
            # Only when no other change is asked in the same words ("launch" runs a job as well as making a VM).
            alone = [name for name, length in asked.items() if length == asked.get(change)] == [change]
            unnamed = alone and self._needs_new_name(change) and not NEW_NAME.search(text)
            return Routed(route="lab", why=f"asks for a change ({change})" + (" by id" if takes else "")
                          + (", without the name of what is to be made" if unnamed else ""),
                          takes=takes, families=frozenset({change.split(".")[0]} if takes else ()),
                          tool=change if unnamed else None)  # fmt: skip
        families = self._family_question(text)
        if families:
            which = ", ".join(sorted(families))
            # One family: its tools first. Several ("VMs not in any backup job"): tool retrieval picks.
            boost = families if len(families) == 1 else frozenset()
            # Whichever answers what happens to any new VM, or the port or the hardware of a thing: the model
            # chooses; without a model, the better score of the two.
            lean: Route = "docs" if docs_score >= docs_floor and docs_score > tool_fit else "lab"
            if GENERIC.search(text) and not LIVE_NOW.search(text):
                why = f"asks what happens to any such thing ({which}), not to one there is"
                return self._unsure(text, candidates, lean=lean, why=why, families=boost)
            wanted = self._asks_for_a_property(text)
            if wanted is not None:
                why = f"asks for the {wanted} of something {which} names, which no tool lists"
                return self._unsure(text, candidates, lean=lean, why=why, families=boost)
            if docs_score - tool_fit > DOCS_MARGIN and not LIVE_NOW.search(text):
                # "How many nodes does the Kubernetes cluster have?": a family word, but a page answers it far
                # better than any tool.
                why = f"asks about {which}, which a page describes better"
                return self._unsure(text, candidates, lean="lab", why=why, families=boost)
            return Routed(route="lab", why=f"asks for the live state of {which}", families=boost)
        chosen = self._ask_model(text, candidates)
        if chosen is not None:
            return Routed(route=chosen, why="the model chose it")
        if GREETING_ONLY.search(text) and len(text.split()) <= 6:
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
