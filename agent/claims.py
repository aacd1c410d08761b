"""What an answer claims: the statements a reader could check, and be misled by.

A *claim* is a number (with its unit), an identifier (a VM or node name, a job or approval id, an IP address
or subnet, a hyphenated resource name, a quoted ``code`` word), a reference by id ("VM 132"), a time or a
date. :func:`mask_claims` finds them in a sentence; :func:`number_claims` finds the numbers left once the others
are blanked out, skipping list numbering and small bare counts. Whether a claim has a source is decided in
:mod:`agent.grounding`; whether a stated state or field contradicts the data, in :mod:`agent.contradictions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CITATION", "NUMBER", "Claim", "Problem", "ProblemKind", "content_terms", "date_keys", "facts", "mask_claims",
    "number_claims", "sentences", "time_key",
]  # fmt: skip

ProblemKind = Literal["unsourced", "contradiction"]
# What a problem's claim is: a number, an id, a time, a date, an address, a state, a command, a whole sentence.
ClaimAbout = Literal[
    "number", "id", "ref", "time", "date", "state", "address", "code", "sentence", "citation", "expansion", "verdict"
]

# --- what counts as a claim ----------------------------------------------------------------------------------
CITATION = re.compile(r"\[[^\[\]]{1,200}§[^\[\]]{0,200}\]")
_CODE = re.compile(r"`([^`\n]{1,120})`")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?!\w|\.\d)")
_TIME = re.compile(r"(?<![\w:.])([01]?\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?(?![\w:])")
_AMPM = re.compile(r"(?<![\w:.])(1[0-2]|0?[1-9])(?::([0-5]\d))?\s?([ap])\.?m\.?(?![a-z])", re.I)
_ISO_DATE = re.compile(r"(?<![\w-])(\d{4})-(\d{2})-(\d{2})(?![\w-]\d)")
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
# Not "Dec 2.2" (a declination) nor "May 2." of a list: a day is a whole number, and "Dec" alone before a decimal
# is an astronomer's coordinate.
_MONTH_DATE = re.compile(
    r"\b(" + "|".join(m[:3] for m in _MONTHS) + r")[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?!\.\d)"
    r"(?:,?\s+(\d{4}))?",
    re.I,
)
_TOKEN_ID = re.compile(r"\b(?:labops|raysubmit|apr|key|thr)_[A-Za-z0-9]{4,}\b")
_NODE = re.compile(r"\bnode\s?\d{1,3}\b", re.I)
_HYPHENATED = re.compile(r"(?<![\w./-])[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+(?![\w/-])")
# An abbreviation spelled out, either way round: "PBS (Portable Batch System)", "Zero Trust Network Access (ZTNA)".
# What an abbreviation stands for is a name: asked "is pbs healthy", the model wrote "the PBS (Portable Batch
# System)" where the lab's pages say Proxmox Backup Server.
_ABBREVIATION_FIRST = re.compile(r"\b([A-Z]{2,6})s?\s*\(([A-Za-z][\w-]*(?:\s+[\w-]+){1,7})\)")
_ABBREVIATION_LAST = re.compile(r"\(([A-Z]{2,6})s?\)")
_MINOR_WORDS = frozenset({"of", "and", "for", "the", "a", "an", "to", "in", "on", "&"})
_VM_REF = re.compile(r"\b(?:vm|vmid|id|job)\s*#?\s*(\d{1,20})\b", re.I)
NUMBER = re.compile(r"(?<![\w.:/-])(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)(?![\w:]|\.\d)")
_UNIT = re.compile(
    r"^\s*(%|percent|[kmgtp]i?b\b|gigs?\b|cores?\b|cpus?\b|threads?\b|h\b|hours?\b|hrs?\b|days?\b|minutes?\b|min\b|"
    r"mins\b|seconds?\b|secs?\b|s\b|ms\b|weeks?\b|months?\b|years?\b|jobs?\b|vms?\b|nodes?\b|snapshots?\b|rows?\b|"
    r"objects?\b|spectra\b|quasars?\b|galax(?:y|ies)\b|stars?\b|gpus?\b|arcmin\w*\b|degrees?\b|deg\b|entries\b|"
    r"problems?\b|findings?\b|backups?\b|templates?\b)",
    re.I,
)
# Plain English compounds that are not the names of anything (hyphenated resource names are checked).
_PLAIN_COMPOUNDS = {
    "read-only", "on-premises", "on-prem", "off-site", "e-mail", "well-known", "up-to-date", "four-eyes",
    "time-out", "non-production", "follow-up", "set-up", "step-by-step", "point-in-time", "built-in", "open-source",
    "so-called", "long-running", "re-run", "zero-trust", "write-ahead", "end-to-end", "real-time", "per-user",
    "per-vm", "per-node", "day-to-day", "x-ray", "self-signed", "pass-through", "co-author", "re-enable",
    "sign-in", "log-in", "opt-in", "opt-out", "high-memory", "low-memory", "first-time", "small-form-factor",
    "hash-chained", "tamper-evident", "single-use", "short-lived", "cross-join", "semi-automated",
}  # fmt: skip


@dataclass(kw_only=True, frozen=True)
class Claim:
    """One checkable statement: its kind and the text as written."""

    kind: Literal["number", "id", "ref", "time", "date", "state", "address", "expansion"]
    text: str


@dataclass(kw_only=True, frozen=True)
class Problem:
    """A claim of a sentence that has no source, or that the evidence states otherwise."""

    kind: ProblemKind
    claim: str
    sentence: str
    detail: str
    about: ClaimAbout = "sentence"

    def as_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"kind": self.kind, "claim": self.claim, "sentence": self.sentence, "detail": self.detail,
                "about": self.about}  # fmt: skip


# --- sentences ------------------------------------------------------------------------------------------------
# A closing quote or bracket after the full stop stays with its sentence (a quoted sentence keeps its quotes).
# After a quoted question or sentence ('Ask "which VMs are on node0N?" (`vm.list`) to see ...'), a parenthesis or
# code goes on with the same sentence.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[*_`-])|(?:(?<=[.!?][\"')\]])|(?<=[.!?][\"')\]]{2}))\s+(?=[A-Z0-9\"'\[*_-])|\n+"
)


def sentences(text: str) -> list[str]:
    """The sentences and list items of ``text`` (decimals, versions, "e.g." and citations stay whole)."""
    protected = re.sub(r"\b(e\.g|i\.e|etc|vs|approx|cf)\.", lambda m: m.group(0).replace(".", "\x00"), text, flags=re.I)
    # A citation is part of its sentence, numbered section and all ("[runbook.md § 2. Restore]").
    protected = CITATION.sub(lambda m: m.group(0).replace(".", "\x00"), protected)
    parts: list[str] = []
    for part in (p.replace("\x00", ".").strip() for p in _SENTENCE_END.split(protected)):
        # A citation after a sentence's end ('The page says: "...". [a.md § B]') is that sentence's own: split off,
        # the quote counted as uncited, and a page quoted under a tool's answer was "no source" of it.
        lead = re.match(rf"(?:\s*{CITATION.pattern}[\s.,;]*)+", part)
        if parts and lead:
            parts[-1] = f"{parts[-1]} {lead.group(0).strip()}"
            part = part[lead.end() :].strip()
        if part:
            parts.append(part)
    return parts


def mask_claims(sentence: str) -> tuple[str, list[Claim]]:
    """The claims of identifiers, addresses, times and dates, and the sentence with them blanked out."""
    claims: list[Claim] = []
    text = CITATION.sub(" ", sentence)

    def take(pattern: re.Pattern[str], kind: Literal["id", "time", "date", "address", "ref"], group: int = 0) -> None:
        nonlocal text

        def blank(match: re.Match[str]) -> str:
            claims.append(Claim(kind=kind, text=match.group(group)))
            return " " * len(match.group(0))

        text = pattern.sub(blank, text)

    take(_TOKEN_ID, "id")
    for phrase in spelled_out(text):
        claims.append(Claim(kind="expansion", text=phrase))
        text = text.replace(phrase, " " * len(phrase))
    take(_IPV4, "address")
    take(_ISO_DATE, "date")
    take(_MONTH_DATE, "date")
    take(_TIME, "time")
    take(_AMPM, "time")
    take(_NODE, "id")
    take(_VM_REF, "ref")
    for match in list(_HYPHENATED.finditer(text)):
        word = match.group(0)
        if word.lower() in _PLAIN_COMPOUNDS:
            continue
        if any(c.isdigit() for c in word) or _named_position(text, match.start(), match.end()):
            claims.append(Claim(kind="id", text=word))
            text = text[: match.start()] + " " * len(word) + text[match.end() :]
    for match in _CODE.finditer(sentence):
        inner = match.group(1).strip()
        if not inner or any(inner in c.text for c in claims):
            continue
        # A code span around a claim taken already (`VM 132`, `qso-vae-dev`) is that claim; one that adds words
        # to it is a claim of its own: `ssh researcher1@node05` was kept for its sourced "node05", and no page
        # had that command.
        rest = inner
        for c in claims:
            rest = rest.replace(c.text, " ")
        if len(re.findall(r"[A-Za-z0-9_.]+", rest)) > 1:
            claims.append(Claim(kind="id", text=inner))
    return text, claims


def _initials(words: list[str]) -> set[str]:
    """The initials of ``words``, each part of a hyphenated word counting: with minor words and without them."""
    parts = [p for w in words for p in w.split("-") if p]
    major = [p for p in parts if p.lower() not in _MINOR_WORDS]
    return {"".join(p[0] for p in kept).upper() for kept in (parts, major)}


def spelled_out(text: str) -> list[str]:
    """The phrases of ``text`` that spell an abbreviation out: the words whose initials are its letters."""
    found = []
    for match in _ABBREVIATION_FIRST.finditer(text):
        words = match.group(2).split()
        if match.group(1) in _initials(words):
            found.append(match.group(2))
    for match in _ABBREVIATION_LAST.finditer(text):
        letters = match.group(1)
        before = text[: match.start()].split()
        # The fewest words before the bracket whose initials spell the abbreviation.
        for n in range(1, min(len(before), 2 * len(letters)) + 1):
            words = before[-n:]
            if not re.fullmatch(r"[A-Za-z][\w-]*", words[0]):
                break
            if letters in _initials(words):
                found.append(" ".join(words))
                break
    return found


def _named_position(text: str, start: int, end: int) -> bool:
    """Whether a hyphenated word stands where a name stands ("VM x-y", "called x-y", "x-y VM", quoted)."""
    before, after = text[max(0, start - 12) : start].lower(), text[end : end + 6].lower()
    return bool(
        re.search(r"(?:\bvm|\bcalled|\bnamed|\bjob|\btemplate|\bnode|[\"'*])\s*$", before)
        or re.match(r"^\s*(?:vm\b|\(|[\"'*])", after)
    )


def number_claims(masked: str) -> list[Claim]:
    """The numbers of a sentence whose other claims are blanked out, without list numbering and bare counts."""
    claims = []
    for match in NUMBER.finditer(masked):
        written = match.group(1)
        line_start = masked[: match.start()].strip() == "" and masked[match.end() : match.end() + 1] in (".", ")")
        if line_start:
            continue  # a list's own numbering
        value = abs(float(written.replace(",", "")))
        has_unit = bool(_UNIT.match(masked[match.end() :]))
        if value < 10 and "." not in written and not has_unit:
            continue  # small bare counts and ordinals ("the 2 VMs", "step 3") are prose, not data
        claims.append(Claim(kind="number", text=written))
    return claims


def time_key(text: str) -> str | None:
    """The first time in ``text`` as ``HH:MM`` (24-hour), or None."""
    match = _TIME.search(text)
    if match:
        return f"{int(match.group(1)):02d}:{match.group(2)}"
    ampm = _AMPM.search(text)
    if ampm:
        hour = int(ampm.group(1)) % 12 + (12 if ampm.group(3).lower() == "p" else 0)
        return f"{hour:02d}:{ampm.group(2) or '00'}"
    return None


def date_keys(claim: str) -> list[str]:
    """Forms of a date to look for in the evidence: ``YYYY-MM-DD``, or ``-MM-DD`` and "month day"."""
    iso = _ISO_DATE.search(claim)
    if iso:
        return [f"{iso.group(1)}-{iso.group(2)}-{iso.group(3)}"]
    named = _MONTH_DATE.search(claim)
    if named:
        month = [m[:3] for m in _MONTHS].index(named.group(1)[:3].lower()) + 1
        return [f"-{month:02d}-{int(named.group(2)):02d}", f"{_MONTHS[month - 1]} {int(named.group(2))}"]
    return [claim]


def facts(text: str) -> set[str]:
    """The checkable claims of ``text``, normalised (times as HH:MM, numbers by value, names lower-cased)."""
    out: set[str] = set()
    for sentence in sentences(text):
        masked, claims = mask_claims(sentence)
        for claim in [*claims, *number_claims(masked)]:
            if claim.kind == "time":
                out.add(time_key(claim.text) or claim.text)
            elif claim.kind == "number":
                out.add(f"{float(claim.text.replace(',', '')):g}")
            else:
                out.add(claim.text.lower())
    return out


# --- the words a sentence is about ------------------------------------------------------------------------------
_STOP = frozenset(
    {
        "a", "an", "the", "of", "to", "in", "on", "at", "for", "by", "with", "and", "or", "is", "are", "was", "were",
        "be", "been", "do", "does", "did", "how", "what", "which", "who", "whom", "when", "where", "why", "can",
        "could", "may", "might", "should", "would", "will", "i", "we", "you", "our", "my", "your", "it", "its", "this",
        "that", "these", "those", "there", "from", "as", "about", "into", "than", "then", "so", "if", "not", "no",
        "any", "some", "much", "many", "get", "got",
    }
)  # fmt: skip


# English verbs whose past forms do not start like their present ("how long do we keep ...?" and "... are kept"):
# read as the present before cutting. Grammar, not this lab's words.
_IRREGULAR = {
    "kept": "keep", "ran": "run", "began": "begin", "begun": "begin", "went": "go", "gone": "go", "took": "take",
    "taken": "take", "made": "make", "gave": "give", "given": "give", "held": "hold", "built": "build",
    "sent": "send", "spent": "spend", "lost": "lose", "found": "find", "wrote": "write", "written": "write",
    "broke": "break", "broken": "break", "chose": "choose", "chosen": "choose", "froze": "freeze",
    "frozen": "freeze", "brought": "bring", "bought": "buy", "thought": "think", "told": "tell", "sold": "sell",
    "stood": "stand", "understood": "understand", "meant": "mean", "paid": "pay", "fed": "feed", "fell": "fall",
    "fallen": "fall", "grew": "grow", "grown": "grow", "knew": "know", "known": "know", "drew": "draw",
    "drawn": "draw", "threw": "throw", "thrown": "throw", "rose": "rise", "risen": "rise",
}  # fmt: skip


def _stem(word: str) -> str:
    # The first five letters: "verification", "verify" and "verified" meet, as do "backups" and "backup". Crude,
    # and enough to rank a handful of passages' sentences against one question.
    word = word.lower()
    return _IRREGULAR.get(word, word)[:5]


def content_terms(text: str) -> list[str]:
    """The words of ``text`` that carry content (no function words), cut to their first five letters."""
    words = [w for w in re.split(r"[^a-z0-9:]+", text.lower()) if w and w not in _STOP]
    return [_stem(w) for w in words]
