"""Parameter checks with PVE's wording: every problem is collected into one 400 ``errors`` dict."""

from __future__ import annotations

import re
from typing import Any

from simlab.httpapi import ApiError

__all__ = ["Params"]

_DNS = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_TAG = re.compile(r"^[a-z0-9_][a-z0-9_\-+.]*$", re.IGNORECASE)
_BOOL = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1, "off": 0, "on": 1}


class Params:
    """The arguments of one call, checked against the parameters the endpoint declares."""

    def __init__(self, raw: dict[str, str], allowed: set[str], path_params: dict[str, str] | None = None) -> None:
        self.raw = dict(raw)
        self.errors: dict[str, str] = {}
        for key, value in (path_params or {}).items():
            if key in self.raw and self.raw[key] != value:
                self.errors[key] = "duplicate parameter (already defined in URI) with conflicting values!"
        for key in self.raw:
            if key not in allowed and key not in (path_params or {}):
                self.errors[key] = (
                    "property is not defined in schema and the schema does not allow additional properties"
                )

    def has(self, key: str) -> bool:
        """Whether the caller sent ``key``."""
        return key in self.raw

    def integer(
        self,
        key: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        required: bool = False,
        default: int | None = None,
    ) -> int | None:
        """An integer parameter (the wire sends strings)."""
        if key not in self.raw:
            if required:
                self.errors[key] = "property is missing and it is not optional"
            return default
        text = self.raw[key].strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            self.errors[key] = f"type check ('integer') failed - got '{text}'"
            return default
        value = int(text)
        if minimum is not None and value < minimum:
            self.errors[key] = f"value must have a minimum value of {minimum}"
        elif maximum is not None and value > maximum:
            self.errors[key] = f"value may not exceed {maximum}"
        return value

    def boolean(self, key: str, default: int = 0) -> int:
        """A boolean parameter (``0``/``1``)."""
        if key not in self.raw:
            return default
        value = _BOOL.get(self.raw[key].strip().lower())
        if value is None:
            self.errors[key] = f"type check ('boolean') failed - got '{self.raw[key]}'"
            return default
        return value

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
        max_length: int | None = None,
    ) -> str | None:
        """A string parameter, optionally matched against a format."""
        if key not in self.raw:
            if required:
                self.errors[key] = "property is missing and it is not optional"
            return None
        value = self.raw[key]
        if max_length is not None and len(value) > max_length:
            self.errors[key] = f"value may only be {max_length} characters long"
        elif pattern is not None and not pattern.match(value):
            self.errors[key] = "value does not match the regex pattern" if not what else f"invalid format - {what}"
        return value

    def dns_name(self, key: str, *, required: bool = False) -> str | None:
        """A ``dns-name`` parameter (VM names)."""
        return self.string(
            key,
            required=required,
            pattern=_DNS,
            what=f"value '{self.raw.get(key, '')}' does not look like a valid DNS name",
        )

    def enum(self, key: str, values: set[str], *, default: str | None = None) -> str | None:
        """A parameter with a fixed set of values."""
        if key not in self.raw:
            return default
        if self.raw[key] not in values:
            self.errors[key] = (
                f"value '{self.raw[key]}' does not have a value in the enumeration '{', '.join(sorted(values))}'"
            )
        return self.raw[key]

    def tags(self, key: str) -> str | None:
        """PVE tags: separated by ``;``, ``,`` or spaces; returned ``;``-joined and sorted."""
        if key not in self.raw:
            return None
        items = [t for t in re.split(r"[;, ]+", self.raw[key]) if t]
        bad = [t for t in items if not _TAG.match(t)]
        if bad:
            self.errors[key] = f"invalid format - invalid tag '{bad[0]}'"
        return ";".join(sorted(dict.fromkeys(t.lower() for t in items)))

    def memory(self, key: str) -> int | None:
        """``memory``: ``[current=]<integer>`` MiB (PVE 9 syntax; a bare integer works everywhere)."""
        if key not in self.raw:
            return None
        text = self.raw[key].strip()
        if text.startswith("current="):
            text = text[len("current=") :]
        if not text.isdigit():
            self.errors[key] = f"type check ('integer') failed - got '{self.raw[key]}'"
            return None
        value = int(text)
        if value < 16:
            self.errors[key] = "value must have a minimum value of 16"
        return value

    def check(self) -> None:
        """Raise the 400 if anything was wrong."""
        if self.errors:
            raise ApiError(400, "Parameter verification failed.", errors=self.errors)


def describe(value: Any) -> str:
    """Short text for log lines."""
    return str(value)
