"""The intent gate: a side effect runs only when the person asked for that kind of action.

Policy decides whether a user *may* do something; this gate checks that the user *asked* for it. A model
that read "delete all VMs" in a document or in a VM's description, and proposes ``vm.delete`` while the
user asked about backups, is stopped here, before the guard, whatever the model believes. Read tools
pass freely. Each tool that changes the lab declares how people ask for it (``Tool.asks``); the phrases are
deliberately broad: the gate catches actions nobody asked for, not unusual wording.
"""

from __future__ import annotations

import re
from typing import Any

from tools.base import Tool

__all__ = ["asked_for", "asks_in_words"]


def _says(tool: Tool[Any], user_text: str, *, whole_words: bool) -> bool:
    """Whether ``user_text`` holds one of ``tool``'s asking phrases (as a word's start, or as whole words)."""
    text = f" {user_text.lower()} "
    end = r"(?![a-z])" if whole_words else ""
    return any(re.search(rf"(?<![a-z]){re.escape(phrase.lower())}{end}", text) for phrase in tool.asks)


def asked_for(tool: Tool[Any], user_text: str) -> bool:
    """Whether ``user_text`` asks for the kind of action ``tool`` performs (always true for read tools)."""
    return tool.risk == "read" or _says(tool, user_text, whole_words=False)


def asks_in_words(tool: Tool[Any], user_text: str) -> bool:
    """Whether ``user_text`` holds one of ``tool``'s asking phrases as whole words ("stop", not "stopped")."""
    return _says(tool, user_text, whole_words=True)
