"""Statements about a named thing that its data states otherwise.

The tool data names things (a VM by name or id, a node, a job, a DESI object); a clause of an answer that
names one and gives it a state ("void-analysis is stopped") or a number as one of its fields ("8 cores", "a
g-band flux of 0.02") is compared with that thing's rows. A stated word contradicts only a value of its own
group (running/stopped, online/offline, a job's states); "both", "they" and the like refer to the things the
user and the answer named before.
"""

from __future__ import annotations

import re
from typing import Any

from agent.claims import CITATION, NUMBER, Problem, mask_claims
from agent.mentions import mentions

__all__ = ["STATE_WORDS", "entity_problems"]

# --- states ---------------------------------------------------------------------------------------------------
# Words a sentence may state about a named thing, and the values of the data they stand for.
STATE_WORDS: dict[str, tuple[str, ...]] = {
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
    # A backup "verified" is one whose newest snapshot verified ok (tools.backup: verification ok/failed/...).
    "verified": ("ok",),
    "missing": ("missing",),
}
# Values that answer the same question; a stated word contradicts a value of its own group only.
_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"running", "stopped", "paused"}),
    frozenset({"online", "offline"}),
    frozenset({"pending", "running", "succeeded", "failed", "stopped"}),
    frozenset({"ok", "failed", "unverified"}),
)
# "(0 running)", "3 of 5 running", "2 VMs running": a number counting things in a state (not an id: "VM 132 running").
_COUNTED = re.compile(r"(?<![\w#-])(?<!vm )(?<!job )(?<!id )\d+\s*(?:of\s+\d+\s+)?(?:(?:vms|jobs|nodes)\s+)?$", re.I)
_STATE_WORD = re.compile(r"\b(" + "|".join(sorted(map(re.escape, STATE_WORDS), key=len, reverse=True)) + r")\b", re.I)
_NEGATION = re.compile(
    r"\b(?:not|n't|no longer|never|neither|nor)\b[\w\s]{0,12}$"
    # "no snapshot of the last 7 days was verified", "none of them is running"
    r"|\b(?:no|none)\b(?:\s+[\w-]+){0,8}\s+(?:was|were|is|are|has been|have been|got|gets)\s+$",
    re.I,
)
_PLURAL_REF = re.compile(r"\b(?:both|all|they|them|these|those|each|every|either|neither|none)\b", re.I)
_CLAUSE = re.compile(r"[;,]|\s(?:but|while|whereas|and|or)\s", re.I)
# Words people use for a field whose name is a symbol.
_FIELD_WORDS = {
    "z": ("redshift",), "ram": ("memory",), "mem": ("memory",), "ebv": ("extinction", "reddening"),
    "free": ("unallocated", "available"),
}  # fmt: skip


# --- states and fields of named things ------------------------------------------------------------------------
def _mentions(clause: str, entities: dict[str, list[dict[str, Any]]]) -> list[str]:
    lowered = clause.lower()
    found = []
    for key in entities:
        if key.isdigit():
            pattern = rf"(?<![\w.,]){re.escape(key)}(?![\w.,]\d)"
            if len(key) < 3 or not re.search(pattern, lowered):
                continue
        elif not mentions(lowered, key):
            continue
        found.append(key)
    return found


def _values(rows: list[dict[str, Any]]) -> set[str]:
    return {str(v).lower() for row in rows for v in row.values() if isinstance(v, str | bool)} | {
        k.lower() for row in rows for k, v in row.items() if v is True
    }


def _state_problem(word: str, negated: bool, entity: str, rows: list[dict[str, Any]]) -> str | None:
    """Why stating ``word`` of ``entity`` contradicts its rows (None: it agrees, or nothing says otherwise)."""
    meant = set(STATE_WORDS[word.lower()])
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


def _field_at(field_name: str, clause: str) -> tuple[int, int, int] | None:
    """Where ``clause`` names the field: (first word's position, last word's position, words), or None."""
    parts = [p for p in field_name.lower().split("_") if p not in ("gib", "gb", "mib", "id", "iso", "s")]
    positions = []
    for part in parts:
        lowered = clause.lower()
        words = (part, *_FIELD_WORDS.get(part, ()))
        hits = [m.start() for w in words for m in re.finditer(rf"\b{re.escape(w)}\b", lowered)]
        if not hits:
            return None
        positions.append(min(hits))
    return (min(positions), max(positions), len(parts)) if positions else None


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
    for match in NUMBER.finditer(clause):
        written = match.group(1)
        if written.lstrip("-").replace(",", "") == entity:
            continue  # the thing's own id
        value = float(written.replace(",", ""))
        decimals = len(written.split(".")[1]) if "." in written else 0
        # Nearest before it, else nearest after it; at the same place the field named by more words wins
        # ("most free memory: 30.0 GiB" is memory_free_gib, not memory_gib).
        before = [k for k, (_first, last, _n) in named.items() if last < match.start()]
        after = [k for k, (first, _last, _n) in named.items() if first > match.end()]
        if before:
            target: str | None = max(before, key=lambda k: (named[k][1], named[k][2]))
        elif after:
            target = max(after, key=lambda k: (-named[k][0], named[k][2]))
        else:
            target = None
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


def entity_problems(
    sentence: str, user_text: str, entities: dict[str, list[dict[str, Any]]], context: list[str]
) -> list[Problem]:
    """Contradictions of ``sentence`` with the rows of the things it names (``context``: the answer so far)."""
    problems: list[Problem] = []
    last: list[str] = []
    for clause in _clauses(CITATION.sub(" ", sentence)):
        named = _mentions(clause, entities)
        if named:
            last = named
        elif _PLURAL_REF.search(clause):
            # "both are running": the things the user and the answer named before.
            named = _mentions("\n".join([user_text, *context]), entities)
        else:
            named = last
        if not named:
            continue
        for match in _STATE_WORD.finditer(clause):
            if _COUNTED.search(clause[: match.start()]):
                continue  # "2 VMs (0 running)": a count of things in that state, not the state of a named one
            negated = bool(_NEGATION.search(clause[: match.start()]))
            for entity in named:
                why = _state_problem(match.group(1), negated, entity, entities[entity])
                if why is not None:
                    problem = Problem(kind="contradiction", claim=match.group(0), sentence=sentence, detail=why,
                                      about="state")  # fmt: skip
                    problems.append(problem)
        masked, _ = mask_claims(clause)
        if len(named) == 1:  # with two things in one clause, which number belongs to which is not clear
            found = _field_problem(masked, named[0], entities[named[0]])
            if found is not None:
                problems.append(
                    Problem(kind="contradiction", claim=found[0], sentence=sentence, detail=found[1], about="number")
                )
    return problems
