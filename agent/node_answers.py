"""The nodes that end a turn: respond, answered, report, clarify, bounded, offtopic and refused."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage

from agent.answers import COULD_NOT_FIND, echo_reason, left_out_note, read_answer, report_text, sources_line
from agent.attribution import cite_lines
from agent.claims import CITATION, sentences
from agent.context import caller_of
from agent.deps import Nodes
from agent.docanswer import another_sentences_value, answers_asked, quote_answer, without_verdict
from agent.epochs import readable
from agent.events import emit as _emit
from agent.evidence import turn_evidence
from agent.grounding import prune
from agent.ranking import FOCUS_SENTENCES, Embed, best_sentences
from agent.referents import named_thing, things_of
from agent.state import AgentState, Turn
from agent.steering import UNSURE
from agent.toolcalls import model_name

log = logging.getLogger(__name__)

_QUESTION = re.compile(
    r"\?\s*$|^\s*(?:who|what|when|where|which|why|how|is|are|can|could|do|does|did|should|will|would|tell me"
    r"|explain)\b",
    re.I,
)


def _remembered(turn: Turn) -> dict[str, Any]:
    """The things this turn's results were about, kept for the next message's "it" (none: the last ones stay)."""
    things = things_of(list(turn.get("log", [])))
    return {"things": things} if things else {}


def _asks(text: str) -> bool:
    """Whether a message asks something (a question mark, or a question's first word)."""
    return bool(_QUESTION.search(text.strip()))


@dataclass(kw_only=True)
class AnswerNodes(Nodes):
    """The turn's last word."""

    def respond(self, state: AgentState) -> dict[str, Any]:
        """The answer: the model's words, checked against the turn's evidence, then where its facts come from.

        Every checkable statement (names, ids, numbers, times, states) must come from a tool result, a
        passage or the user's words (:mod:`agent.grounding`); a sentence with one that does not is left out,
        and the evidence's own words (the tools' summaries, the documentation's sentence) stand in for it.
        """
        turn = state["turn"].copy()
        messages = state.get("messages", [])
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage) or last.tool_calls:
            return {"turn": turn}
        evidence = turn_evidence(state)
        # A documentation answer is also held to what its passages are about (grounding.SUPPORT_SHARE): by its
        # words, so not when it may be written in the user's language and the pages in English.
        support = not turn["log"] and not turn.get("language")
        pruned = prune(readable(str(last.content), evidence), evidence, cite=bool(turn["log"]), support=support)
        question = str(turn.get("asked") or turn["text"])
        user = str(state.get("user", ""))
        dropped = list(pruned.dropped)
        if turn["log"]:
            text = read_answer(pruned.text, turn, question=question, user=user, keys=self.deps.identity_fields)
            text += self._advice(question, turn)
        else:
            # A small model sometimes gives the prompt back ("I am researcher1 (researcher). ..."): no answer.
            body = "" if echo_reason(pruned.text, question=question, user=user) else pruned.text
            if body and turn.get("passages"):
                body, verdict = without_verdict(body, question, list(turn["passages"]))
                dropped += [verdict] if verdict is not None else []
            text = self._docs_answer(body, question, turn)
        if dropped:
            text += f"\n\n{left_out_note(dropped)}"
            log.info("grounding left out %d statement(s): %s", len(dropped),
                     "; ".join(p.detail for p in dropped))  # fmt: skip
        turn["grounding"] = {"dropped": [p.as_dict() for p in dropped]}
        _emit({"type": "token", "text": text})
        return {
            "messages": [AIMessage(content=text, id=last.id, usage_metadata=last.usage_metadata)],
            "turn": turn,
            **(_remembered(turn) or self._named_in(text, state)),
        }

    def _named_in(self, answer: str, state: AgentState) -> dict[str, Any]:
        """The things an answer from the pages named ("The GPU VM is `gpu-ollama`."), kept for the next "it".

        Only what the lab lists (its VM names, by their ids); none when the answer names none.
        """
        names = self.deps.router.names
        if names is None:
            return {}
        body = answer.split("\n\nSources:")[0]
        things = []
        for name in names.named(body, caller_of(state)):
            found = names.id_of(name)
            thing = named_thing(found[0], found[1], name) if found is not None else None
            if thing is not None:
                things.append(thing)
        return {"things": things} if things else {}

    def answered(self, state: AgentState) -> dict[str, Any]:
        """The read tools answered: their summaries (and the rows the question names) are the answer.

        No model call: the turn ends as if the model had written nothing, and ``respond`` builds the answer from
        the results (:func:`agent.answers.read_answer`), so it reads as every other answer built from them.
        """
        ended: AgentState = {**state, "messages": [*state.get("messages", []), AIMessage(content="")]}
        return self.respond(ended)

    def _embed(self) -> Embed | None:
        """The sentence embedder the answer checks rank with (None: ranked by words alone)."""
        embedder = self.deps.selector.embedder
        return embedder.embed if embedder is not None else None

    def _advice(self, question: str, turn: Turn) -> str:
        """What the pages say to do, under a live answer to "..., what now?" (``turn["advice"]``; "" when nothing).

        The documentation's sentence that best matches the question, quoted with its citation, as a documentation
        answer quotes it (:func:`agent.docanswer.quote_answer`: none when it shares no word with the question).
        """
        advice = list(turn.get("advice") or [])
        if not advice:
            return ""
        quote = quote_answer(question, advice, embed=self._embed())
        if quote is None:
            return ""
        return f"\n\n{quote}\n\n{sources_line({'passages': advice}, quote)}"

    def _docs_answer(self, body: str, question: str, turn: Turn) -> str:
        passages = list(turn.get("passages", []))
        embed = self._embed()
        if turn.get("quoted") == []:
            # The model, shown the documentation's best sentences, picked none: no quote of a lesser one either.
            body, passages = "", []
        # The question's sentences ranked once, for the three checks below (each embeds them otherwise).
        ranked = best_sentences(question, passages, k=FOCUS_SENTENCES, embed=embed) if passages else []
        if passages and body:
            body = cite_lines(body, passages)
            better = another_sentences_value(body, question, passages, ranked=ranked)
            if better:
                # The model gave a value from the wrong line of the page: the line that answers replaces it, and
                # people see that something was left out, not the wrong value again.
                body = f"{better}\n\n_(Left out the model's answer: it gave the value of another line of the page.)_"
        # Every sentence says the pages do not tell ("The passage ... does not provide any information about the
        # principal investigator"): that is "I could not find that", said in LabOps's own words below, unless the
        # check just below finds a sentence of the pages to quote. Then the model's doubt stays beside the quote:
        # asked what the lab spent on hardware, the quote was the best of unrelated pages (a GPU booking rule).
        unsure = bool(body) and all(UNSURE.search(p) for p in sentences(CITATION.sub(" ", body)) if p.strip())
        missing = None
        if passages:
            missing = (
                answers_asked(body, question, passages, ranked=ranked)
                if body
                else quote_answer(question, passages, ranked=ranked)
            )
        if missing:
            body = f"{body}\n\n{missing}" if body else missing
        elif unsure:
            body = ""
        found = bool(body)
        if not found:
            body = COULD_NOT_FIND
        if turn.get("docs_missing"):
            body += f"\n\n{turn['docs_missing']}"
        # The pages searched are no source of "I could not find that".
        footer = sources_line(turn, body) if found else ""
        return f"{body}\n\n{footer}" if footer else body

    def bounded(self, state: AgentState) -> dict[str, Any]:
        """A bound was hit (tool steps or tokens): say which, what ran and what did not."""
        turn = state["turn"].copy()
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
        turn = state["turn"].copy()
        if turn.get("docs_answer") and not any(e["status"] == "ok" for e in turn["log"]):
            # The tools were a second try after the pages said nothing, and every call was refused: asked who the
            # lab's principal investigator is, the model made up an SQL table, and "Not done: query refused" was
            # the answer, under the pages searched as its sources.
            _emit({"type": "token", "text": COULD_NOT_FIND})
            return {"messages": [AIMessage(content=COULD_NOT_FIND)], "turn": turn}
        text = report_text(turn["log"])
        # The change's own report cites no page: the pages searched beside it were no source of it.
        footer = sources_line(turn, text, cited_only=True)
        answer = f"{text}\n\n{footer}" if footer else text
        _emit({"type": "token", "text": answer})
        return {"messages": [AIMessage(content=answer)], "turn": turn, **_remembered(turn)}

    def offtopic(self, state: AgentState) -> dict[str, Any]:
        """Nothing in the lab's docs or tools answers the message: say so to a question, greet a greeting."""
        helps = self.capabilities()
        if _asks(str(state["turn"]["text"])):
            text = (
                "I don't know: that is not in the lab's documentation, and none of the lab's tools covers it. "
                f"I can help with {helps}."
            )
        else:
            # "hi", "thanks, that's all", "say hello": small talk gets a short friendly answer, not a refusal.
            text = f"Hello! I'm LabOps, the lab's operations assistant. Ask me about {helps}."
        if state["turn"].get("docs_missing"):
            text += f"\n\n{state['turn']['docs_missing']}"
        _emit({"type": "token", "text": text})
        return {"messages": [AIMessage(content=text)], "turn": state["turn"].copy()}

    def capabilities(self) -> str:
        """What the agent can help with, from the toolsets it has (their titles)."""
        titles = [s.title for s in self.deps.selector.toolsets if s.title]
        if not titles:
            return "the lab"
        return ", ".join(titles[:-1]) + (f" and {titles[-1]}" if len(titles) > 1 else titles[-1])

    def clarify(self, state: AgentState) -> dict[str, Any]:
        """Ask the user what a change needs and they did not say."""
        turn = state["turn"].copy()
        text = str(turn.pop("clarify"))
        _emit({"type": "token", "text": text})
        # The next message may be the answer: it is then read with the request it completes (agent.node_model).
        return {"messages": [AIMessage(content=text)], "turn": turn, "awaiting": text}

    def refused(self, state: AgentState) -> dict[str, Any]:
        """The model could not form a valid call after repairs."""
        turn = state["turn"].copy()
        errors = [e["message"] for e in turn["log"] if e["status"] == "error"][-1:]
        text = "I could not form a valid request for the lab's tools" + (f": {errors[0]}" if errors else "") + "."
        _emit({"type": "token", "text": text})
        return {"messages": [AIMessage(content=text)], "turn": turn}
