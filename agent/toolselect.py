"""Tool retrieval: offer the model only the tools a message is about, in the registry's fixed order.

Every tool schema in the prompt costs the small model prompt-evaluation time, and a long list of
similar tools costs it accuracy. Each tool's card (its name, docstring and argument descriptions, i.e.
its one declaration) is embedded once; a message is embedded (a few ms) and the closest tools are kept,
plus words that name a tool family outright ("backup", "ray", "vm", "desi"). The kept tools keep the
registry's order so that the same selection renders the same prompt prefix.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from knowledge.embeddings import Embedder
from tools.base import Tool

__all__ = ["ToolSelector"]

_FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "vm": ("vm", "vms", "virtual machine", "node", "nodes", "provision", "reboot", "shut down", "machine"),
    "backup": ("backup", "backups", "backed up", "snapshot", "restore", "pbs", "verify", "verification", "datastore",
               "rpo"),
    "ray": ("ray", "job", "jobs", "cluster job", "histogram", "submit"),
    "desi": ("desi", "redshift", "quasar", "quasars", "galaxy", "galaxies", "qso", "targetid", "dr1", "sql",
             "spectype", "arcmin", "ra ", "dec ", "cone", "stars", "zpix"),
    "docs": ("how do i", "how to", "policy", "runbook", "documentation", "docs", "who is", "what is the"),
}  # fmt: skip
# Within a family the small model confuses look-alike tools (backup.status for "backup problems"); these words
# settle it: with the family named, a tool they point to is offered without its look-alikes.
_TOOL_WORDS: dict[str, tuple[str, ...]] = {
    "backup.check": ("problem", "problems", "failed", "failing", "unverified", "stale", "properly", "attention",
                     "healthy", "issues", "wrong"),
    "backup.jobs": ("backup job", "backup jobs", "in no", "not in any", "schedule", "scheduled", "configured"),
    "backup.datastore": ("datastore", "how full", "space left", "disk space"),
}  # fmt: skip


def _has(lowered: str, word: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(word.strip())}(?![a-z])", lowered) is not None


def _families(text: str) -> set[str]:
    """The tool families a message names outright ("backup", "ray", ...)."""
    lowered = f" {text.lower()} "
    return {family for family, words in _FAMILY_WORDS.items() if any(_has(lowered, w) for w in words)}


def card(tool: Tool[Any]) -> str:
    """The text a tool is retrieved by."""
    props = tool.json_schema().get("properties", {})
    fields = "; ".join(f"{name}: {p.get('description', '')}" for name, p in props.items())
    return f"{tool.name.replace('.', ' ')}. {tool.description} {fields}"


class ToolSelector:
    """Chooses the tools to offer for a message."""

    def __init__(self, tools: list[Tool[Any]], embedder: Embedder | None) -> None:
        self.tools = tools
        self.embedder = embedder
        self.vectors = embedder.embed([card(t) for t in tools]) if embedder is not None else None

    def scores(self, text: str) -> dict[str, float]:
        """Similarity of ``text`` to every tool (0 when no embedder), plus family-word boosts."""
        out = {t.name: 0.0 for t in self.tools}
        if self.embedder is not None and self.vectors is not None:
            query = self.embedder.embed([text])[0]
            for tool, sim in zip(self.tools, np.asarray(self.vectors) @ query, strict=True):
                out[tool.name] = float(sim)
        named = _families(text)
        for tool in self.tools:
            if tool.name.split(".")[0] in named:
                out[tool.name] += 0.25
        return out

    def decisive(self, text: str) -> set[str]:
        """Tools a message points to by a word of their own, where it also names their family."""
        lowered = f" {text.lower()} "
        families = _families(text)
        return {
            name
            for name, words in _TOOL_WORDS.items()
            if name.split(".")[0] in families and any(_has(lowered, w) for w in words)
        }

    def select(self, text: str, k: int, scores: dict[str, float] | None = None) -> list[Tool[Any]]:
        """The ``k`` most relevant tools, in registry order (``scores`` from :meth:`scores`, if at hand)."""
        scores = dict(scores if scores is not None else self.scores(text))
        decisive = self.decisive(text) & set(scores)
        if decisive:
            settled = {name.split(".")[0] for name in decisive}
            for name in list(scores):
                if name.split(".")[0] in settled and name not in decisive:
                    del scores[name]  # the look-alikes of a tool the message named
        chosen = set(sorted(scores, key=lambda n: -scores[n])[:k])
        return [t for t in self.tools if t.name in chosen]
