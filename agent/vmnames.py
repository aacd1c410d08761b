"""VMs named by their name ("reboot proj-pg01", "the agn-fit VM"), resolved to the id the tools take.

The small model guesses a number when the user gave a name (``vm.show {"vmid": 10}`` for "agn-fit").
A name the user wrote that is exactly one VM's name settles the id; the lookup is an ordinary
``vm.list`` call through the guard as the user, so policy and the audit log see it like any other read.
"""

from __future__ import annotations

import re
from typing import Any

from policies.guard import Caller, Guard

__all__ = ["names_in", "resolve_vmid"]

_NAME = re.compile(r"(?<![\w-])[a-z][a-z0-9]*(?:-[a-z0-9]+)+(?![\w-])", re.I)


def names_in(text: str) -> list[str]:
    """Hyphenated names in a message (VM names in this lab are hyphenated: proj-pg01, qso-vae-dev)."""
    return list(dict.fromkeys(n.lower() for n in _NAME.findall(text)))


def resolve_vmid(guard: Guard, caller: Caller, text: str, given: Any) -> tuple[int, str] | None:
    """The (vmid, name) of the one VM ``text`` names, unless ``given`` is an id the user wrote themselves."""
    if given is not None and re.search(rf"(?<!\d){re.escape(str(given))}(?!\d)", text):
        return None
    names = names_in(text)
    if not names:
        return None
    listed = guard.call("vm.list", {}, caller=caller)
    if listed.status != "ok" or not isinstance(listed.data, list):
        return None
    by_name = {str(row.get("name", "")).lower(): int(row["vmid"]) for row in listed.data if "vmid" in row}
    found = {(by_name[n], n) for n in names if n in by_name}
    return found.pop() if len(found) == 1 else None
