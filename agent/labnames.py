"""The names of the things the lab's tools list (VM names, job templates, nodes), and what they stand for.

Read through the guard from the listings the tools declare (``Tool.named_by``), cached for a while: "is
void-analysis running?" is about a VM whatever the words around it, and names a ``vmid``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from agent.mentions import mention, mentions, spaced_names
from agent.spelling import english_words
from policies.guard import Caller, Guard
from tools.base import EXAMPLE_NAME, Tool

__all__ = ["LabNames"]


@dataclass(kw_only=True)
class LabNames:
    """The names of the things the lab's tools list (VM names, node names), read through the guard, cached.

    Which listings to read comes from the tools' declarations (``Tool.named_by``); each family's names map to
    that family, so "is void-analysis running?" points at the VM tools whatever the words around it.
    """

    guard: Guard
    tools: list[Tool[Any]]
    ttl_s: float = 120.0
    _where: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)  # name: (listing tool, arguments)
    _ids: dict[str, tuple[str, Any]] = field(default_factory=dict)  # free-form name: (the field, its value)
    # A name whose listing calls it by another word than the argument that takes it: "heartbeat" is a `template`.
    _kinds: dict[str, str] = field(default_factory=dict)
    _read_at: float = -1e9
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _lookups(self) -> dict[tuple[str, str], tuple[bool, str, frozenset[str]]]:
        """``{(listing tool, name field): (whether the name is free-form, the field it stands for, arguments)}``.

        A free-form name stands for an id in another field (a VM's name for its vmid); a node's name is its id.
        The arguments are those of the tools that take such a thing (``vmid``; ``template`` for a job template,
        whose listing calls it ``name``).
        """
        out: dict[tuple[str, str], tuple[bool, str, frozenset[str]]] = {}
        for tool in self.tools:
            for arg, lookup in tool.named_by.items():
                freeform = lookup.name is not None and lookup.name != lookup.value
                key = (lookup.tool, lookup.name or lookup.value)
                args = out[key][2] if key in out else frozenset()
                out[key] = (freeform, lookup.value, args | {arg})
        return out

    def _read(self, caller: Caller) -> dict[str, tuple[str, frozenset[str]]]:
        """``{name: (listing tool, the arguments it stands for)}`` of every thing the listings show (cached)."""
        with self._lock:
            if time.monotonic() - self._read_at < self.ttl_s:
                return self._where
            where: dict[str, tuple[str, frozenset[str]]] = {}
            ids: dict[str, tuple[str, Any]] = {}
            kinds: dict[str, str] = {}
            for (tool, name_field), (freeform, value_field, args) in self._lookups().items():
                for row in self.guard.call(tool, {}, caller=caller).records():
                    name = str(row.get(name_field, "")).strip().lower()
                    if len(name) >= 3:
                        where[name] = (tool, args)
                        if freeform:
                            ids[name] = (value_field, row.get(value_field))
                        elif value_field not in args and len(args) == 1:
                            kinds[name] = next(iter(args))
            self._where, self._ids, self._kinds, self._read_at = where, ids, kinds, time.monotonic()
            return where

    def names(self, caller: Caller) -> dict[str, str]:
        """``{name: family}`` of every thing the listings show (refreshed after ``ttl_s``): the listing's family."""
        return {name: tool.split(".")[0] for name, (tool, _) in self._read(caller).items()}

    def where(self, names: Collection[str]) -> tuple[frozenset[str], frozenset[str]]:
        """For names :meth:`named` found: the arguments they stand for (``vmid``) and the tools that list them."""
        with self._lock:
            found = [self._where[n] for n in names if n in self._where]
        return frozenset(a for _, args in found for a in args), frozenset(t for t, _ in found)

    def id_of(self, name: str) -> tuple[str, Any] | None:
        """The field and value a free-form name stands for (``("vmid", 130)`` for void-analysis), or None."""
        with self._lock:
            found = self._ids.get(name.lower())
        return found if found is not None and found[1] not in (None, "") else None

    def ids(self, names: Collection[str]) -> list[str]:
        """What the names among ``names`` stand for, as notes: ``"void-analysis: vmid 130"``.

        Free-form names give the id they stand for; a name the tools take under another word than its listing's
        says that word (``"heartbeat: template heartbeat"``: "launch the heartbeat job" is no new VM's name).
        """
        with self._lock:
            found = [(n, *self._ids[n]) for n in sorted(names) if n in self._ids]
            found += [(n, self._kinds[n], n) for n in sorted(names) if n in self._kinds]
        return [f"{name}: {field} {value}" for name, field, value in found if value not in (None, "")]

    def masked(self, text: str, caller: Caller) -> str:
        """``text`` with each free-form name of the lab (a VM's) replaced by the tools' example name.

        What a message asks about a VM, not the words of its name, should decide which tool fits it.
        """
        self._read(caller)
        out = text
        for name in sorted(self._ids, key=len, reverse=True):
            out = re.sub(mention(name), EXAMPLE_NAME, out, flags=re.I)
        return out

    def named(self, text: str, caller: Caller) -> dict[str, str]:
        """The things ``text`` names, with their families.

        A free-form name is also named by a part of it that is no English word and belongs to no other name:
        "my sandbox vm" is ``scratch-sandbox``, "the wazuh box" ``wazuh-manager``, "the gpu vm" ``gpu-ollama``
        (a part of three letters only before "vm"; "analysis" names nothing).
        """
        lowered = text.lower()
        names = self.names(caller)
        english = english_words()
        out = {name: family for name, family in names.items()
               if mentions(lowered, name, spaced=spaced_names(name, english))}  # fmt: skip
        with self._lock:
            free = sorted(self._ids)
        parts: dict[str, list[str]] = {}
        for name in free:
            for part in set(re.findall(r"[a-z]+", name)):
                parts.setdefault(part, []).append(name)
        for part, owners in parts.items():
            if len(owners) != 1 or part in english or len(part) < 3:
                continue
            # A short part ("gpu", "qso") is also a word of its own: it names a VM only as "the gpu vm".
            pattern = mention(part) + (r"\s+(?:vm|vms|box|machine|server|instance)\b" if len(part) == 3 else "")
            if re.search(pattern, lowered):
                out.setdefault(owners[0], names.get(owners[0], ""))
        return out
