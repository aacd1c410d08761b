"""What a follow-up refers to: "is the stopped one backed up?", "start it", "and the second one?".

A thread's answers are about things the tools listed (VMs, nodes, jobs). At the end of a turn the things
its results were about are kept with the thread (:func:`things_of`: each with its id, its name and the
one-word values the tools gave for it, such as ``stopped`` or ``failed``). The next message's referring
words are then matched against them (:func:`resolve`):

- "the stopped one", "the failed VM", "the running ones": the things whose values hold that word;
- "the first one", "the second job", "the last one": by the order the tools listed them;
- "it", "that one", "this VM", "them": the one thing of the last results (or all of them, up to a few), or
  the one thing with a value the earlier message asked for ("my stopped vms", then "that one").

What was resolved is written after the message ("(the stopped one: VM 132 qso-vae-dev)"), so routing,
the tools' arguments and the model read the id itself; nothing is resolved when the words fit none or
several things a singular asks for, and the model reads the message as it was written.

The rules know no lab: ids, names and values come from the tool data, the words from the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agent.contradictions import STATE_WORDS

__all__ = ["Referent", "named_thing", "resolve", "things_of"]

MAX_THINGS = 60
# Fields that identify a thing, in the order they label it, with the word put before the value.
_ID_FIELDS: tuple[tuple[str, str], ...] = (
    ("vmid", "VM"),
    ("job_id", "job"),
    ("submission_id", "job"),
    ("targetid", "target"),
    ("incident_id", "incident"),
    ("node", "node"),
    ("store", "datastore"),
)
_TRAIT = re.compile(r"^[a-z][a-z_-]{2,19}$")


def _identity(row: dict[str, Any]) -> tuple[str, str, Any] | None:
    for field, word in _ID_FIELDS:
        value = row.get(field)
        if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
            return field, word, value
    return None


def things_of(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The things a turn's successful results were about, in the order listed, merged by identity.

    Each is ``{"field", "value", "label", "name", "traits"}``: ``traits`` are the row's one-word string values
    (a state, a problem, a node), lower-case.
    """
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in log:
        if entry.get("status") != "ok":
            continue
        data = entry.get("data")
        rows = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        if isinstance(data, dict):
            rows += [r for v in data.values() if isinstance(v, list) for r in v]
        for row in rows:
            if not isinstance(row, dict):
                continue
            found = _identity(row)
            if found is None:
                continue
            field, word, value = found
            key = (field, str(value))
            thing = out.setdefault(
                key, {"field": field, "value": value, "label": f"{word} {value}", "name": None, "traits": []}
            )
            name = row.get("name")
            if isinstance(name, str) and name and thing["name"] is None and name != str(value):
                thing["name"] = name
            for k, v in row.items():
                if k in ("name", field) or not isinstance(v, str):
                    continue
                lowered = v.strip().lower()
                if _TRAIT.match(lowered) and lowered not in thing["traits"]:
                    thing["traits"].append(lowered)
            if len(out) >= MAX_THINGS:
                break
    return list(out.values())


def named_thing(field: str, value: Any, name: str) -> dict[str, Any] | None:
    """A thing an answer named without a tool listing it ("The GPU VM is `gpu-ollama`."), for the next "it"."""
    word = next((w for f, w in _ID_FIELDS if f == field), None)
    if word is None:
        return None
    return {"field": field, "value": value, "label": f"{word} {value}", "name": name, "traits": []}


@dataclass(kw_only=True, frozen=True)
class Referent:
    """What a message's referring words stand for."""

    words: str  # "the stopped one"
    things: tuple[dict[str, Any], ...]

    def note(self) -> str:
        """The resolution as written after the message."""
        named = ", ".join(f"{t['label']} {t['name']}" if t.get("name") else str(t["label"]) for t in self.things)
        return f"({self.words}: {named})"


_KINDS = r"(?:one|ones|vm|vms|machine|machines|job|jobs|node|nodes|server|servers|guest|guests)"
_DESCRIBED = re.compile(rf"\bthe\s+([a-z][a-z_-]+)\s+({_KINDS})\b", re.I)
_ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "last": -1}
_ORDINAL = re.compile(rf"\bthe\s+(first|second|third|fourth|fifth|last)(?:\s+{_KINDS})?\b", re.I)
_SINGULAR = re.compile(r"\b(?:it|its|that one|this one|that (?:vm|machine|job|node)|this (?:vm|machine|job|node))\b",
                       re.I)  # fmt: skip
# "Which of the following ...": how a translation often renders "welche davon" ("which of them").
_PLURAL = re.compile(r"\b(?:them|they|those|these|both|all of them|of the following)\b", re.I)
# A thing the message already names by id ("VM 132") needs no resolving.
_HAS_ID = re.compile(r"\b\d{2,}\b|\b[a-z]+_[0-9a-f]{6,}\b", re.I)


# "Which of my VMs are off?": "off" is said of a VM the tools call stopped (beside contradictions' state words).
_SAID_STATES = {**STATE_WORDS, "off": ("stopped", "offline")}


def _states_said(text: str) -> set[str]:
    """The words of ``text`` and the values the state words among them stand for ("down": stopped, offline)."""
    lowered = text.lower()
    said = set(re.findall(r"[a-z][a-z_-]+", lowered))
    for word, values in _SAID_STATES.items():
        if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", lowered):
            said |= set(values)
    return said


def resolve(text: str, things: list[dict[str, Any]], *, before: str = "") -> Referent | None:
    """What the referring words of ``text`` stand for among ``things`` (None: nothing, or not one reading).

    ``before`` is the message the things answered: "that one" after "show me my stopped vms", whose listing
    held a running VM too, is the one thing with a value the earlier message used ("stopped").
    """
    if not things or _HAS_ID.search(text):
        return None
    for match in _DESCRIBED.finditer(text):
        word, kind = match.group(1).lower(), match.group(2).lower()
        if word in _ORDINALS:
            continue
        chosen = tuple(t for t in things if word in t["traits"])
        if chosen and (kind.endswith("s") or len(chosen) == 1) and len(chosen) <= 10:
            return Referent(words=match.group(0), things=chosen)
    ordinal = _ORDINAL.search(text)
    if ordinal is not None:
        index = _ORDINALS[ordinal.group(1).lower()]
        if -len(things) <= index < len(things):
            return Referent(words=ordinal.group(0), things=(things[index],))
    singular, plural = _SINGULAR.search(text), _PLURAL.search(text)
    if len(things) == 1 and singular is not None:
        return Referent(words=singular.group(0), things=(things[0],))
    if singular is not None and before:
        said = _states_said(before)
        asked = tuple(t for t in things if said & set(t["traits"]))
        if len(asked) == 1:
            return Referent(words=singular.group(0), things=asked)
    if 1 < len(things) <= 5 and plural is not None:
        return Referent(words=plural.group(0), things=tuple(things))
    return None
