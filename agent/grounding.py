"""No fact without a source: every checkable statement of an answer is looked up in the turn's evidence.

A *claim* is something a reader could check and be misled by: a number (with its unit), an identifier (a VM
or node name, a job or approval id, an IP address or subnet, a hyphenated resource name), a time or a date,
and the state of a named thing (running, stopped, failed, offline, ...). The *evidence* of a turn is what the
tools returned (their messages and data), the passages of the documentation that were cited, and the user's
own words. The check is deterministic and knows no lab facts: it reads names, fields and values from the
evidence itself.

- A claim found nowhere in the evidence is **unsourced**.
- A claim the tool data states otherwise is a **contradiction**: "void-analysis is stopped" when ``vm.list``
  says running, "8 cores" when the VM's ``cores`` field says 4, a number given as the ``flux_g`` of an object
  when it is the object's ``ebv``.

:func:`check` reports problems per sentence (claims are found by :mod:`agent.claims`, contradictions by
:mod:`agent.contradictions`); :func:`prune` drops the sentences that have one (the caller
then adds the evidence's own words, so what remains is sourced); :func:`readable` writes raw epoch
timestamps the model copied from tool data as UTC times.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.claims import (
    CITATION,
    NUMBER,
    Claim,
    Problem,
    content_terms,
    date_keys,
    mask_claims,
    number_claims,
    sentences,
    time_key,
)
from agent.codeblocks import drop_empty_fences, fenced_lines
from agent.contradictions import entity_problems

__all__ = ["Evidence", "Pruned", "check", "prune"]


# --- evidence -------------------------------------------------------------------------------------------------
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
        known = None if sources is None else frozenset(_document(str(s)) for s in sources)
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


def _sourced(claim: Claim, evidence: Evidence) -> bool:
    if claim.kind == "number":
        return evidence.has_number(claim.text)
    if claim.kind == "time":
        key = time_key(claim.text)
        return key is not None and (evidence.says(key) or evidence.says(key.lstrip("0")))
    if claim.kind == "date":
        keys = date_keys(claim.text)
        if any(evidence.says(k) for k in keys):
            return True
        # A date the data holds as an epoch timestamp.
        iso = keys[0]
        return any(
            isinstance(v, int | float)
            and 1e9 < v < 4e9
            and dt.datetime.fromtimestamp(v, dt.UTC).strftime("%Y-%m-%d").endswith(iso.lstrip("-"))
            for row in evidence.records
            for v in row.values()
        )
    if claim.kind == "expansion":
        # What an abbreviation stands for: each of its words in the evidence ("RPO (recovery point objective)"
        # where a page has "RPO", "recovery point" and "Objectives"); "Portable Batch System" had none of its own.
        words = [w for w in re.findall(r"[a-z]+", claim.text.lower()) if len(w) >= 3]
        return all(re.search(rf"\b{w}", evidence.haystack) for w in words)
    if claim.kind == "id" and claim.text.lower().startswith("node"):
        return evidence.says(claim.text.replace(" ", ""))
    if claim.kind == "ref":
        # "VM 3", "id 132": the id of something the data, the passages or the user name.
        number = re.sub(r"\D", "", claim.text)
        return (
            number in evidence.entities()
            or bool(re.search(rf"(?<![\d.]){number}(?![\d.])", evidence.user_text))
            or (not evidence.entities() and evidence.has_number(number))
        )
    return evidence.says(claim.text)


# --- the check ------------------------------------------------------------------------------------------------
@dataclass(kw_only=True, frozen=True)
class _Verdict:
    sentence: str
    problems: list[Problem]


def _document(name: str) -> str:
    name = name.strip().strip("[").strip().lower()
    return name.removesuffix(".md")


# A documentation answer's sentence must be about what its passages say. Of the words it adds to the user's
# (content words, :func:`agent.claims.content_terms`), at least SUPPORT_SHARE must occur in the evidence; a
# sentence adding fewer than SUPPORT_MIN_WORDS is not judged (short paraphrases, "Yes."). Decided on replays of
# the dev reports of 2026-12-05 and -06: the sentences this leaves out were instructions nothing in the passages
# gave ("restart the LabOps service", five steps of ssh with a password) and a printer's set-up for a lab whose
# pages have none; of the correct answers' sentences, the lowest share was 0.4 (a sentence of 9 words adding
# "from the internet").
SUPPORT_SHARE = 0.3
SUPPORT_MIN_WORDS = 4


def _support_problem(sentence: str, evidence: Evidence) -> Problem | None:
    added = set(content_terms(CITATION.sub(" ", sentence))) - evidence.said()
    if len(added) < SUPPORT_MIN_WORDS or len(added & evidence.vocabulary()) >= SUPPORT_SHARE * len(added):
        return None
    words = sentence.split()
    shown = " ".join(words[:8]) + (" …" if len(words) > 8 else "")
    return Problem(kind="unsourced", claim=shown, sentence=sentence, about="sentence",
                   detail="the sentence says what no passage, tool result or message of the user says")  # fmt: skip


def _citation_problems(sentence: str, evidence: Evidence) -> list[Problem]:
    if evidence.sources is None:
        return []
    problems = []
    for match in CITATION.finditer(sentence):
        document = _document(match.group(0).split("§", 1)[0])
        if document not in evidence.sources:
            detail = f"cites {match.group(0)}, which is not among the passages found"
            problems.append(Problem(kind="unsourced", claim=match.group(0), sentence=sentence, detail=detail,
                                    about="citation"))  # fmt: skip
    return problems


def _judge(
    sentence: str, evidence: Evidence, context: list[str], *, cite: bool = False, support: bool = False
) -> _Verdict:
    problems = _citation_problems(sentence, evidence)
    if support and (problem := _support_problem(sentence, evidence)) is not None:
        problems.append(problem)
    if cite and evidence.live is not None and not CITATION.search(sentence):
        # Where tools answered, a sentence that cites no passage is about the live lab: the documentation's
        # examples ("a VM called ray-worker-3 with 8 cores") are no source for it.
        evidence = evidence.live
    masked, claims = mask_claims(sentence)
    numbers = number_claims(masked)
    for claim in [*claims, *numbers]:
        if not _sourced(claim, evidence):
            problems.append(Problem(kind="unsourced", claim=claim.text, sentence=sentence, about=claim.kind,
                                    detail=f"{claim.kind} {claim.text!r} is in no tool result, passage or "
                                    "message of the user"))  # fmt: skip
    entities = evidence.entities()
    if entities:
        problems += entity_problems(sentence, evidence.user_text, entities, context)
    return _Verdict(sentence=sentence, problems=problems)


def _code_problem(line: str, evidence: Evidence) -> Problem | None:
    """A line of a fenced code block is one claim: a command or a query the evidence holds as written.

    Asked for a VM, the model wrote a ``labops tool call ray.submit ...`` block that no page or result held;
    each of its words had a source, the command did not.
    """
    code = line.strip()
    if not code or evidence.says(code):
        return None
    return Problem(kind="unsourced", claim=code[:80], sentence=line, about="code",
                   detail="the code line is in no tool result, passage or message of the user")  # fmt: skip


def check(answer: str, evidence: Evidence, *, cite: bool = False) -> list[Problem]:
    """Every problem of ``answer``: unsourced claims and contradictions with the tool data.

    With ``cite`` (tools answered the turn), passages support only the sentences that cite one
    (``[document § section]``); the others must stand on the tool results and the user's words. A line of a
    fenced code block must be in the evidence as written.
    """
    problems: list[Problem] = []
    seen: list[str] = []
    for line, code in fenced_lines(answer):
        if code:
            problems += [p for p in [_code_problem(line, evidence)] if p is not None]
            continue
        for sentence in sentences(line):
            problems += _judge(sentence, evidence, seen, cite=cite).problems
            seen.append(sentence)
    return problems


@dataclass(kw_only=True, frozen=True)
class Pruned:
    """An answer with its unsupported sentences left out."""

    text: str
    dropped: list[Problem]


_MARKER = re.compile(r"^(?:\d{1,2}[.)]|[-*+])$")


def prune(answer: str, evidence: Evidence, *, cite: bool = False, support: bool = False) -> Pruned:
    """``answer`` without the sentences that state something the evidence does not support.

    Sentences are kept in order with their line breaks; a list item is a sentence of its own. ``cite`` is as
    in :func:`check`. With ``support`` (a documentation answer), a sentence must also be about what the
    evidence says, not only free of unsourced claims (:data:`SUPPORT_SHARE`).
    """
    kept: list[str] = []
    dropped: list[Problem] = []
    seen: list[str] = []
    for line, code in fenced_lines(answer):
        if code:
            problem = _code_problem(line, evidence)
            if problem is None:
                kept.append(line)
            else:
                dropped.append(problem)
            continue
        good: list[str] = []
        for sentence in sentences(line):
            verdict = _judge(sentence, evidence, seen, cite=cite, support=support)
            seen.append(sentence)
            if verdict.problems:
                dropped += verdict.problems
            else:
                good.append(sentence)
        if good and all(_MARKER.match(g) for g in good):
            good = []  # a list item's number ("2.") whose text was left out, or that had none
        if good or not line.strip():
            kept.append(" ".join(good))
    text = "\n".join(kept)
    # A code block whose every line was left out goes too, fences and all.
    text = drop_empty_fences(text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return Pruned(text=text, dropped=dropped)
