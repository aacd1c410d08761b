"""Checks of a documentation answer against the sentences that best match its question.

The model writes the answer from the passages; the grounding check (:mod:`agent.grounding`) makes sure every
fact in it has a source, but a sourced fact may still be another one than asked for. These checks compare the
answer with the best-ranked sentences (:mod:`agent.ranking`) and, where it misses them, give the quote that
answers instead: :func:`quote_answer` (the answer made of the documentation's words), :func:`answers_asked`
(the fact asked for is missing) and :func:`another_sentences_value` (a time or number from another line);
:func:`without_verdict` leaves out a bare "Yes."/"No." the model opens with.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from agent.claims import CITATION, Problem, content_terms, facts, sentences
from agent.leftovers import without_back_reference
from agent.ranking import FOCUS_SENTENCES, WANTS_NUMBER, WANTS_TIME, Embed, Ranked, best_sentences
from agent.steering import UNSURE

__all__ = ["another_sentences_value", "answers_asked", "quote_answer", "without_verdict"]

# A sentence scoring at least this share of the best one's is about as good as the best.
NEAR_BEST = 0.75


def _ranked(
    question: str, passages: list[dict[str, Any]], k: int, embed: Embed | None, ranked: list[Ranked] | None
) -> list[Ranked]:
    """The ``k`` best sentences: the first of ``ranked`` when the caller ranked them, else ranked here."""
    return ranked[:k] if ranked is not None else best_sentences(question, passages, k=k, embed=embed)


def _quoted(sentence: Ranked) -> str:
    """A sentence of the documentation as an answer: quoted, with its citation."""
    return f'The documentation says: "{sentence.sentence}" {sentence.citation}'


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
    return _quoted(best[0])


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
    if not ranked or _read_the_search_s_first(answer, ranked, passages):
        return None
    # Only the sentences about as good as the best: the third-best line of a page is usually its other facts.
    best = [r for r in ranked if r.score >= NEAR_BEST * ranked[0].score]
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
    return _quoted(top)


_CLOCK = re.compile(r"\d{1,2}:\d{2}")


def _read_the_search_s_first(answer: str, ranked: list[Ranked], passages: list[dict[str, Any]]) -> bool:
    """Whether ``answer`` gives a fact of the passage the search put first, and the line ranked first is elsewhere.

    The two rankings disagree on the page, and the model read the search's: its answer stands. Asked (in Spanish)
    how long a DESI query may run, it answered "15 seconds" from the databases page, the search's first; a restore
    page's "Glacier retrievals take several hours" ranked first among the sentences and replaced it.
    """
    if not passages or not ranked:
        return False
    top = str(passages[0].get("citation", ""))
    if not top or ranked[0].citation == top:
        return False
    return bool(facts(CITATION.sub(" ", answer)) & facts(str(passages[0].get("text", ""))))


# Small numbers written as words: "kept for one day" gives a number as much as "kept for 1 day".
_NUMBER_WORDS = {
    w: str(n)
    for n, w in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
    )
}
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.I)


_HOW_MANY = re.compile(r"\bhow many\s+([a-z]+)(?:\s+([a-z]+))?", re.I)


def _counts(sentence: str, values: set[str], question: str) -> bool:
    """Whether ``sentence`` gives one of ``values`` as a count of what "how many ...?" asks for ("four nodes")."""
    asked = _HOW_MANY.search(question)
    if asked is None:
        return False
    counted = {content_terms(w)[0] for w in asked.groups() if w and content_terms(w)}
    words = re.findall(r"[a-z0-9.,]+", sentence.lower())
    for at, word in enumerate(words):
        value = _NUMBER_WORDS.get(word) or word.replace(",", "").rstrip(".")
        if value in values and any(t in counted for w in words[at + 1 : at + 3] for t in content_terms(w)):
            return True
    return False


def _values(text: str, kind: Literal["time", "number"]) -> set[str]:
    """The facts of ``text`` of one kind: clock times (as HH:MM), or numbers (by value; small ones in words too)."""
    text = CITATION.sub(" ", text)  # "[runbook.md § 1. Ask]" states no number
    if kind == "time":
        return {f for f in facts(text) if _CLOCK.fullmatch(f)}
    numbers = {f for f in facts(text) if re.fullmatch(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", f)}
    return numbers | {_NUMBER_WORDS[w.lower()] for w in _NUMBER_WORD.findall(text)}


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
        "time" if WANTS_TIME.search(question) else "number" if WANTS_NUMBER.search(question) else None
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
    # A line holding the answer's value that says more of the question's own words than the first is about what
    # was asked: asked how big the Kubernetes cluster is, a node's table row ("94 GB ... RKE2 Kubernetes") ranked
    # just above "a Kubernetes cluster of four nodes (about 80 cores and 375 GB)", the line the model had used.
    asked = set(content_terms(question))
    first = len(asked & set(content_terms(ranked[0].sentence)))
    holding = [r for r in ranked[1:] if _values(r.sentence, kind) & given]
    if any(len(asked & set(content_terms(r.sentence))) > first for r in holding):
        return None
    if _read_the_search_s_first(answer, ranked, passages):
        return None
    # A lesser line that counts what the question counts answers it: the ranking put a Kubernetes node's table
    # row ("94 GB") over "a Kubernetes cluster of four nodes", and "4 nodes" was right.
    if kind == "number" and any(_counts(r.sentence, given, question) for r in ranked[1:]):
        return None
    return _quoted(ranked[0])


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


# An answer opening with a verdict: "Yes, ...", "No. ...", "Nope, ...". Its punctuation makes it one: "No VM is
# stopped" opens with a determiner, and without it would read the other way.
_VERDICT = re.compile(r"^\W*(?:yes|no|yeah|yep|nope|correct|indeed)\s*(?:[,.!;:\u2013\u2014-]+|$)\s*", re.I)
# New words of the passages a verdict's sentence must add to the question's to stand (without its verdict).
VERDICT_ADDS = 2


def without_verdict(answer: str, question: str, passages: list[dict[str, Any]]) -> tuple[str, Problem | None]:
    """``answer`` without the "yes" or "no" it opens with, and the problem recorded for it (None: none there).

    The small model's verdicts on yes-or-no questions were a coin toss: of ten in a dev run, five said the
    opposite of the sentence quoted under them ("Yes, you can SSH straight into the Proxmox hosts" over "Only
    administrators reach it"; "Yes, that is ok" over "a VM over 500 GB needs a word with the infrastructure
    engineer"). A verdict has no word the grounding check can look up, so it is left out; what the page says
    stands. The rest of its sentence stays when it adds at least :data:`VERDICT_ADDS` words of the passages to
    the question's ("No, the platform administrator pulls models" keeps "the platform administrator pulls
    models"); a sentence that only turns the question round ("Yes, we encrypt disks.") goes whole.
    """
    parts = sentences(answer)
    if not parts or not _VERDICT.match(parts[0]):
        return answer, None
    first = parts[0]
    rest = _VERDICT.sub("", first, count=1)
    pages = " ".join(str(p.get("text", "")) for p in passages).lower()
    asked = set(content_terms(question))
    adds = [t for t in content_terms(rest) if t not in asked and t in pages]
    kept = rest[:1].upper() + rest[1:] if len(adds) >= VERDICT_ADDS else ""
    problem = Problem(kind="unsourced", claim=first[: len(first) - len(rest)].strip(" ,.") or first, sentence=first,
                      detail="a yes or no the passages do not state", about="verdict")  # fmt: skip
    remaining = answer.replace(first, kept, 1).strip()
    if not kept:  # the verdict sentence's citation, written after its full stop, goes with it
        remaining = re.sub(rf"^(?:{CITATION.pattern}\s*)+", "", remaining).strip()
        # "No, ... . This is because x": with the verdict gone, "this" points at nothing.
        following = sentences(remaining)
        if following:
            remaining = remaining.replace(following[0], without_back_reference(following[0]), 1)
    return remaining, problem
