"""A turn's evidence, and the sentences of the documentation that answer the question.

The evidence is what an answer may state (:mod:`agent.grounding`): the results of this turn's tool calls
(their messages and bounded data), the results of earlier calls in the thread (as the model saw them), the
passages retrieved for the question, and the user's own recent messages.

For documentation answers the passages are ranked sentence by sentence against the question: a page holds
many facts (the verification time and the recovery-point objective sit on the same page) and the answer
must give the one asked for. :func:`best_sentences` scores each sentence by the question's words it holds,
weighted by how rare each word is among the passages' sentences, so "verified" outweighs "backups".
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from langchain_core.messages import HumanMessage, ToolMessage

from agent.claims import CITATION, Problem, content_terms, facts, sentences
from agent.grounding import Evidence, check
from agent.state import AgentState
from agent.steering import UNSURE

__all__ = [
    "DATA_CHARS",
    "Ranked",
    "another_sentences_value",
    "answers_asked",
    "audit",
    "best_sentences",
    "bounded_data",
    "focused",
    "quote_answer",
    "turn_evidence",
]

# Texts to unit vectors (knowledge.embeddings.Embedder.embed): sentences ranked by meaning, not only by words.
Embed = Callable[[list[str]], Any]

# What a tool result keeps in the turn's log for grounding: enough rows for any listing a person reads in chat,
# bounded so that one 10,000-row query does not bloat every checkpoint of the thread.
DATA_ROWS = 200
DATA_CHARS = 40_000


def bounded_data(data: Any) -> Any:
    """Tool data as the turn keeps it: at most ``DATA_ROWS`` rows of a list and ``DATA_CHARS`` of JSON."""
    if isinstance(data, list) and len(data) > DATA_ROWS:
        data = data[:DATA_ROWS]
    if isinstance(data, dict):
        data = {k: (v[:DATA_ROWS] if isinstance(v, list) else v) for k, v in data.items()}
    try:
        text = json.dumps(data, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    if len(text) <= DATA_CHARS:
        return json.loads(text)
    if isinstance(data, list):
        kept: list[Any] = []
        size = 2
        for row in data:
            size += len(json.dumps(row, default=str, ensure_ascii=False)) + 2
            if size > DATA_CHARS:
                break
            kept.append(row)
        return json.loads(json.dumps(kept, default=str, ensure_ascii=False))
    return None


def _user_texts(state: AgentState, n: int = 3) -> list[str]:
    return [str(m.content) for m in state.get("messages", []) if isinstance(m, HumanMessage)][-n:]


def turn_evidence(state: AgentState) -> Evidence:
    """Everything the answer of the turn in ``state`` may state."""
    turn = state.get("turn") or {}
    start = int(turn.get("start", 1))
    results: list[tuple[str, Any]] = [
        (str(e.get("message", "")), e.get("data"))
        for e in turn.get("log", [])
        if e.get("status") in ("ok", "no_data", "denied", "error", "needs_approval")
    ]
    # Earlier turns' results as the model saw them (follow-ups: "which node is it on?").
    earlier = [m for m in state.get("messages", [])[: max(0, start - 1)] if isinstance(m, ToolMessage)]
    results += [(str(m.content), None) for m in earlier[-12:]]
    passages = turn.get("passages", [])
    return Evidence.build(
        results=results,
        passages=[str(p.get("text", "")) for p in passages],
        user_texts=_user_texts(state),
        sources=[str(p.get("source", "")) for p in passages],
    )


# --- the sentences that answer ---------------------------------------------------------------------------------
# Question words (in the languages lab members write) and the sentences that answer them.
_WANTS_TIME = re.compile(
    r"\b(?:when|what time|which time|at what hour|schedul\w*)\b|\bà quelle heure|\bwann\b|\bcuándo|\ba qué hora", re.I
)
_WANTS_OFTEN = re.compile(r"\bhow often\b|\bà quelle fréquence|\bwie oft\b|\bcon qué frecuencia", re.I)
_WANTS_NUMBER = re.compile(r"\bhow (?:many|much|long|big|old|far|large|fast)\b|\bcombien|\bwie viele?\b|\bcuánt", re.I)
_WANTS_WHO = re.compile(r"\bwho(?:m|se)?\b|\bwer\b|\bqui\b|\bquién|\bchi\b", re.I)
_HAS_TIME = re.compile(r"\b\d{1,2}:\d{2}\b|\b\d{1,2}\s?[ap]\.?m\b", re.I)
_HAS_OFTEN = re.compile(r"\b\d{1,2}:\d{2}\b|\b(?:daily|weekly|monthly|nightly|hourly|every)\b", re.I)
_HAS_NUMBER = re.compile(r"\d")
# A role or a group of people: who answers "who ...?" in a lab's pages.
_HAS_WHO = re.compile(r"\b(?:administrator|admin|engineer|lead|owner|manager|team|officer|staff|member)s?\b", re.I)


def _answer_kind(question: str) -> re.Pattern[str] | None:
    """What kind of sentence answers ``question``: one with a time, a frequency, a number, a role, or no telling."""
    kinds = (_WANTS_TIME, _HAS_TIME), (_WANTS_OFTEN, _HAS_OFTEN), (_WANTS_NUMBER, _HAS_NUMBER), (_WANTS_WHO, _HAS_WHO)
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
        starts = re.match(r"^(?:[-*+]\s|\d+[.)]\s|\||#)", stripped)
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


def _ranked(
    question: str, passages: list[dict[str, Any]], k: int, embed: Embed | None, ranked: list[Ranked] | None
) -> list[Ranked]:
    """The ``k`` best sentences: the first of ``ranked`` when the caller ranked them, else ranked here."""
    return ranked[:k] if ranked is not None else best_sentences(question, passages, k=k, embed=embed)


def quote_answer(
    question: str, passages: list[dict[str, Any]], *, embed: Embed | None = None, ranked: list[Ranked] | None = None
) -> str | None:
    """An answer made of the documentation's own words: the best-matching sentence, quoted with its source.

    None when that sentence shares no word with the question: the best of pages about something else ("which
    printer ...?" drew a sentence about requesting a VM) is no answer, and quoting it would pass for one.
    ``ranked``: the passages' sentences as :func:`best_sentences` ranks them, when the caller has them already.
    """
    best = _ranked(question, passages, 1, embed, ranked)
    if not best or not set(content_terms(question)) & set(content_terms(best[0].sentence)):
        return None
    top = best[0]
    return f'The documentation says: "{top.sentence}" {top.citation}'


def answers_asked(
    answer: str,
    question: str,
    passages: list[dict[str, Any]],
    *,
    embed: Embed | None = None,
    ranked: list[Ranked] | None = None,
) -> str | None:
    """None when ``answer`` gives a fact of the sentences that best match the question; else their quote.

    A page holds many facts: asked when backups are verified, an answer with the 26-hour recovery point
    from the same page is sourced but not the answer. When the best-matching sentences hold checkable
    facts (a time, a number, a name) and the answer gives none of them, the best sentence is quoted too.
    ``ranked`` as in :func:`quote_answer`.
    """
    ranked = _ranked(question, passages, 3, embed, ranked)
    if not ranked:
        return None
    # Only the sentences about as good as the best: the third-best line of a page is usually its other facts.
    best = [r for r in ranked if r.score >= 0.75 * ranked[0].score]
    # A name the question itself gives ("the heartbeat template") is not what the answer must add. When the best
    # sentence states no fact, the question is answered by its words: a lesser sentence's fact is not the answer
    # ("who can sort out write access?" drew "Export a result with `out_csv`" over "... the platform administrator").
    asked = question.lower()
    own = {f for f in facts(best[0].sentence) if f not in asked}
    wanted = own.union(*({f for f in facts(r.sentence) if f not in asked} for r in best[1:])) if own else set()
    if wanted:
        if facts(answer) & wanted:
            return None
        top = next(r for r in best if facts(r.sentence) & wanted)
    elif _says_what_it_adds(answer, question, best[0].sentence):
        return None
    else:
        top = best[0]
    return f'The documentation says: "{top.sentence}" {top.citation}'


_CLOCK = re.compile(r"\d{1,2}:\d{2}")


def _values(text: str, kind: Literal["time", "number"]) -> set[str]:
    """The facts of ``text`` of one kind: clock times (as HH:MM), or numbers (by value)."""
    text = CITATION.sub(" ", text)  # "[runbook.md § 1. Ask]" states no number
    if kind == "time":
        return {f for f in facts(text) if _CLOCK.fullmatch(f)}
    return {f for f in facts(text) if re.fullmatch(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", f)}


def another_sentences_value(
    answer: str,
    question: str,
    passages: list[dict[str, Any]],
    *,
    embed: Embed | None = None,
    ranked: list[Ranked] | None = None,
) -> str | None:
    """The best sentence's quote, when ``answer`` gives another sentence's time or number than the one asked for.

    Asked when the nightly backups start, the model answered "at 02:00": the same section's garbage-collection
    line, while the line that best matches the question says the backup job runs at 09:00. Both values are
    sourced, so the grounding check passes it. For a question asking for a time ("when", "what time") or a
    number ("how many", "how long"), when every such value the answer gives stands in a lesser sentence of the
    passages and none in the best one, which holds one of its own, the answer is replaced by that sentence's
    quote. None otherwise (an answer computing a value, or giving the best sentence's, stands). ``ranked`` as in
    :func:`quote_answer`.
    """
    kind: Literal["time", "number"] | None = (
        "time" if _WANTS_TIME.search(question) else "number" if _WANTS_NUMBER.search(question) else None
    )
    if kind is None:
        return None
    ranked = _ranked(question, passages, FOCUS_SENTENCES, embed, ranked)
    if len(ranked) < 2:
        return None
    given_by_question = _values(question, kind)
    own = _values(ranked[0].sentence, kind) - given_by_question
    given = _values(answer, kind) - given_by_question
    if not own or not given or given & own:
        return None
    elsewhere = set().union(*(_values(r.sentence, kind) for r in ranked[1:]))
    if not given <= elsewhere:
        return None
    return f'The documentation says: "{ranked[0].sentence}" {ranked[0].citation}'


# How much of what the best sentence adds to the question an answer must say to stand without its quote.
COVERED = 0.34


def _says_what_it_adds(answer: str, question: str, sentence: str) -> bool:
    """Whether ``answer`` says what ``sentence`` adds to ``question``, or the sentence is not clearly about it.

    A sentence without a checkable fact answers by its words: asked what the heartbeat template is for, "the
    heartbeat template is `heartbeat`" says none of "prints a line once a second until stopped". A sentence
    sharing no word with the question (or one word, when the answer says the documentation does not tell) may
    be the best of a page about something else: the model's answer stands.
    """
    asked = set(content_terms(question))
    terms = set(content_terms(sentence))
    if len(asked & terms) < (2 if UNSURE.search(answer) else 1):
        return True
    adds = terms - asked
    return not adds or len(adds & set(content_terms(answer))) >= COVERED * len(adds)


def audit(answer: str, evidence: Evidence, *, cite: bool) -> list[Problem]:
    """The problems of a final answer against the turn's evidence (the grounding audit of ``TurnResult``).

    ``evidence`` is what the respond step checked the answer against (:func:`turn_evidence`): the audit and
    the check must agree on what counts as a source. The answer's own note about left-out sentences quotes
    what was left out; it is not a statement.
    """
    body = "\n".join(line for line in answer.splitlines() if not line.startswith("_(Left out"))
    return check(body, evidence, cite=cite)
