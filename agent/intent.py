"""The intent gate: a side effect runs only when the person asked for that kind of action.

Policy decides whether a user *may* do something; this gate checks that the user *asked* for it. A model
that read "delete all VMs" in a document or in a VM's description, and proposes ``vm.delete`` while the
user asked about backups, is stopped here, before the guard, whatever the model believes. Read tools
pass freely. The verbs are per action kind and deliberately broad: the gate catches actions nobody asked
for, not unusual wording.
"""

from __future__ import annotations

import re
from typing import Any

from tools.base import Tool

__all__ = ["asked_for"]

_VERBS: dict[str, tuple[str, ...]] = {
    "provision": ("provision", "create", "make", "spin up", "set up", "setup", "launch", "new vm", "new machine",
                  "need a vm", "need a machine", "need a new", "give me a vm", "build", "deploy", "clone", "want a vm",
                  "would like a vm", "request a vm", "get a vm", "allocate"),
    "start": ("start", "boot", "power on", "turn on", "bring up", "resume"),
    "stop": ("stop", "shut", "power off", "turn off", "halt", "bring down", "pause"),
    "reboot": ("reboot", "restart", "bounce", "power cycle"),
    "delete": ("delete", "remove", "destroy", "get rid of", "tear down", "purge", "wipe", "decommission", "drop"),
    "submit": ("run", "submit", "start", "launch", "kick off", "execute", "schedule", "compute", "job"),
}  # fmt: skip
_TOOL_KIND = {
    "vm.provision": "provision",
    "vm.start": "start",
    "vm.stop": "stop",
    "vm.reboot": "reboot",
    "vm.delete": "delete",
    "ray.submit": "submit",
    "ray.stop": "stop",
}


def _kind(tool: Tool[Any]) -> str:
    return _TOOL_KIND.get(tool.name, tool.name.split(".")[-1])


def asked_for(tool: Tool[Any], user_text: str) -> bool:
    """Whether ``user_text`` asks for the kind of action ``tool`` performs (always true for read tools)."""
    if tool.risk == "read":
        return True
    verbs = _VERBS.get(_kind(tool), (_kind(tool),))
    text = f" {user_text.lower()} "
    return any(re.search(rf"(?<![a-z]){re.escape(v)}", text) for v in verbs)
