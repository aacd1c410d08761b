"""Repair a model's tool arguments where the meaning is unambiguous, before they are validated.

Small models get the intent right and the form wrong: ``"memory": "32 gigs"`` for ``memory_gib: 32``,
``"vmid": "VM 130"``, a shortened job id, ``FROM zpix`` without its schema, ``"none"`` in an optional field.
Each rule here maps one such form to the schema's, knowing units and number words but no lab facts and no
tool names (a tool's other argument names are its own ``aliases``); anything ambiguous is left alone for
validation to refuse (and the model to fix). Identity never comes from the model: a ``user``/``requester``
argument that the tool does not declare is dropped.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from agent.mentions import mentions

__all__ = ["MEMORY_FACTORS", "WORD_NUMBERS", "arg_kind", "normalize_args", "ungrounded_required"]

_IDENTITY_KEYS = {"user", "username", "requester", "as_user", "caller", "requested_by", "on_behalf_of"}
_PLACEHOLDERS = {"", "none", "null", "nil", "default", "all", "any", "n/a", "na", "unknown", "unspecified", "*"}
_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
MEMORY_FACTORS = {
    "": 1.0, "g": 1.0, "gb": 1.0, "gib": 1.0, "gig": 1.0, "gigs": 1.0, "gigabyte": 1.0, "gigabytes": 1.0,
    "m": 1 / 1024, "mb": 1 / 1024, "mib": 1 / 1024, "megabytes": 1 / 1024,
    "t": 1024.0, "tb": 1024.0, "tib": 1024.0,
}  # fmt: skip


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    props: dict[str, dict[str, Any]] = schema.get("properties", {})
    return props


def arg_kind(prop: dict[str, Any]) -> str | None:
    """An argument's JSON type from its schema (the non-null one of an optional argument's ``anyOf``)."""
    if "type" in prop:
        return str(prop["type"])
    for option in prop.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return None


def _enum(prop: dict[str, Any]) -> list[Any] | None:
    if "enum" in prop:
        return list(prop["enum"])
    for option in prop.get("anyOf", []):
        if "enum" in option:
            return list(option["enum"])
    return None


def _number(value: Any, key: str) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace(",", "")
    text = re.sub(r"^(vm|node|job)\s*#?\s*", "", text)
    match = _UNIT.match(text)
    if match is None:
        match = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\b", text)
        if match is None:
            return None
    number, unit = float(match.group(1)), match.group(2)
    if key == "memory_gib":
        factor = MEMORY_FACTORS.get(unit)
        return None if factor is None else number * factor
    if unit in ("", "cores", "core", "cpus", "cpu", "vcpus", "arcmin", "arcminutes", "rows", "lines", "s", "seconds"):
        return number
    return None


def _node(value: Any) -> Any:
    """``node 7`` / ``the node-07`` as ``node07``; anything else is left for the tool's name lookup."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    match = re.fullmatch(r"(?:the\s+)?(?:node|pve)\s*-?\s*0?([0-9]{1,2})", text)
    if match:
        return f"node{int(match.group(1)):02d}"
    return value


def _rename(
    args: dict[str, Any], props: dict[str, dict[str, Any]], aliases: Mapping[str, tuple[str, ...]], notes: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key in props:
            out[key] = value
            continue
        if key.lower() in _IDENTITY_KEYS:
            notes.append(f"dropped {key!r}: who asks comes from the channel, not from the arguments")
            continue
        target = next((t for t, alts in aliases.items() if t in props and key.lower() in alts), None)
        if target is not None and target not in args and target not in out:
            if target == "memory_gib" and key.lower().endswith(("_mb", "_mib")) and isinstance(value, int | float):
                value = value / 1024
            out[target] = value
            notes.append(f"{key} → {target}")
        else:
            out[key] = value  # left for validation to refuse
    return out


def _coerce(key: str, value: Any, prop: dict[str, Any], notes: list[str]) -> tuple[bool, Any]:
    """``(keep, value)`` for one argument."""
    kind = arg_kind(prop)
    optional = "default" in prop or any(o.get("type") == "null" for o in prop.get("anyOf", []))
    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in _PLACEHOLDERS)):
        # "none", "all", "default" in an optional field mean "not given" (small models fill every field).
        notes.append(f"dropped placeholder {key}={value!r}")
        return False, None
    if key == "node":
        value = _node(value)
    if kind == "integer":
        number = _number(value, key)
        if number is not None and number == int(number) and not isinstance(value, int):
            notes.append(f"{key}: {value!r} → {int(number)}")
            return True, int(number)
        if key == "memory_gib" and isinstance(value, int) and value >= 1024 and value % 1024 == 0:
            notes.append(f"memory_gib: {value} looks like MiB → {value // 1024}")
            return True, value // 1024
    elif kind == "number":
        number = _number(value, key)
        if number is not None and not isinstance(value, int | float):
            notes.append(f"{key}: {value!r} → {number:g}")
            return True, number
    elif kind == "boolean" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return True, value.strip().lower() == "true"
    elif kind == "array" and isinstance(value, str):
        notes.append(f"{key}: one string → list")
        return True, shlex.split(value) if key == "args" else [value]
    options = _enum(prop)
    if options and isinstance(value, str) and value not in options:
        match = [o for o in options if isinstance(o, str) and o.lower() == value.strip().lower()]
        if len(match) == 1:
            return True, match[0]
    return True, value


def _qualify_sql(sql: str, schema_name: str, notes: list[str]) -> str:
    fixed = re.sub(rf"\b(FROM|JOIN)\s+(?!{schema_name}\.)(zpix|photometry)\b", rf"\1 {schema_name}.\2", sql, flags=re.I)
    fixed = re.sub(rf"\b(FROM|JOIN)\s+{schema_name}\b(?!\.)", rf"\1 {schema_name}.zpix", fixed, flags=re.I)
    if fixed != sql:
        notes.append(f"qualified table names with {schema_name}")
    return fixed


def _expand_id(value: Any, known_ids: list[str], notes: list[str]) -> Any:
    if not isinstance(value, str) or value in known_ids:
        return value
    matches = [k for k in known_ids if k.endswith(value) or k.startswith(value)]
    if len(matches) == 1 and len(value) >= 4:
        notes.append(f"job id {value!r} → {matches[0]!r}")
        return matches[0]
    return value


def _squash(text: str) -> str:
    return re.sub(r"[\s_\-'\"`]+", "", text.lower())


WORD_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "fourteen": 14, "sixteen": 16, "twenty": 20, "twenty-four": 24, "thirty-two": 32,
    "forty-eight": 48, "sixty-four": 64, "a hundred": 100, "single": 1, "a couple of": 2, "a dozen": 12,
}  # fmt: skip


def _numbers_in(text: str) -> set[float]:
    """Numbers in a text, digits or words ("four cores", "sixteen GiB")."""
    # Not the digits of a name ("build-01", "node07"): a model that fills template=1 from "build-01" guessed it.
    found = {float(n) for n in re.findall(r"(?<![\w.-])-?\d+(?:\.\d+)?", text)}
    lowered = text.lower()
    found |= {float(v) for w, v in WORD_NUMBERS.items() if mentions(lowered, w)}
    return found


_ENUM_ALIASES = {"qso": ("quasar", "qso"), "galaxy": ("galax",), "star": ("star", "stellar")}


def _enum_named(value: str, evidence: str) -> bool:
    lowered = evidence.lower()
    stems = _ENUM_ALIASES.get(value.lower(), (value.lower()[:4] if len(value) > 4 else value.lower(),))
    return _squash(value) in _squash(evidence) or any(
        re.search(rf"(?<![a-z]){re.escape(stem)}", lowered) for stem in stems
    )


def _grounded(
    key: str, value: Any, original: Any, prop: dict[str, Any], evidence: str, *, strict_enum: bool = False
) -> bool:
    """Whether an optional argument's value comes from what the user (or a tool this turn) said."""
    if "default" in prop and value == prop["default"]:
        return False
    if _enum(prop):
        # A closed set: named by the value, its word stem ("GALAXY" for "galaxies") or a known alias ("QSO" for
        # "quasars"). Not named at all, an optional filter is the model's guess and narrows the answer wrongly.
        return not strict_enum or _enum_named(str(value), evidence)
    if isinstance(value, bool):
        words = [w for w in key.split("_") if len(w) >= 4]
        return any(w in evidence.lower() for w in words)
    if isinstance(value, int | float):
        numbers = _numbers_in(evidence)
        return float(value) in numbers or (isinstance(original, str) and _number(original, key) in numbers)
    if isinstance(value, str):
        squashed = _squash(evidence)
        return _squash(value) in squashed or (isinstance(original, str) and _squash(original) in squashed)
    if isinstance(value, list):
        return any(_grounded(key, v, v, {}, evidence) for v in value)
    return True


def _long_number(key: str, value: int, evidence: str, notes: list[str]) -> int:
    """A long id the model copied with a digit lost or added, put back as the user wrote it (one candidate only)."""
    digits = str(abs(value))
    if len(digits) < 8:
        return value
    written = {n for n in re.findall(r"(?<![\w.])\d{8,}(?![\w.])", evidence)}
    if digits in written:
        return value
    near = [n for n in written if n[:8] == digits[:8] and abs(len(n) - len(digits)) <= 1]
    if len(near) == 1:
        notes.append(f"{key} {value} → {near[0]} (as the user wrote it)")
        return int(near[0])
    return value


def normalize_args(
    schema: dict[str, Any],
    args: dict[str, Any],
    *,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    known_ids: list[str] | None = None,
    sql_schema: str = "desi_dr1",
    evidence: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Arguments mapped onto ``schema`` where unambiguous, and notes on what changed.

    ``aliases`` are the tool's own (``Tool.aliases``: other names a model writes for an argument). With
    ``evidence`` (the user's words and this turn's tool results), optional arguments whose values appear
    nowhere in it are dropped: small models fill every optional field with a plausible guess.
    """
    notes: list[str] = []
    props = _properties(schema)
    required = set(schema.get("required", []))
    renamed = _rename(args, props, aliases or {}, notes)
    out: dict[str, Any] = {}
    for key, value in renamed.items():
        prop = props.get(key)
        if prop is None:
            out[key] = value
            continue
        keep, fixed = _coerce(key, value, prop, notes)
        if keep and evidence is not None and isinstance(fixed, int) and not isinstance(fixed, bool):
            fixed = _long_number(key, fixed, evidence, notes)
        if (
            keep
            and evidence is not None
            and key not in required
            and not _grounded(key, fixed, value, prop, evidence, strict_enum=True)
        ):
            notes.append(f"dropped {key}={fixed!r}: not something the user asked for")
            keep = False
        if keep:
            out[key] = fixed
    if isinstance(out.get("sql"), str):
        out["sql"] = _qualify_sql(out["sql"], sql_schema, notes)
    if "job_id" in out and known_ids:
        out["job_id"] = _expand_id(out["job_id"], known_ids, notes)
    return out, notes


def ungrounded_required(schema: dict[str, Any], args: dict[str, Any], evidence: str) -> list[tuple[str, str]]:
    """Required arguments of a change whose values the user never gave (``(name, description)`` each).

    A change runs on what the user said, not on the model's guess: "Delete it." or "Create a VM." leaves
    the model to invent a VM id or a name, and that is asked back instead.
    """
    props = _properties(schema)
    missing = []
    for key in schema.get("required", []):
        prop = props.get(key, {})
        if key in args and _grounded(key, args[key], args[key], {k: v for k, v in prop.items() if k != "default"},
                                     evidence):  # fmt: skip
            continue
        missing.append((key, str(prop.get("description", ""))))
    return missing
