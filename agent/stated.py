"""Amounts the user stated for a change ("with 2 gpus", "4 cores", "16 gib of memory") keep their value.

A small model drops or rewrites an amount it finds awkward: "submit heartbeat with 2 gpus" became
``ray.submit {"template": "heartbeat"}`` (no GPUs at all), and it ran. A change runs with what was asked or not
at all, so an amount stated with a word that names one of the tool's numeric arguments is put into the call
as stated; validation then refuses what the tool does not allow (``num_gpus``: at most 1), and the model and
the user hear why. The words come from the tool's declaration: the argument's own name ("gpus" of
``num_gpus``, "memory" of ``memory_gib``) and its one-word aliases ("ram", "cpus" of ``cores``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agent.cues import NEW_NAME
from agent.normalize import MEMORY_FACTORS, WORD_NUMBERS, arg_kind

__all__ = ["gives_arguments", "stated_amounts", "stated_values", "with_stated_amounts", "with_stated_values"]

# Not words that say what an amount is for: "num" of num_gpus, and units ("16 gib" may be a disk as well).
_SKIP = {"num", "of", "the", "gib", "mib", "gb", "mb"}
_DISK = r"(?:disks?|storage|ssd|hdd|nvme|space|volume)\b"
_UNITS = "|".join(sorted((u for u in MEMORY_FACTORS if u), key=len, reverse=True))


def _words(key: str, aliases: tuple[str, ...]) -> set[str]:
    """The words (singular) that name an argument next to a number: its name's parts and its one-word aliases."""
    words = {part for part in key.lower().split("_") if part not in _SKIP and len(part) >= 3}
    words |= {a.lower() for a in aliases if re.fullmatch(r"[a-z]{3,}", a.lower())}
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words}


def _numeric(prop: dict[str, Any]) -> bool:
    return arg_kind(prop) in ("integer", "number")


def _amount(text: str) -> float | None:
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    value = WORD_NUMBERS.get(text)
    return None if value is None else float(value)


def stated_amounts(schema: dict[str, Any], aliases: Mapping[str, tuple[str, ...]], text: str) -> dict[str, float]:
    """Each numeric argument the text gives exactly one amount for ("2 gpus" → ``{"num_gpus": 2.0}``)."""
    numbers = "|".join([r"\d+(?:\.\d+)?", *sorted((re.escape(w) for w in WORD_NUMBERS), key=len, reverse=True)])
    lowered = f" {text.lower()} "
    found: dict[str, float] = {}
    sizes = [k for k, p in schema.get("properties", {}).items() if k.endswith("_gib") and _numeric(p)]
    for key, prop in schema.get("properties", {}).items():
        if not _numeric(prop):
            continue
        words = "|".join(re.escape(w) for w in sorted(_words(key, aliases.get(key, ())), key=len, reverse=True))
        if not words:
            continue
        # "2 gpus", "2gpu", "two GPUs", "16 gib", "8 cores", "64 GB ram", "512 MB of memory": the amount right
        # before the word, a memory unit and "of" allowed between (converted for an argument in GiB).
        pattern = rf"(?<![\w.-])({numbers})\s*(?:x\s*)?(?:({_UNITS})\s*)?(?:of\s+)?(?:{words})(?:e?s)?(?![a-z])"
        amounts = set()
        for match in re.finditer(pattern, lowered):
            amount, unit = _amount(match.group(1)), match.group(2) or ""
            if amount is not None and (not unit or key.endswith("_gib")):
                amounts.add(amount * MEMORY_FACTORS[unit] if key.endswith("_gib") else amount)
        if key.endswith("_gib") and sizes == [key]:
            # "2 cores and 4 gb": a size alone is the tool's one size in GiB, unless it is said of a disk.
            for match in re.finditer(rf"(?<![\w.-])({numbers})\s*({_UNITS})(?![a-z])(?!\s*(?:of\s+)?{_DISK})", lowered):
                amount = _amount(match.group(1))
                if amount is not None and match.group(2):
                    amounts.add(amount * MEMORY_FACTORS[match.group(2)])
        if len(amounts) == 1:  # "from 2 cores to 4 cores" is no single amount: the model's reading stands
            found[key] = amounts.pop()
    return found


def with_stated_amounts(
    schema: dict[str, Any], aliases: Mapping[str, tuple[str, ...]], args: dict[str, Any], text: str
) -> tuple[dict[str, Any], list[str]]:
    """``args`` with every amount the user stated, as stated, and a note for each one the model left or changed."""
    props = schema.get("properties", {})
    out, notes = dict(args), []
    for key, amount in stated_amounts(schema, aliases, text).items():
        current = out.get(key)
        if isinstance(current, int | float) and not isinstance(current, bool) and float(current) == amount:
            continue
        integer = arg_kind(props[key]) == "integer"
        value: float | int = int(amount) if integer and amount == int(amount) else amount
        out[key] = value
        was = "left out" if current is None else f"was {current!r}"
        notes.append(f"{key} = {value:g} (as you asked; {was})")
    return out, notes


# "not on the gpu", "without a gpu", "don't force it": the phrase is said, and its value is not wanted.
_NEGATED = re.compile(r"\b(?:no|not|without|never|don'?t|do not|rather than|instead of)\W+(?:\w+\W+){0,2}$")


def stated_values(values: Mapping[str, Mapping[str, Any]], text: str) -> dict[str, Any]:
    """Each argument whose declared phrases in ``text`` (not negated) all give one value ("hard" → mode stop)."""
    lowered = text.lower()
    found: dict[str, Any] = {}
    for key, said in values.items():
        given = []
        for phrase, value in said.items():
            for match in re.finditer(rf"(?<![\w-]){re.escape(phrase.lower())}(?![\w-])", lowered):
                if not _NEGATED.search(lowered[: match.start()]):
                    given.append(value)
        if given and all(v == given[0] for v in given):  # "hard, no, clean shutdown": no single value
            found[key] = given[0]
    return found


def with_stated_values(
    schema: dict[str, Any],
    aliases: Mapping[str, tuple[str, ...]],
    values: Mapping[str, Mapping[str, Any]],
    args: dict[str, Any],
    text: str,
) -> tuple[dict[str, Any], list[str]]:
    """``args`` with the values the user's words give, over the model's (as a stated amount is kept).

    An argument the user stated an amount for ("with 0 gpus on the gpu node") keeps that amount.
    """
    props = schema.get("properties", {})
    out, notes = dict(args), []
    amounts = stated_amounts(schema, aliases, text)
    for key, value in stated_values(values, text).items():
        current = out.get(key, props.get(key, {}).get("default"))
        if current == value or key in amounts:
            continue
        out[key] = value
        was = "left out" if key not in args else f"was {current!r}"
        notes.append(f"{key} = {value!r} (as you asked; {was})")
    return out, notes


def gives_arguments(schema: dict[str, Any], aliases: Mapping[str, tuple[str, ...]],
                    values: Mapping[str, Mapping[str, Any]], text: str) -> bool:  # fmt: skip
    """Whether ``text`` gives a change its arguments: an amount, a declared value, or a name ("called x")."""
    names = "name" in schema.get("properties", {}) and bool(NEW_NAME.search(text))
    return names or bool(stated_amounts(schema, aliases, text)) or bool(stated_values(values, text))
