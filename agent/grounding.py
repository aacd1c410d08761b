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
import re
from dataclasses import dataclass

from agent.claims import (
    CITATION,
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
from agent.haystack import Evidence, document_name
from agent.leftovers import Line, is_marker, without_back_reference, without_dangling_leads

__all__ = ["Pruned", "check", "prune"]


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
        document = document_name(match.group(0).split("§", 1)[0])
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


def prune(answer: str, evidence: Evidence, *, cite: bool = False, support: bool = False) -> Pruned:
    """``answer`` without the sentences that state something the evidence does not support.

    Sentences are kept in order with their line breaks; a list item is a sentence of its own. ``cite`` is as
    in :func:`check`. With ``support`` (a documentation answer), a sentence must also be about what the
    evidence says, not only free of unsourced claims (:data:`SUPPORT_SHARE`).
    """
    kept: list[Line] = []
    dropped: list[Problem] = []
    seen: list[str] = []
    after_drop = False
    for line, code in fenced_lines(answer):
        if code:
            problem = _code_problem(line, evidence)
            if problem is None:
                kept.append((line, "kept"))
            else:
                dropped.append(problem)
                kept.append(("", "dropped"))
            continue
        good: list[str] = []
        for sentence in sentences(line):
            verdict = _judge(sentence, evidence, seen, cite=cite, support=support)
            seen.append(sentence)
            if verdict.problems:
                dropped += verdict.problems
                after_drop = True
            else:
                # "No, ... . This is because ...": with the verdict left out, "this" points at nothing.
                good.append(without_back_reference(sentence) if after_drop else sentence)
                after_drop = False
        if good and all(is_marker(g) for g in good):
            good = []  # a list item's number ("2.") whose text was left out, or that had none
        if not line.strip() or line.strip().startswith(("```", "~~~")):
            kept.append((line if line.strip() else "", "other"))
        elif good:
            kept.append((" ".join(good), "kept"))
        else:
            kept.append(("", "dropped"))
    texts = [t for t, s in without_dangling_leads(kept) if s != "dropped"]
    text = "\n".join(texts)
    # A code block whose every line was left out goes too, fences and all.
    text = drop_empty_fences(text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return Pruned(text=text, dropped=dropped)
