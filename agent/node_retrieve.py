"""The node that reads a message: ``retrieve`` (passages and the tools to offer).

The message as the agent reads it (translated, spelling mended, a follow-up's referent named, a reply to a
question back joined to the request), its route (:mod:`agent.routing`), the documentation passages when the
question is about how the lab works (or no tool fits), and the few tools to offer (tool retrieval); a short
follow-up is read together with the message before.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.messages import AIMessage

from agent.context import caller_of, previous_user_text, recent_user_text
from agent.cues import ADVICE
from agent.deps import Nodes
from agent.events import emit as _emit
from agent.intent import asked_for, asks_in_words
from agent.language import foreign_language, to_english
from agent.referents import resolve as resolve_referent
from agent.requested import requested_change
from agent.routing import Candidates
from agent.state import AgentState
from agent.stated import gives_arguments
from agent.steering import mentions_docs
from agent.toolselect import about_thing
from core.errors import LabOpsError
from tools.base import Tool

__all__ = ["RetrieveNodes"]

log = logging.getLogger(__name__)

# How far under the passage floor a message routed to the documentation may still take its best passages. Measured
# on the dev phrasings: translated questions' best passages scored 0.52-0.56 (the English originals 0.73-0.86).
DOCS_ROUTED_SLACK = 0.15
# Words that make a short message a follow-up of the previous one.
# Words of a follow-up: a referring word, or an opening that goes on from the last message ("and did last night's
# run go ok for void-analysis?" after "when do the daily backups run?").
_GOES_ON = r"^\W*(?:and|also|plus|what about|how about|same for)\b"
FOLLOW_UP = re.compile(
    _GOES_ON + r"|\b(?:it|its|that|those|them|these|this one|the first|the second|the last|same)\b", re.I
)
_ELLIPSIS = re.compile(_GOES_ON, re.I)


# What can stand for an id in a message: a number of two digits or more, or words joined by underscores whose
# last part holds a digit ("labops_1a2b3c", "raysubmit_x8Ab12", "labops_eval_a0f0e8bdc6cf": a random hex part
# need not have two digits in a row).
_ID_LIKE = re.compile(r"\d{2,}|\b[a-z]+(?:_[0-9a-z]+)*_[0-9a-z]*\d[0-9a-z]*\b", re.I)


def _needs_id(tool: Tool[Any]) -> bool:
    """Whether a tool cannot be called without an id (a required argument named ``...id``).

    Read from the argument model's fields: it runs for every read tool of most first messages, and a JSON schema
    is built anew on each ``Tool.json_schema`` call.
    """
    fields = tool.args_model.model_fields
    return any((info.alias or name).endswith("id") for name, info in fields.items() if info.is_required())


def _passage(hit: Any) -> dict[str, Any]:
    """A search hit as the turn keeps a passage (text, source, section, score, citation)."""
    return {"text": hit.text, "source": hit.source, "section": hit.section, "score": hit.score,
            "citation": f"[{hit.source} § {hit.section or hit.title}]"}  # fmt: skip


def _answers_question_back(state: AgentState, text: str) -> bool:
    """Whether ``text`` is a short reply to the question the last answer asked back (``AgentState.awaiting``)."""
    awaiting = state.get("awaiting")
    answers = [m for m in state.get("messages", []) if isinstance(m, AIMessage) and not m.tool_calls]
    if not awaiting or not answers or str(answers[-1].content) != awaiting:
        return False
    return len(text.split()) <= 8 and "?" not in text


@dataclass(kw_only=True)
class RetrieveNodes(Nodes):
    """Reading the message: its route, passages and the tools to offer."""

    def retrieve(self, state: AgentState) -> dict[str, Any]:
        """Passages for questions about how the lab works, and the tools to offer."""
        turn = state["turn"].copy()
        text = str(turn["text"])
        translated = to_english(self.deps.model, self.settings, text)
        if translated is not None:
            turn["language"], text = translated
        elif self.deps.speller is not None and foreign_language(text) is None:
            # "whcih vms r stoped": routing, the tools offered and the intent gate read the words meant (in
            # English only: an untranslated French "labo" is no typo of "lab").
            listed = self.deps.router.names
            text = self.deps.speller.correct(text, known=listed.names(caller_of(state)) if listed is not None else ())
        before = previous_user_text(state)
        completes = _answers_question_back(state, text)
        if completes:
            # "I want a new VM with 2 cores" → "Which name?" → "call it hod-test": the answer completes the
            # request it was asked for, and is read with it (the route, the tools, the arguments, the gate).
            text = f"{before}\n{text}"
        referent = resolve_referent(text, list(state.get("things") or []), before=before)
        refers = referent.note() if referent is not None else None
        turn["asked"] = f"{text} {refers}" if refers is not None else text
        # A short follow-up ("show me the first one", "stop it") is about what was asked before, unless what it
        # refers to was found in the last results (then the message names it); a reply that completes a request
        # already holds the message before.
        short = bool(before) and not completes and bool(len(text.split()) <= 8 or FOLLOW_UP.search(text))
        joined = f"{before}\n{text}"
        about = joined if short and referent is None else turn["asked"]
        names = self.deps.router.names
        scores = self.deps.selector.scores(names.masked(about, caller_of(state)) if names is not None else about)
        hits: list[Any] = []
        if self.deps.docs is not None and self.bounds.docs_k > 0:
            try:
                # "How do I fix that?" after "which VM has no backup job?": the pages are searched for both.
                hits = self.deps.docs.hits(joined if short else text, k=self.bounds.docs_k)
                if not hits and not self.deps.docs.chunks():
                    turn["docs_missing"] = (
                        "The lab's documentation index is empty, so no page could be searched: run `labops ingest "
                        "knowledge/docs` (or `labops lab up`, which indexes the lab's own pages)."
                    )
            except LabOpsError as exc:
                log.warning("documentation search failed: %s", exc)
                turn["docs_missing"] = f"The documentation search is unavailable: {exc}."
                hits = []
            if turn.get("docs_missing"):
                _emit({"type": "notice", "text": turn["docs_missing"]})
        best = max((h.score for h in hits), default=0.0)
        # "And galaxies?" after a count of quasars: a question only with the one before it, routed with it.
        elliptic = short and referent is None and len(text.split()) <= 5 and bool(_ELLIPSIS.match(text))
        routed = self.deps.router.route(joined if elliptic else text, caller=caller_of(state),
                                        docs_score=best,
                                        refers=refers,
                                        docs_floor=self.deps.docs_min_score,
                                        tool_fit=max(scores.values(), default=0.0),
                                        candidates=self._candidates(scores, hits))  # fmt: skip
        if routed.tool is None and routed.route != "chat":
            # "Could you power down void-analysis": a request in words no write tool declares; taken only when
            # the model's reading and the words' meaning name the same change (agent.requested).
            requested = requested_change(self.deps.model, self.settings, text, self.deps.tools, scores)
            if requested is not None:
                turn["requested"] = requested
                # Offered and let through the gate, not forced, and the route stays: the model, shown the change
                # beside the reads (and the passages), still chooses ("agn-fit memory and cores" was read as a
                # request to provision). But a request that gives the change its arguments ("could i get a
                # fresh vm named spec-fit-2 with 4 cpus") is about the lab: the pages' how-to was quoted instead.
                change = self.deps.tool(requested)
                given = change is not None and gives_arguments(
                    change.json_schema(), change.aliases, change.values, text
                )
                why = f"{routed.why}; may ask for a change ({requested}, read by the model)"
                routed = replace(routed, route="lab" if given else routed.route, why=why)
        turn["route"] = {"route": routed.route, "why": routed.why}
        if routed.notes and referent is None:
            # "What node is void-analysis on?": the model reads the id the name stands for, as it does a
            # follow-up's referent; it guessed vm.nodes (the word "node") when it had only the name.
            turn["asked"] = f"{turn['asked']} ({'; '.join(routed.notes)})"
        if routed.tool is not None:
            turn["must_call"] = routed.tool
        turn["names_given"] = len(routed.notes)
        for family in routed.families:
            for name in scores:
                if name.split(".")[0] == family:
                    scores[name] += 0.25  # a question about what this family lists, or a thing of it by its id
        if routed.mine:
            # "Any of my ray jobs still going?": the tools that list a person's things (``Tool.mine``), not the
            # ones that read one thing by an id the message does not give (ray.status was called on a guess).
            for name in scores:
                found = self.deps.tool(name)
                if found is not None and found.mine is not None:
                    scores[name] += 0.25
        # "Is agn-fit up?" names a VM, and "which node is the failed one on?" is about VM 132 (a referent): the
        # tools that take a VM's id (vm.show, backup.status) or list it (vm.list) fit, not every VM tool.
        takes = set(routed.takes) | ({str(t["field"]) for t in referent.things} if referent is not None else set())
        # Only then are the tools' argument schemas read (built anew on each call: not for every message).
        if takes or routed.lists:
            for name in scores:
                found = self.deps.tool(name)
                if found is not None and about_thing(found, takes, routed.lists):
                    scores[name] += 0.25
        tool_fit = max(scores.values(), default=0.0)
        turn["tool_fit"] = tool_fit
        # Passages cost the small model seconds of prompt time: included for questions about how the lab works,
        # or when no tool fits the message; a question about the lab as it is now goes to the tools alone.
        wanted = routed.route == "docs" or (routed.route == "lab" and tool_fit < self.deps.tool_fit_floor)
        # The hits come re-ranked, best first; the floor is on the search's own score. When some hit reaches it,
        # the re-ranker's first stays too: "what graphics card ...?" shares no word with the page's "GPU", so
        # the page's first passage (the one naming the card) ranks first on meaning but scores under the floor.
        # A message routed to the documentation (by its wording, or the model's choice) is given its best passages
        # down to a lower floor: a question translated from another language shares fewer words with the page.
        floor = self.deps.docs_min_score - (DOCS_ROUTED_SLACK if routed.route == "docs" else 0.0)
        relevant = best >= floor
        passages = [
            _passage(h)
            for i, h in enumerate(hits)
            if wanted and relevant and (i == 0 or h.score >= self.deps.docs_min_score)
        ]
        if routed.route == "lab" and not passages and relevant and ADVICE.search(text):
            # "qso-vae-dev backup failed, what now?": the tools answer what is; the page's best sentence, under
            # their answer, what to do (agent.answers). Kept from the model's prompt: its choice of tool is the same.
            turn["advice"] = [_passage(h) for h in hits if h.score >= floor]
        if not mentions_docs(text):
            scores.pop("docs.search", None)  # the retrieve step already searched the documentation
        # A change nobody asked for would be refused by the intent gate (agent.intent) after the model spent a
        # call on it: such tools are not offered. "How many daily snapshots does the backup server keep?" got
        # backup.run, and a question for its vmid instead of the retention.
        said = recent_user_text({**state, "turn": turn})
        # Nothing in a thread's first message can stand for an id (a number, a job's id, a name's note): a read
        # of one thing by its id could only be called on a guess, which is refused. "Any of my ray jobs still
        # going?" got ray.status {"job_id": "your_job_id"} instead of ray.list.
        no_ids = not before and referent is None and not _ID_LIKE.search(str(turn["asked"]))
        askable: dict[str, float] = {}
        # The latest request wins: after "turn off void-analysis", "actually turn it back on" asks for a start,
        # though the stop is still among the recent messages the gate reads.
        asking = str(turn["asked"])
        writes = [t for t in (self.deps.tool(n) for n in scores) if t is not None and t.risk != "read"]
        if not any(asks_in_words(t, asking) for t in writes):
            asking = said
        for name, score in scores.items():
            found = self.deps.tool(name)
            if found is None or not (asked_for(found, said) or name == turn.get("requested")):
                continue
            if no_ids and found.risk == "read" and _needs_id(found):
                continue
            # The message asks for this kind of change in its own words ("back up VM 132"), which its meaning
            # alone ranked below the VM tools that "VM" points to. Whole words only: "my stopped VMs" passes the
            # gate's broad test for vm.stop but asks for nothing.
            asked = found.risk != "read" and (asks_in_words(found, asking) or name == turn.get("requested"))
            askable[name] = score + (0.25 if asked else 0.0)
        if routed.lists:
            for name in self.deps.selector.beside(set(routed.takes), set(routed.lists)):
                askable.pop(name, None)
        tools = [t.name for t in self.deps.selector.select(about, self.bounds.max_tools_in_prompt, askable)]
        if routed.tool is not None and routed.tool not in tools:
            tools = [routed.tool, *tools][: max(1, self.bounds.max_tools_in_prompt)]
        offtopic = routed.route == "chat" or (not passages and tool_fit < self.deps.offtopic_floor)
        docs_first = bool(passages) and routed.route == "docs"
        turn["passages"], turn["tools"], turn["asks_docs"], turn["offtopic"] = passages, tools, docs_first, offtopic
        if passages:
            _emit({"type": "retrieved", "citations": [p["citation"] for p in passages]})
        return {"turn": turn}

    def _candidates(self, scores: dict[str, float], hits: list[Any]) -> Candidates:
        """The best tool and passage, in a line each, for the router's choice."""
        tool = None
        if scores:
            name = max(scores, key=scores.__getitem__)
            found = self.deps.tool(name)
            if found is not None:
                tool = f"{name}: {found.description.splitlines()[0]}"
        passage = None
        if hits:
            top = max(hits, key=lambda h: h.score)
            passage = f"{top.source} § {top.section or top.title}: {' '.join(top.text.split())[:240]}"
        return Candidates(tool=tool, passage=passage)
