"""A turn's evidence, indexed for the grounding check: its texts, records, numbers and the things it names.

:class:`Evidence` holds what an answer may state (tool messages and data, the cited passages, the user's words)
with the lookups :mod:`agent.grounding` makes for every claim: a phrase in the haystack, a number in any unit
or rounding the data allows, the rows a name stands for.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.claims import NUMBER, content_terms

__all__ = ["Evidence", "document_name"]


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _rows(value: Any, out: list[dict[str, Any]], depth: int = 0) -> None:
    """Every dict in ``value`` (rows of lists, nested objects), for per-entity checks."""
    if depth > 4:
        return
    if isinstance(value, dict):
        out.append(value)
        for v in value.values():
            if isinstance(v, dict | list):
                _rows(v, out, depth + 1)
    elif isinstance(value, list):
        for v in value[:500]:
            _rows(v, out, depth + 1)


def _numbers_in_text(text: str) -> Iterator[float]:
    for match in NUMBER.finditer(text):
        try:
            yield float(match.group(1).replace(",", ""))
        except ValueError:
            continue


def _counts(value: Any) -> set[float]:
    """Counts a reader may derive from data: list lengths, and how many rows share a field's value."""
    out: set[float] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            out.add(float(len(item)))
            rows = [r for r in item[:500] if isinstance(r, dict)]
            for key in {k for r in rows for k in r}:
                tally = Counter(str(r.get(key)) for r in rows if not isinstance(r.get(key), dict | list))
                out.update(float(n) for n in tally.values())
            stack.extend(v for v in item[:500] if isinstance(v, dict | list))
    return out


# Unit steps between a number in the data and the same quantity written otherwise.
_SCALES = (1.0, 0.01, 100.0, *(float(b**p) ** s for b in (1000, 1024) for p in (1, 2, 3, 4) for s in (1, -1)))


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("\u2019", "'").split())


def document_name(name: str) -> str:
    """A cited document's name as the evidence keeps it: lower case, without brackets or ``.md``."""
    name = name.strip().strip("[").strip().lower()
    return name.removesuffix(".md")


@dataclass(kw_only=True)
class Evidence:
    """What a turn's answer may state: tool results (messages and data), cited passages, the user's words."""

    texts: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    user_text: str = ""
    numbers: set[float] = field(default_factory=set)
    _haystack: str = ""
    _rounded: dict[int, set[float]] = field(default_factory=dict)
    _entities: dict[str, list[dict[str, Any]]] | None = None
    # The same evidence without the documentation's passages (None when there were none).
    live: Evidence | None = None
    # The documents the passages are from ("backup-policy.md"); None when the caller did not say.
    sources: frozenset[str] | None = None
    _vocabulary: frozenset[str] | None = None
    _said: frozenset[str] | None = None

    @classmethod
    def build(
        cls,
        *,
        results: Iterable[tuple[str, Any]] = (),
        passages: Iterable[str] = (),
        user_texts: Iterable[str] = (),
        sources: Iterable[str] | None = None,
    ) -> Evidence:
        """Evidence from ``(message, data)`` tool results, passage texts and the user's messages.

        ``sources`` names the documents the passages are from: a citation of any other is then unsourced.
        """
        known = None if sources is None else frozenset(document_name(str(s)) for s in sources)
        texts: list[str] = []
        records: list[dict[str, Any]] = []
        numbers: set[float] = set()
        for message, data in results:
            texts.append(str(message))
            if data is not None:
                texts.append(json.dumps(data, default=str, ensure_ascii=False))
                _rows(data, records)
                numbers.update(
                    float(v) for v in _leaves(data) if isinstance(v, int | float) and not isinstance(v, bool)
                )
                numbers.update(_counts(data))
        users = [str(u) for u in user_texts]
        texts.extend(users)
        for text in texts:
            numbers.update(_numbers_in_text(text))
        haystack = _norm("\n".join(texts))
        live = cls(
            texts=texts, records=records, user_text="\n".join(users), numbers=numbers, _haystack=haystack, sources=known
        )
        cited = [str(p) for p in passages]
        if not cited:
            return live
        every = [*texts, *cited]
        return cls(
            texts=every,
            records=records,
            user_text=live.user_text,
            numbers=numbers | {n for text in cited for n in _numbers_in_text(text)},
            _haystack=_norm("\n".join(every)),
            live=live,
            sources=known,
        )

    @property
    def haystack(self) -> str:
        """Every text of the evidence, lower-cased, spacing collapsed (what :meth:`says` searches)."""
        return self._haystack

    def says(self, text: str) -> bool:
        """Whether ``text`` occurs in the evidence (case and spacing ignored)."""
        return _norm(text) in self._haystack

    def has_number(self, written: str) -> bool:
        """Whether the number as written (``16``, ``38.8``, ``1,234``) is in the evidence.

        Rounding to the written precision is allowed, and so are the usual unit steps: 1000 and 1024 (MB and GB,
        GiB and TiB, bytes and GiB) and a ratio written as a percentage.
        """
        try:
            value = float(written.replace(",", ""))
        except ValueError:
            return True
        decimals = min(len(written.split(".")[1]) if "." in written else 0, 6)
        if decimals not in self._rounded:
            self._rounded[decimals] = {
                round(known / scale, decimals) for known in self.numbers if math.isfinite(known) for scale in _SCALES
            }
        return round(value, decimals) in self._rounded[decimals]

    def vocabulary(self) -> frozenset[str]:
        """The content words of the evidence (:func:`agent.claims.content_terms`)."""
        if self._vocabulary is None:
            self._vocabulary = frozenset(content_terms("\n".join(self.texts)))
        return self._vocabulary

    def said(self) -> frozenset[str]:
        """The content words of the user's messages."""
        if self._said is None:
            self._said = frozenset(content_terms(self.user_text))
        return self._said

    def entities(self) -> dict[str, list[dict[str, Any]]]:
        """Named things in the data (by name, id, node, job id), each with the rows that describe it."""
        if self._entities is not None:
            return self._entities
        out: dict[str, list[dict[str, Any]]] = {}
        for row in self.records:
            for key in ("name", "vmid", "node", "job_id", "submission_id", "id", "targetid"):
                value = row.get(key)
                if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                    if key == "node" and ("vmid" in row or "name" in row):
                        continue  # a VM's node is where it runs: the VM's row does not describe the node
                    out.setdefault(str(value).lower(), []).append(row)
        self._entities = out
        return out
