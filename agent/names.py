"""Things named instead of numbered ("reboot proj-pg01", "on the GPU node"), resolved to the values tools take.

A tool declares, per argument, how a name resolves (``Tool.named_by``: a read tool that lists the things and
the field that names them). The small model guesses a number when the user gave a name (``vm.show {"vmid":
10}`` for "agn-fit"); a name the user wrote that is exactly one listed thing's settles the value. A value
that names no row outright ("the GPU node") is matched against what the rows say about themselves: a row
whose field called like one of the value's words is set ("gpus": ["RTX A4000"]), or whose tags or values
hold the word. The listing is an ordinary read through the guard as the user: policy and the audit log see
it like any other. The agent holds no lab facts: which node has a GPU is whatever the lab says.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from agent.mentions import mentions, spaced_names
from agent.spelling import english_words
from policies.guard import Caller, Guard
from tools.base import NameLookup, Tool

__all__ = ["each_named", "own_thing", "own_values", "resolve_names"]

_STOP = {"the", "a", "an", "one", "with", "that", "has", "have", "our", "my", "node", "vm", "machine", "server"}


def _listed(guard: Guard, caller: Caller, tool: str, args: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows a listing tool returns through the guard as ``caller`` (none when the read fails)."""
    return guard.call(tool, args or {}, caller=caller).records()


def _named_in(text: str, rows: list[dict[str, Any]], lookup: NameLookup) -> set[tuple[Any, str]]:
    """Rows whose name the text holds as a whole word (``void-analysis``, ``monitoring``)."""
    lowered = text.lower()
    english = english_words()
    found = set()
    for row in rows:
        name = str(row.get(lookup.name or lookup.value, "")).lower()
        if len(name) >= 3 and mentions(lowered, name, spaced=spaced_names(name, english)):
            found.add((row.get(lookup.value), name))
    return found


def _described(value: str, rows: list[dict[str, Any]], lookup: NameLookup) -> set[tuple[Any, str]]:
    """Rows a descriptive value ("the GPU node") fits: a set field named by one of its words, or a tag."""
    words = [w for w in re.findall(r"[a-z0-9]+", value.lower()) if w not in _STOP and len(w) >= 3]
    if not words:
        return set()
    found = set()
    for row in rows:
        for word in words:
            fields = [k for k, v in row.items() if v and not isinstance(v, int | float) and word in k.lower()]
            tags = row.get("tags")
            tagged = isinstance(tags, list) and word in [str(t).lower() for t in tags]
            if fields or tagged:
                found.add((row.get(lookup.value), str(row.get(lookup.name or lookup.value, ""))))
    return found


def _loose(text: str) -> str:
    """``text`` lower-cased without separators (hyphens, underscores, dots, spaces)."""
    return re.sub(r"[\s_.-]+", "", text.lower())


def resolve_names(
    guard: Guard, caller: Caller, tool: Tool[Any], args: dict[str, Any], text: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """``args`` with named things resolved, and ``{value: name}`` of what the user's words settled.

    An argument the user gave as written (a number in their words) is left alone; so is one that no single
    listed thing fits (validation, or a question back, deals with it).
    """
    out = dict(args)
    settled: dict[str, str] = {}
    for arg, lookup in tool.named_by.items():
        given = out.get(arg)
        if isinstance(given, int) and mentions(text, given):
            continue  # an id the user wrote themselves
        rows = _listed(guard, caller, lookup.tool)
        if not rows:
            continue
        values = {str(r.get(lookup.value)) for r in rows}
        if given is not None and str(given) in values and lookup.name is None:
            continue  # already one of the listed values (a node name)
        # A listed value the model left out of a read's filter ("what does researcher2 have running": vm.list's
        # owner) is the one the message names; a change's is never filled from a mention.
        by_value = given is None and tool.risk == "read"
        found = _named_in(text, rows, lookup) if lookup.name is not None or by_value else set()
        if not found and isinstance(given, str):
            # The model wrapped a listed value in other words: "heartbeat: template heartbeat" (the note the
            # agent adds to the message, copied whole) is the template heartbeat.
            found = _named_in(given, rows, lookup)
            found = found if len({str(v) for v, _ in found}) == 1 else set()
        if not found and isinstance(given, str):
            # The listed value written with other separators: "redshift_histogram" for "redshift-histogram".
            loose = _loose(given)
            found = {
                (r.get(lookup.value), str(r.get(lookup.name or lookup.value, "")))
                for r in rows
                if loose and loose in (_loose(str(r.get(lookup.value, ""))), _loose(str(r.get(lookup.name or "", ""))))
            }
        if not found and isinstance(given, str):
            found = _described(given, rows, lookup)
        if len(found) == 1:
            value, name = found.pop()
            out[arg] = value
            settled[str(value)] = name
    return out, settled


def each_named(
    guard: Guard, caller: Caller, tool: Tool[Any], args: dict[str, Any], text: str, *, most: int = 4
) -> list[dict[str, Any]]:
    """One call's arguments for each of the things ``text`` names (by name or id), in the order it names them.

    "Are proj-pg01 and proj-pg02 on the same host?" names two VMs; the model reads one of them (``vm.show`` of
    110) and the answer could say nothing of the other. A call on one thing whose argument a name settles is
    made for each thing named (2 to ``most``; more is a question for the listing); a change only for things
    listed as its object. Anything else: ``[args]``.
    """
    lowered = text.lower()
    for arg, lookup in tool.named_by.items():
        if lookup.name is None:
            continue
        rows = _listed(guard, caller, lookup.tool)
        by_value = dict(_ids_in(text, rows, lookup))
        by_value.update(_named_in(text, rows, lookup))  # a thing named and numbered (the agent's note) is one
        found = set(by_value.items())
        if not 2 <= len(found) <= most:
            continue
        ordered = sorted(found, key=lambda row: _where(lowered, row[1]))
        if tool.risk != "read" and not _one_list(lowered, [row[1] for row in ordered]):
            # A change is made of each only when they are its object, listed together ("start 130 and 132",
            # "back up agn-fit and void-analysis"): not "stop 130 and show me 132".
            continue
        return [{**args, arg: value} for value, _ in ordered]
    return [args]


def _ids_in(text: str, rows: list[dict[str, Any]], lookup: NameLookup) -> set[tuple[Any, str]]:
    """Rows whose id the text holds as a number standing alone ("start 130 and 132")."""
    numbers = set(re.findall(r"(?<![\w.-])\d{2,}(?![\w.-])", text))
    return {(row.get(lookup.value), str(row.get(lookup.value))) for row in rows
            if isinstance(row.get(lookup.value), int) and str(row.get(lookup.value)) in numbers}  # fmt: skip


def _span(lowered: str, word: str) -> re.Match[str] | None:
    """Where ``word`` stands in ``lowered`` as a whole word (a name's hyphens part of it)."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", lowered)


def _where(lowered: str, word: str) -> int:
    match = _span(lowered, word)
    return match.start() if match else lowered.find(word)


def _one_list(lowered: str, words: list[str]) -> bool:
    """Whether ``words`` stand in ``lowered`` one after another, joined only by commas, "and" or "&"."""
    spans = [_span(lowered, w) for w in words]
    if any(m is None for m in spans):
        return False
    between = [lowered[a.end() : b.start()] for a, b in itertools.pairwise(spans) if a and b]
    return all(re.fullmatch(r"\s*(?:,|&|and|,\s*and|\+)\s*(?:vm\s+)?", gap) for gap in between)


def own_values(guard: Guard, caller: Caller, tool: Tool[Any], lister: Tool[Any] | None) -> list[Any]:
    """The asker's things ``tool`` may act on (``Tool.own``: their pending or running jobs), from the listing."""
    own = tool.own
    if own is None or lister is None or lister.mine is None:
        return []
    rows = _listed(guard, caller, own.tool, {lister.mine: caller.user})
    return [row.get(own.value) for row in rows if all(row.get(k) in allowed for k, allowed in own.where.items())]


# "All my VMs", "every one of my jobs", "both of my vms": the asker's things, each of them.
_ALL_OF_MINE = re.compile(r"\b(?:all|every|each|both)\s+(?:one\s+)?(?:of\s+)?(?:my|our)\b", re.IGNORECASE)


def each_own(
    guard: Guard, caller: Caller, tool: Tool[Any], lister: Tool[Any] | None, text: str, *, most: int = 4
) -> list[Any]:
    """The asker's things a change is made on, one call each, when the message says all of them; else ``[]``.

    "Shut down all my vms": the asker's running VMs (``Tool.own``). More than ``most`` is a question for the
    user, as when several are named.
    """
    if tool.own is None or not _ALL_OF_MINE.search(text):
        return []
    values = own_values(guard, caller, tool, lister)
    return values if 1 <= len(values) <= most else []


def own_thing(
    guard: Guard, caller: Caller, tool: Tool[Any], lister: Tool[Any] | None, args: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """``args`` with the asker's one thing filled in (``Tool.own``), and the note saying so; else unchanged, None.

    For a message about the asker's own things ("cancel my ray job"): the id the model gave stands when it is
    one of them; otherwise, when exactly one of them fits (a job still pending or running), that one is meant.
    ``lister`` is the tool ``own.tool`` names; the listing is a read through the guard as the asker.
    """
    own = tool.own
    if own is None:
        return args, None
    values = own_values(guard, caller, tool, lister)
    if args.get(own.arg) in values or len(values) != 1:
        return args, None
    return {**args, own.arg: values[0]}, f"{own.arg} = {values[0]} (your only {own.what})"
