"""Tool retrieval: offer the model only the tools a message is about, in the registry's fixed order.

Every tool schema in the prompt costs the small model prompt-evaluation time, and a long list of
similar tools costs it accuracy. Each tool's card (its name, docstring, argument descriptions and example
requests, i.e. its one declaration) is embedded once; a message is embedded (a few ms) and the closest tools
are kept, plus the tools of a family the message names outright (its toolset's ``words``: "backup", "ray").
Within a family, a tool's own ``words`` settle look-alikes ("failed" points to ``backup.check``, not
``backup.status``). The kept tools keep the registry's order so that the same selection renders the same
prompt prefix. Nothing here names a tool: all of it is read from the tools' declarations.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import numpy as np

from knowledge.embeddings import Embedder
from tools.base import Tool, Toolset

__all__ = ["ToolSelector", "about_thing", "card", "listed", "vocabulary"]


# A look-alike stays on offer only when it fits clearly better than the tool the message's word names: on
# "how many daily snapshots ... keep?" backup.status and backup.jobs ("keep") fit equally (0.87), and the model,
# shown both, took backup.status; on "which vms have never been backed up" backup.check beats backup.status
# ("backed up") by 0.11.
LOOK_ALIKE_MARGIN = 0.05


def _has(lowered: str, word: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(word.strip().lower())}(?![a-z])", lowered) is not None


# A question for a list or a count: its opening words, then (a few words on) what is listed. English grammar, read
# on the English text (a message in another language is translated first).
_LIST_OPENER = re.compile(
    r"\b(?:how many|number of|count(?: of)?|which|what|list|show(?: me)?|any|all|are there|total(?: number of)?)\s+",
    re.I,
)
# How many words may stand between the opener and what is listed ("which of my vms", "how many stopped vms").
_LIST_GAP = 3


def listed(text: str, tools: list[Tool[Any]]) -> set[str]:
    """The tools whose rows a message asks for a list or a count of (``Tool.rows``: "how many VMs ...").

    After each opener, the first words that are some tool's rows win (the longest phrase at a place first, so
    "which backup jobs" is backup.jobs' and not ray.list's "jobs").
    """
    return set(listed_phrases(text, tools))


def listed_phrases(text: str, tools: list[Tool[Any]]) -> dict[str, tuple[str, ...]]:
    """:func:`listed`'s tools, each with the row phrase the message used (``{"vm.list": ("vm", "templates")}``)."""
    phrases = sorted(((r.lower().split(), t.name) for t in tools for r in t.rows), key=lambda p: -len(p[0]))
    found: dict[str, tuple[str, ...]] = {}
    for opener in _LIST_OPENER.finditer(text):
        words = re.findall(r"[\w-]+", text[opener.end() :].lower())[: _LIST_GAP + 3]
        for at in range(min(_LIST_GAP, len(words)) + 1):
            hit = next(((name, phrase) for phrase, name in phrases if words[at : at + len(phrase)] == phrase), None)
            if hit is not None:
                found.setdefault(hit[0], tuple(hit[1]))
                break
    return found


def _parts(phrase: tuple[str, ...]) -> set[str]:
    """The shorter runs of words inside ``phrase`` ("vm templates": "vm", "templates")."""
    n = len(phrase)
    return {" ".join(phrase[i:j]) for i in range(n) for j in range(i + 1, n + 1) if j - i < n}


def about_thing(tool: Tool[Any], takes: Collection[str], lists: Collection[str]) -> bool:
    """Whether ``tool`` takes a named thing (one of the arguments ``takes``) or is a listing of it (in ``lists``).

    The tool's argument schema is built anew on each call: ask only for a message that names something.
    """
    return tool.name in lists or bool(set(takes) & set(tool.json_schema().get("properties", {})))


def card(tool: Tool[Any]) -> str:
    """The text a tool is retrieved by: its name, description, arguments and example requests."""
    props = tool.json_schema().get("properties", {})
    fields = "; ".join(f"{name}: {p.get('description', '')}" for name, p in props.items())
    examples = " ".join(tool.examples)
    return f"{tool.name.replace('.', ' ')}. {tool.description} {fields} {examples}".strip()


def vocabulary(tools: list[Tool[Any]], toolsets: tuple[Toolset, ...]) -> list[str]:
    """Every text the tools are declared with (cards, words, asking phrases): the lab's words for a speller."""
    texts = [card(t) for t in tools]
    texts += [" ".join((*t.words, *t.asks)) for t in tools]
    texts += [" ".join(s.words) for s in toolsets]
    return texts


class ToolSelector:
    """Chooses the tools to offer for a message."""

    def __init__(self, tools: list[Tool[Any]], embedder: Embedder | None, toolsets: tuple[Toolset, ...] = ()) -> None:
        self.tools = tools
        self.embedder = embedder
        offered = {t.name for t in tools}
        self.toolsets = tuple(s for s in toolsets if any(t.name in offered for t in s.tools))
        self.vectors = embedder.embed([card(t) for t in tools]) if embedder is not None else None

    def families(self, text: str) -> set[str]:
        """The tool families a message names outright ("backup", "ray", ...)."""
        lowered = f" {text.lower()} "
        return {s.name for s in self.toolsets if any(_has(lowered, w) for w in s.words)}

    def scores(self, text: str) -> dict[str, float]:
        """Similarity of ``text`` to every tool (0 when no embedder), plus family-word boosts."""
        out = {t.name: 0.0 for t in self.tools}
        if self.embedder is not None and self.vectors is not None:
            query = self.embedder.embed([text])[0]
            for tool, sim in zip(self.tools, np.asarray(self.vectors) @ query, strict=True):
                out[tool.name] = float(sim)
        named = self.families(text)
        for tool in self.tools:
            if tool.name.split(".")[0] in named:
                out[tool.name] += 0.25
        return out

    def decisive(self, text: str) -> set[str]:
        """Tools a message points to by a word of their own, where it also names their family."""
        lowered = f" {text.lower()} "
        families = self.families(text)
        return {
            t.name
            for t in self.tools
            if t.words and t.name.split(".")[0] in families and any(_has(lowered, w) for w in t.words)
        }

    def beside(self, takes: set[str], lists: set[str]) -> set[str]:
        """The reads a message naming things passes by: its things' family's reads that neither take nor list them.

        "What is the state of the VM monitoring?" names a VM (``takes`` ``vmid``, listed by ``vm.list``): vm.show
        and vm.list are about it, vm.nodes is not, and the model, offered all three, called vm.nodes.
        """
        families = {name.split(".")[0] for name in lists}
        return {
            t.name
            for t in self.tools
            if t.risk == "read" and t.name.split(".")[0] in families and not about_thing(t, takes, lists)
        }

    def select(self, text: str, k: int, scores: dict[str, float] | None = None) -> list[Tool[Any]]:
        """The ``k`` most relevant tools, in registry order (``scores`` from :meth:`scores`, if at hand)."""
        scores = dict(scores if scores is not None else self.scores(text))
        risk = {t.name: t.risk for t in self.tools}
        decisive = self.decisive(text) & set(scores)
        phrases = listed_phrases(text, self.tools)
        rows = set(phrases) & set(scores)
        if rows:
            # "What vm templates are there?" lists vm.list's "vm templates": ray.templates' word "templates" is a part
            # of that phrase, no reason of its own to offer it (the model, offered both, listed the job templates).
            inside = set().union(*(_parts(phrases[name]) for name in rows))
            for tool in self.tools:
                if tool.name in scores and tool.name not in rows | decisive and tool.risk == "read" and any(
                        w.lower() in inside for w in (*tool.rows, *tool.words)):  # fmt: skip
                    del scores[tool.name]
            # "How many VMs does the cluster have?" asks for VMs: vm.nodes ("cluster") fit its words better, and the
            # model, shown both, counted nodes. What a question lists settles its family's reads, however close,
            # but for a tool its own words name ("which jobs can I run?" lists jobs, and is ray.templates').
            families = {name.split(".")[0] for name in rows}
            for name in list(scores):
                if name not in rows | decisive and risk[name] == "read" and name.split(".")[0] in families:
                    del scores[name]
        if decisive:
            # The best decisive tool of each family its words settle.
            settled: dict[str, float] = {}
            for name in decisive:
                family = name.split(".")[0]
                settled[family] = max(settled.get(family, -1.0), scores[name])
            for name in list(scores):
                family = name.split(".")[0]
                if family in settled and name not in decisive and risk[name] == "read" and scores[name] <= settled[
                        family] + LOOK_ALIKE_MARGIN:  # fmt: skip
                    # The read look-alikes of a tool the message named; an action stays on offer ("start the
                    # stopped VM" names vm.list's word and asks for vm.start). A look-alike that fits the
                    # message better stays too: the words and the meaning disagree, and the model chooses
                    # ("which VMs have never been backed up?" has backup.status's "backed up", and is
                    # backup.check's question).
                    del scores[name]
        chosen = set(sorted(scores, key=lambda n: -scores[n])[:k])
        return [t for t in self.tools if t.name in chosen]
