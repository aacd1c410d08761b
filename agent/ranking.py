"""The sentences of the documentation that answer a question, best first.

A page holds many facts (the verification time and the recovery-point objective sit on the same page) and a
documentation answer must give the one asked for. :func:`best_sentences` scores each sentence of the retrieved
passages by the question's words it holds, weighted by how rare each word is among the passages' sentences (so
"verified" outweighs "backups"), by meaning (the embedder), by its section heading and its passage's rank.
:func:`focused` cuts long passages to those sentences for the model's prompt.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.claims import content_terms, sentences

__all__ = ["FOCUS_SENTENCES", "WANTS_NUMBER", "WANTS_TIME", "Embed", "Ranked", "best_sentences", "focused"]

# Texts to unit vectors (knowledge.embeddings.Embedder.embed): sentences ranked by meaning, not only by words.
Embed = Callable[[list[str]], Any]

# Question words (in the languages lab members write) and the sentences that answer them.
WANTS_TIME = re.compile(
    r"\b(?:when|what time|which time|at what hour|schedul\w*)\b|\bà quelle heure|\bwann\b|\bcuándo|\ba qué hora", re.I
)
_WANTS_OFTEN = re.compile(r"\bhow often\b|\bà quelle fréquence|\bwie oft\b|\bcon qué frecuencia", re.I)
WANTS_NUMBER = re.compile(r"\bhow (?:many|much|long|big|old|far|large|fast)\b|\bcombien|\bwie viele?\b|\bcuánt", re.I)
_WANTS_WHO = re.compile(r"\bwho(?:m|se)?\b|\bwer\b|\bqui\b|\bquién|\bchi\b", re.I)
_HAS_TIME = re.compile(r"\b\d{1,2}:\d{2}\b|\b\d{1,2}\s?[ap]\.?m\b", re.I)
_HAS_OFTEN = re.compile(r"\b\d{1,2}:\d{2}\b|\b(?:daily|weekly|monthly|nightly|hourly|every)\b", re.I)
# A number that answers "how many/long/much": not a clock time's digits (09:00 answers "when").
_HAS_NUMBER = re.compile(r"(?<![\d:])\d+(?![\d:])")
# A role or a group of people: who answers "who ...?" in a lab's pages.
_HAS_WHO = re.compile(r"\b(?:administrator|admin|engineer|lead|owner|manager|team|officer|staff|member)s?\b", re.I)


def _answer_kind(question: str) -> re.Pattern[str] | None:
    """What kind of sentence answers ``question``: one with a time, a frequency, a number, a role, or no telling."""
    kinds = (WANTS_TIME, _HAS_TIME), (_WANTS_OFTEN, _HAS_OFTEN), (WANTS_NUMBER, _HAS_NUMBER), (_WANTS_WHO, _HAS_WHO)
    for wants, has in kinds:
        if wants.search(question):
            return has
    return None


@dataclass(kw_only=True, frozen=True)
class Ranked:
    """A sentence of a passage, where it is from, and how well it matches the question."""

    sentence: str
    citation: str
    score: float


def _blocks(text: str) -> list[str]:
    """A passage's paragraphs, list items and table rows, with hard-wrapped lines joined again."""
    blocks: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            blocks.append("")
            continue
        # A heading is "#" and a space: "#lab-incidents" on a wrapped line is a Slack channel in the sentence.
        starts = re.match(r"^(?:[-*+]\s|\d+[.)]\s|\||#{1,6}\s)", stripped)
        if starts or not blocks or not blocks[-1]:
            blocks.append(stripped)
        else:
            blocks[-1] += " " + stripped
    return [b for b in blocks if b]


def _rule(text: str) -> bool:
    """Whether ``text`` is only a table's ruling (``|---|:--:|``), no content."""
    return set(text) <= set("|-: ")


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _with_headers(blocks: list[str]) -> list[str]:
    """Table rows read with their column names ("role: researcher; VMs: 3; ..."); other blocks as they are.

    A bare row ("researcher | 3 | 16 | 64 GiB") says nothing on its own: quoted as an answer, or shown to the
    model among other sentences, it needs the header line above the table's separator.
    """
    out: list[str] = []
    header: list[str] = []
    for i, block in enumerate(blocks):
        if not block.startswith("|"):
            header = []
            out.append(block)
            continue
        if _rule(block):
            continue  # the separator under the header
        if i + 1 < len(blocks) and _rule(blocks[i + 1]) and blocks[i + 1].startswith("|"):
            header = _cells(block)
            continue
        cells = _cells(block)
        if header and len(header) == len(cells):
            out.append("; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=True) if c))
        else:
            out.append(block)
    return out


def _sentences_of(passage: dict[str, Any]) -> list[str]:
    """A passage's sentences (list items and table rows count as sentences), in document order."""
    found = []
    for block in _with_headers(_blocks(str(passage.get("text", "")))):
        plain = re.sub(r"\*\*|__", "", block).strip().lstrip("-*+|# ").strip()
        found += [s for s in sentences(plain) if len(s) >= 12 and not _rule(s)]
    return found


# What besides its own words tells that a sentence answers: its section's heading holding the question's words
# ("the subnet of the management network": the sentence "Subnet 10.16.207.0/24" under "Management network", not
# the one under "Data network"), and how high the search ranked its passage (the re-ranker read the whole
# passage). Measured on the dev cases the router sends to the documentation (68; sentence@1 = the best sentence
# holds every expected fact): 47 without either, 49 with the heading, 51 with the rank, 55 with both (a plateau
# of 53-55 over heading weights 0.5-2 and rank weights 0.4-0.8); with "who ...?" answered by a role, 56.
HEADING_WEIGHT = 1.0
RANK_WEIGHT = 0.4


def best_sentences(
    question: str, passages: list[dict[str, Any]], *, k: int = 3, embed: Embed | None = None
) -> list[Ranked]:
    """The ``k`` sentences of ``passages`` that best match ``question`` (best first; ties keep document order).

    The score adds the question's words a sentence holds (weighted by rarity among the sentences), the
    sentence embedding's cosine with the question's (``embed``, when given), the question's words its section
    heading holds, its passage's rank in ``passages`` (best first), and a bonus for holding the kind of fact the
    question asks for (a time for "when", a number for "how many", a role for "who").
    """
    headings = [frozenset(content_terms(str(p.get("section", "")))) for p in passages]
    pool = [
        (sentence, str(p.get("citation", "")), rank, headings[rank])
        for rank, p in enumerate(passages)
        for sentence in _sentences_of(p)
    ]
    if not pool:
        return []
    asked = set(content_terms(question))
    docs = [set(content_terms(s)) for s, *_ in pool]
    freq = Counter(t for d in docs for t in d)
    n = len(docs)
    wants = _answer_kind(question)
    similarity = [0.0] * len(pool)
    if embed is not None:
        vectors = np.asarray(embed([question, *(s for s, *_ in pool)]))
        similarity = [float(x) for x in vectors[1:] @ vectors[0]]
    ranked = []
    for (sentence, citation, rank, heading_terms), terms, sim in zip(pool, docs, similarity, strict=True):
        overlap = asked & terms
        lexical = sum(math.log(1 + n / freq[t]) for t in overlap) / math.sqrt(1 + 0.05 * len(terms))
        score = lexical / max(1.0, math.log(1 + n) * len(asked)) + 2.0 * sim
        heading = (asked & heading_terms) - overlap
        score += HEADING_WEIGHT * len(heading) / max(1, len(asked))
        score += RANK_WEIGHT / (1 + rank)
        if (overlap or sim > 0.3) and wants is not None and wants.search(sentence):
            score += 0.5  # "when ...?" is answered by a sentence with a time in it, "how many ...?" by a number
        ranked.append(Ranked(sentence=sentence, citation=citation, score=score))
    order = sorted(range(len(ranked)), key=lambda i: (-ranked[i].score, i))
    return [ranked[i] for i in order[:k] if ranked[i].score > 0]


# What the model is shown of a long passage for one question: its sentences among the best of all passages (at
# most this many, scoring at least this share of the best one's score). A passage up to FOCUS_MIN_CHARS is
# shown whole: it costs few tokens, and the sentence ranking is crude ("the usual selection is `zwarn = 0`"
# ranked fourth of six for "the usual cut for good redshifts", and the model, shown three sentences, missed it).
FOCUS_SENTENCES = 6
FOCUS_SHARE = 0.5
FOCUS_MIN_CHARS = 350


def focused(question: str, passages: list[dict[str, Any]], *, embed: Embed | None = None) -> list[dict[str, Any]]:
    """Long passages cut to the sentences that best match ``question`` (kept in document order); short ones whole.

    On the 2-core machine the model reads a prompt at about 54 tokens a second: three whole passages (up to
    ~500 tokens) cost more time than writing the answer. Their best sentences are also what the answer must
    give (the verification time, not the recovery point of the same page). A passage none of whose sentences
    is kept is left out; the citation stays with the sentences. The full passages stay the turn's evidence.
    Measured on the 58 dev documentation cases (53 passed with whole passages, median 8.4 s): cutting every
    passage gave 52 and 6.2 s (two short passages' facts ranked low); with short passages whole, 54 and 5.6 s.
    """
    ranked = best_sentences(question, passages, k=FOCUS_SENTENCES, embed=embed)
    if not ranked:
        return passages
    kept = {(r.citation, r.sentence) for r in ranked if r.score >= FOCUS_SHARE * ranked[0].score}
    out = []
    for p in passages:
        if len(str(p.get("text", ""))) <= FOCUS_MIN_CHARS:
            out.append(p)
            continue
        citation = str(p.get("citation", ""))
        chosen = [s for s in _sentences_of(p) if (citation, s) in kept]
        if chosen:
            out.append({**p, "text": " … ".join(chosen) if len(chosen) > 1 else chosen[0]})
    return out or passages
