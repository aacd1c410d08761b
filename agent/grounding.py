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

:func:`check` reports problems per sentence; :func:`prune` drops the sentences that have one (the caller
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
from typing import Any, Literal

__all__ = ["Claim", "Evidence", "Problem", "Pruned", "check", "facts", "prune", "readable", "sentences"]

ProblemKind = Literal["unsourced", "contradiction"]

# --- what counts as a claim ----------------------------------------------------------------------------------
_CITATION = re.compile(r"\[[^\[\]]{1,200}§[^\[\]]{0,200}\]")
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
_MONTH_DATE = re.compile(
    r"\b(" + "|".join(m[:3] for m in _MONTHS) + r")[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4}))?", re.I
)
_TOKEN_ID = re.compile(r"\b(?:labops|raysubmit|apr|key|thr)_[A-Za-z0-9]{4,}\b")
_NODE = re.compile(r"\bnode\s?\d{1,3}\b", re.I)
_HYPHENATED = re.compile(r"(?<![\w./-])[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+(?![\w/-])")
_VM_REF = re.compile(r"\b(?:vm|vmid|id|job)\s*#?\s*(\d{1,20})\b", re.I)
_NUMBER = re.compile(r"(?<![\w.:/-])(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)(?![\w:]|\.\d)")
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

# --- states ---------------------------------------------------------------------------------------------------
# Words a sentence may state about a named thing, and the values of the data they stand for.
_STATES: dict[str, tuple[str, ...]] = {
    "running": ("running",),
    "up": ("running", "online"),
    "online": ("online",),
    "stopped": ("stopped",),
    "down": ("stopped", "offline"),
    "powered off": ("stopped",),
    "shut down": ("stopped",),
    "offline": ("offline",),
    "paused": ("paused",),
    "succeeded": ("succeeded",),
    "pending": ("pending",),
    "failed": ("failed",),
    "stale": ("stale",),
    "unverified": ("unverified",),
    "missing": ("missing",),
}
# Values that answer the same question; a stated word contradicts a value of its own group only.
_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"running", "stopped", "paused"}),
    frozenset({"online", "offline"}),
    frozenset({"pending", "running", "succeeded", "failed", "stopped"}),
)
_STATE_WORD = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _STATES), key=len, reverse=True)) + r")\b", re.I)
_NEGATION = re.compile(r"\b(?:not|n't|no longer|never|neither|nor)\b[\w\s]{0,12}$", re.I)
_PLURAL_REF = re.compile(r"\b(?:both|all|they|them|these|those|each|every|either|neither|none)\b", re.I)
_CLAUSE = re.compile(r"[;,]|\s(?:but|while|whereas|and|or)\s", re.I)
# Words people use for a field whose name is a symbol.
_FIELD_WORDS = {"z": ("redshift",), "ram": ("memory",), "mem": ("memory",), "ebv": ("extinction", "reddening")}


@dataclass(kw_only=True, frozen=True)
class Claim:
    """One checkable statement: its kind and the text as written."""

    kind: Literal["number", "id", "ref", "time", "date", "state", "address"]
    text: str


@dataclass(kw_only=True, frozen=True)
class Problem:
    """A claim of a sentence that has no source, or that the evidence states otherwise."""

    kind: ProblemKind
    claim: str
    sentence: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"kind": self.kind, "claim": self.claim, "sentence": self.sentence, "detail": self.detail}


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
    for match in _NUMBER.finditer(text):
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

    @classmethod
    def build(
        cls,
        *,
        results: Iterable[tuple[str, Any]] = (),
        passages: Iterable[str] = (),
        user_texts: Iterable[str] = (),
    ) -> Evidence:
        """Evidence from ``(message, data)`` tool results, passage texts and the user's messages."""
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
        live = cls(texts=texts, records=records, user_text="\n".join(users), numbers=numbers, _haystack=haystack)
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
        )

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


# --- sentences ------------------------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[*_`-])|\n+")


def sentences(text: str) -> list[str]:
    """The sentences and list items of ``text`` (decimals, versions and "e.g." stay whole)."""
    protected = re.sub(r"\b(e\.g|i\.e|etc|vs|approx|cf)\.", lambda m: m.group(0).replace(".", "\x00"), text, flags=re.I)
    parts = [p.replace("\x00", ".").strip() for p in _SENTENCE_END.split(protected)]
    return [p for p in parts if p]


def _masked(sentence: str) -> tuple[str, list[Claim]]:
    """The claims of identifiers, addresses, times and dates, and the sentence with them blanked out."""
    claims: list[Claim] = []
    text = _CITATION.sub(" ", sentence)

    def take(pattern: re.Pattern[str], kind: Literal["id", "time", "date", "address", "ref"], group: int = 0) -> None:
        nonlocal text

        def blank(match: re.Match[str]) -> str:
            claims.append(Claim(kind=kind, text=match.group(group)))
            return " " * len(match.group(0))

        text = pattern.sub(blank, text)

    take(_TOKEN_ID, "id")
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
        if inner and not any(inner in c.text or c.text in inner for c in claims):
            claims.append(Claim(kind="id", text=inner))
    return text, claims


def _named_position(text: str, start: int, end: int) -> bool:
    """Whether a hyphenated word stands where a name stands ("VM x-y", "called x-y", "x-y VM", quoted)."""
    before, after = text[max(0, start - 12) : start].lower(), text[end : end + 6].lower()
    return bool(
        re.search(r"(?:\bvm|\bcalled|\bnamed|\bjob|\btemplate|\bnode|[\"'*])\s*$", before)
        or re.match(r"^\s*(?:vm\b|\(|[\"'*])", after)
    )


def _number_claims(masked: str) -> list[Claim]:
    claims = []
    for match in _NUMBER.finditer(masked):
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


def _time_key(text: str) -> str | None:
    match = _TIME.search(text)
    if match:
        return f"{int(match.group(1)):02d}:{match.group(2)}"
    ampm = _AMPM.search(text)
    if ampm:
        hour = int(ampm.group(1)) % 12 + (12 if ampm.group(3).lower() == "p" else 0)
        return f"{hour:02d}:{ampm.group(2) or '00'}"
    return None


def _date_keys(claim: str) -> list[str]:
    iso = _ISO_DATE.search(claim)
    if iso:
        return [f"{iso.group(1)}-{iso.group(2)}-{iso.group(3)}"]
    named = _MONTH_DATE.search(claim)
    if named:
        month = [m[:3] for m in _MONTHS].index(named.group(1)[:3].lower()) + 1
        return [f"-{month:02d}-{int(named.group(2)):02d}", f"{_MONTHS[month - 1]} {int(named.group(2))}"]
    return [claim]


def _sourced(claim: Claim, evidence: Evidence) -> bool:
    if claim.kind == "number":
        return evidence.has_number(claim.text)
    if claim.kind == "time":
        key = _time_key(claim.text)
        return key is not None and (evidence.says(key) or evidence.says(key.lstrip("0")))
    if claim.kind == "date":
        keys = _date_keys(claim.text)
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


# --- states and fields of named things ------------------------------------------------------------------------
def _mentions(clause: str, entities: dict[str, list[dict[str, Any]]]) -> list[str]:
    lowered = clause.lower()
    found = []
    for key in entities:
        if key.isdigit():
            pattern = rf"(?<![\w.,]){re.escape(key)}(?![\w.,]\d)"
            if len(key) < 3 or not re.search(pattern, lowered):
                continue
        elif not re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", lowered):
            continue
        found.append(key)
    return found


def _values(rows: list[dict[str, Any]]) -> set[str]:
    return {str(v).lower() for row in rows for v in row.values() if isinstance(v, str | bool)} | {
        k.lower() for row in rows for k, v in row.items() if v is True
    }


def _state_problem(word: str, negated: bool, entity: str, rows: list[dict[str, Any]]) -> str | None:
    """Why stating ``word`` of ``entity`` contradicts its rows (None: it agrees, or nothing says otherwise)."""
    meant = set(_STATES[word.lower()])
    values = _values(rows)
    if negated:
        return f"the data says {entity} is {', '.join(sorted(meant & values))}" if meant & values else None
    if meant & values:
        return None
    for group in _GROUPS:
        if meant & group and values & group:
            shown = sorted(values & group)
            return f"the data says {entity} is {' / '.join(shown)}, not {word}"
    return None


def _field_named(field_name: str, words: set[str]) -> bool:
    parts = [p for p in field_name.lower().split("_") if p not in ("gib", "gb", "mib", "id", "iso", "s")]
    if not parts:
        return False
    return all(p in words or any(w in words for w in _FIELD_WORDS.get(p, ())) for p in parts)


def _field_at(field_name: str, clause: str) -> int | None:
    """Where ``clause`` names the field (the position of its first word), or None."""
    parts = [p for p in field_name.lower().split("_") if p not in ("gib", "gb", "mib", "id", "iso", "s")]
    positions = []
    for part in parts:
        lowered = clause.lower()
        words = (part, *_FIELD_WORDS.get(part, ()))
        hits = [m.start() for w in words for m in re.finditer(rf"\b{re.escape(w)}\b", lowered)]
        if not hits:
            return None
        positions.append(min(hits))
    return min(positions) if positions else None


def _field_problem(clause: str, entity: str, rows: list[dict[str, Any]]) -> tuple[str, str] | None:
    """A number the clause gives as one field of ``entity`` while the data has it as another, or differently.

    A number is read as the field named nearest before it in the clause ("a g-band flux of 0.0213"), else the
    nearest after it ("16 GiB of memory").
    """
    fields: dict[str, list[float]] = {}
    for row in rows:
        for k, v in row.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                fields.setdefault(k, []).append(float(v))
    named = {k: pos for k in fields if (pos := _field_at(k, clause)) is not None}
    if not named:
        return None
    for match in _NUMBER.finditer(clause):
        written = match.group(1)
        if written.lstrip("-").replace(",", "") == entity:
            continue  # the thing's own id
        value = float(written.replace(",", ""))
        decimals = len(written.split(".")[1]) if "." in written else 0
        before = [k for k, pos in named.items() if pos < match.start()]
        after = [k for k, pos in named.items() if pos > match.end()]
        target = max(before, key=named.__getitem__) if before else min(after, key=named.__getitem__) if after else None
        if target is None or any(round(v, decimals) == value for v in fields[target]):
            continue
        want = " or ".join(f"{v:g}" for v in fields[target][:3])
        other = [k for k, vs in fields.items() if k != target and any(round(v, decimals) == value for v in vs)]
        if other:
            return written, f"{written} is {entity}'s {other[0]}, not its {target} ({target} = {want})"
        return written, f"the data gives {entity}'s {target} as {want}, not {written}"
    return None


def _clauses(sentence: str) -> list[str]:
    return [c for c in _CLAUSE.split(sentence) if c and c.strip()]


# --- the check ------------------------------------------------------------------------------------------------
@dataclass(kw_only=True, frozen=True)
class _Verdict:
    sentence: str
    problems: list[Problem]


def _judge(sentence: str, evidence: Evidence, context: list[str], *, cite: bool = False) -> _Verdict:
    if cite and evidence.live is not None and not _CITATION.search(sentence):
        # Where tools answered, a sentence that cites no passage is about the live lab: the documentation's
        # examples ("a VM called ray-worker-3 with 8 cores") are no source for it.
        evidence = evidence.live
    masked, claims = _masked(sentence)
    numbers = _number_claims(masked)
    problems: list[Problem] = []
    for claim in [*claims, *numbers]:
        if not _sourced(claim, evidence):
            problems.append(Problem(kind="unsourced", claim=claim.text, sentence=sentence,
                                    detail=f"{claim.kind} {claim.text!r} is in no tool result, passage or "
                                    "message of the user"))  # fmt: skip
    entities = evidence.entities()
    if entities:
        problems += _entity_problems(sentence, evidence, entities, context)
    return _Verdict(sentence=sentence, problems=problems)


def _entity_problems(
    sentence: str, evidence: Evidence, entities: dict[str, list[dict[str, Any]]], context: list[str]
) -> list[Problem]:
    problems: list[Problem] = []
    last: list[str] = []
    for clause in _clauses(_CITATION.sub(" ", sentence)):
        named = _mentions(clause, entities)
        if named:
            last = named
        elif _PLURAL_REF.search(clause):
            # "both are running": the things the user and the answer named before.
            named = _mentions("\n".join([evidence.user_text, *context]), entities)
        else:
            named = last
        if not named:
            continue
        for match in _STATE_WORD.finditer(clause):
            negated = bool(_NEGATION.search(clause[: match.start()]))
            for entity in named:
                why = _state_problem(match.group(1), negated, entity, entities[entity])
                if why is not None:
                    problems.append(Problem(kind="contradiction", claim=match.group(0), sentence=sentence, detail=why))
        masked, _ = _masked(clause)
        if len(named) == 1:  # with two things in one clause, which number belongs to which is not clear
            found = _field_problem(masked, named[0], entities[named[0]])
            if found is not None:
                problems.append(Problem(kind="contradiction", claim=found[0], sentence=sentence, detail=found[1]))
    return problems


def facts(text: str) -> set[str]:
    """The checkable claims of ``text``, normalised (times as HH:MM, numbers by value, names lower-cased)."""
    out: set[str] = set()
    for sentence in sentences(text):
        masked, claims = _masked(sentence)
        for claim in [*claims, *_number_claims(masked)]:
            if claim.kind == "time":
                out.add(_time_key(claim.text) or claim.text)
            elif claim.kind == "number":
                out.add(f"{float(claim.text.replace(',', '')):g}")
            else:
                out.add(claim.text.lower())
    return out


def check(answer: str, evidence: Evidence, *, cite: bool = False) -> list[Problem]:
    """Every problem of ``answer``: unsourced claims and contradictions with the tool data.

    With ``cite`` (tools answered the turn), passages support only the sentences that cite one
    (``[document § section]``); the others must stand on the tool results and the user's words.
    """
    problems: list[Problem] = []
    seen: list[str] = []
    for sentence in sentences(answer):
        problems += _judge(sentence, evidence, seen, cite=cite).problems
        seen.append(sentence)
    return problems


@dataclass(kw_only=True, frozen=True)
class Pruned:
    """An answer with its unsupported sentences left out."""

    text: str
    dropped: list[Problem]


def prune(answer: str, evidence: Evidence, *, cite: bool = False) -> Pruned:
    """``answer`` without the sentences that state something the evidence does not support.

    Sentences are kept in order with their line breaks; a list item is a sentence of its own. ``cite`` is as
    in :func:`check`.
    """
    kept: list[str] = []
    dropped: list[Problem] = []
    seen: list[str] = []
    lines = answer.splitlines()
    for line in lines:
        good: list[str] = []
        for sentence in sentences(line):
            verdict = _judge(sentence, evidence, seen, cite=cite)
            seen.append(sentence)
            if verdict.problems:
                dropped += verdict.problems
            else:
                good.append(sentence)
        if good or not line.strip():
            kept.append(" ".join(good))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return Pruned(text=text, dropped=dropped)


_EPOCH_KEYS = re.compile(r"(?:time|_at|started|finished|last_backup|last_used|created|expires|next_run|boot)", re.I)


def readable(answer: str, evidence: Evidence) -> str:
    """Raw epoch timestamps copied from the tool data, written as UTC times (``2026-12-01 09:06 UTC``)."""
    epochs = {
        int(v)
        for row in evidence.records
        for k, v in row.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and 1e9 < v < 4e9 and _EPOCH_KEYS.search(k)
    }
    if not epochs:
        return answer

    def when(match: re.Match[str]) -> str:
        value = int(float(match.group(0)))
        if value not in epochs:
            return match.group(0)
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    return re.sub(r"(?<![\w.])\d{10}(?:\.\d+)?(?!\w|\.\d)", when, answer)
