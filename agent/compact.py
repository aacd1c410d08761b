"""Tool data as the model reads it: rows as a table, each key once, within a character budget.

JSON repeats every key in every row, and the small model reads ~100 prompt tokens a second on the lab's
CPU-only fallback: a 13-VM list cut at 700 characters of JSON showed it four VMs. The same budget as a
table header plus one line per row shows every VM, so the answer can name any of them from data instead
of guessing. A column with one value in every row is said once above the table, and an epoch number whose
ISO twin is in the row (``last_backup`` beside ``last_backup_iso``) is left out: the model copies raw
epoch numbers into answers, which people cannot read.

What the question is about comes first. Reading the result is most of a read-tool turn (the model server
evaluates about 50-100 prompt tokens a second on two cores), so rows the question names by an identity
field (``vmid``, ``name``, ``node``: whatever the tools' name lookups read) are the only rows shown when it
names some, with a count of the rest; a question that says "not", "other" or "except" sees every row. A
nested record repeating its parent's values (``config.name`` beside ``name``) and checksums (a ``digest``
of 32+ hex digits) say nothing a person asks about and are left out; of the rest of a nested record, a
question sees the settings it shares a word with. Of a table, it sees the identity columns and those it
names or holds a value of ("most free memory": ``memory_*``; "offline": ``status``), the others named in a
line; a question naming no column sees them all. A long value the tool's message already says word for
word (``backup.check`` lists each finding's detail) is not said twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from agent.mentions import mentions

__all__ = ["asked_fields", "compact_data", "named_records", "named_rows"]

_SEP = " | "
_CHECKSUM = re.compile(r"^[0-9a-f]{32,}$", re.I)
# Words of asking, not of what is asked about: they pick no setting of a nested record.
_ASKING = {"what", "which", "does", "show", "have", "has", "with", "about", "tell", "much", "many", "there", "this",
           "that", "from", "into", "give", "list", "the", "and", "for", "are", "how", "its", "you", "can", "please",
           "pls", "me", "is", "vm", "vms"}  # fmt: skip
# A question that sets rows apart from the ones it names needs the others too.
_EXCEPT = re.compile(r"\b(?:not|no|none|other|others|else|except|besides|without|apart|rest|all|every)\b|n't\b", re.I)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value) if value else "-"
    if isinstance(value, dict):
        return "; ".join(f"{k}={_cell(v)}" for k, v in value.items()) if value else "-"
    return " ".join(str(value).split()).replace("|", "/")


def _twins(keys: list[str]) -> set[str]:
    """Keys whose value is repeated by an ``*_iso`` key: ``x`` or ``x_time`` beside ``x_iso``."""
    isos = {k[: -len("_iso")] for k in keys if k.endswith("_iso")}
    return {k for k in keys if k in isos or (k.endswith("_time") and k[: -len("_time")] in isos)}


def _repeats(cell: str, said: str) -> bool:
    """Whether a long cell is word for word in the tool's message (its summary lists each finding's detail)."""
    return len(cell) >= 16 and cell in said


def _is_table(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 1 and all(isinstance(v, dict) for v in value)


def _said(value: Any, lowered: str) -> bool:
    """Whether the question holds ``value`` as a whole word (``agn-fit``, ``node03``, ``132``)."""
    if isinstance(value, bool) or value is None:
        return False
    text = str(value).lower()
    if len(text) < 3 and not isinstance(value, int):
        return False
    return mentions(lowered, text)


def named_rows(rows: list[dict[str, Any]], question: str, keys: Collection[str]) -> tuple[list[dict[str, Any]], int]:
    """The rows ``question`` names by one of the identity fields ``keys``, and how many others were left out.

    Every row (and 0) when it names none or all of them, or sets the named ones apart ("other than node03").
    """
    lowered = question.lower()
    if not question or not keys or _EXCEPT.search(lowered):
        return rows, 0
    named = [r for r in rows if any(_said(r.get(k), lowered) for k in keys if k in r)]
    if not named or len(named) == len(rows):
        return rows, 0
    return named, len(rows) - len(named)


def _fits(word: str, column: str) -> bool:
    """Whether a question's word names a column: ``memory_free_gib``, ``node`` (for "nodes"), ``gpus`` ("gpu")."""
    return any(
        part == word
        or (len(part) >= 3 and word.startswith(part))
        or (part.startswith(word) and len(part) == len(word) + 1)
        for part in column.lower().split("_")
    )


def _asked_columns(keys: list[str], cells: list[dict[str, str]], question: str, ids: Collection[str]) -> list[str]:
    """The columns a question asks about (by name, or by a value in them), with the identity columns.

    Every column when it asks about none ("tell me about the nodes" wants the whole table), or when no column
    identifies the rows (a DESI query's rows: "dec" alone would leave the targets unnamed).
    """
    words = _words(question)
    if not words or not set(keys) & set(ids):
        return keys
    asked = [
        k
        for k in keys
        if any(_fits(w, k) for w in words)
        or any(w in re.findall(r"[a-z]+", c[k].lower()) for c in cells for w in words)
    ]
    if not [k for k in asked if k not in ids]:
        return keys
    return [k for k in keys if k in ids or k in asked]


def _table(
    rows: list[dict[str, Any]], budget: int, question: str = "", ids: Collection[str] = (), said: str = ""
) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    keys = [k for k in keys if k not in _twins(keys)]
    cells = [{k: _cell(row.get(k)) for k in keys} for row in rows]
    repeated = [k for k in keys if all(c[k] == "-" or _repeats(c[k], said) for c in cells)]
    repeated = [k for k in repeated if any(c[k] != "-" for c in cells)]
    keys = [k for k in keys if k not in repeated]
    asked = _asked_columns(keys, cells, question, ids)
    others = [k for k in keys if k not in asked]
    keys = asked
    same = [k for k in keys if len({c[k] for c in cells}) == 1]
    columns = [k for k in keys if k not in same] or keys[:1]
    lines = [f"columns the question does not ask about, not shown: {', '.join(others)}"] if others else []
    if repeated:
        lines.append(f"columns the message above says row by row, not repeated: {', '.join(repeated)}")
    if same:
        lines.append("every row: " + "; ".join(f"{k}={cells[0][k]}" for k in same if k not in columns))
    lines.append(_SEP.join(columns))
    used = sum(len(line) + 1 for line in lines)
    for i, c in enumerate(cells):
        line = _SEP.join(c[k] for k in columns)
        if used + len(line) > budget and i > 0:
            lines.append(f"…and {len(cells) - i} more rows, not shown")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def _rows(rows: list[dict[str, Any]], budget: int, question: str, keys: Collection[str], said: str) -> str:
    shown, left = named_rows(rows, question, keys)
    text = _table(shown, budget, question, keys, said) if len(shown) > 1 else _record(shown[0], question, said)
    return text + (f"\n({left} other rows, not named in the question, left out)" if left else "")


def _words(question: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{3,}", question.lower()) if w not in _ASKING}


def _plain(value: Any, parent: dict[str, Any], question: str) -> Any:
    """A nested record without what its parent says already, or checksums; with a question, what it asks about.

    A VM's raw configuration is most of its record (MAC addresses, boot order, controller types): "what storage
    is its disk on?" shares a word with ``scsi0`` (``...vm-120-disk-0``) and sees it; "show me VM 120" sees
    how many settings there are.
    """
    if not isinstance(value, dict):
        return value
    said = {_cell(v) for v in parent.values() if not isinstance(v, dict | list)}
    kept = {k: v for k, v in value.items() if _cell(v) not in said and not (isinstance(v, str) and _CHECKSUM.match(v))}
    if not question or not kept:
        return kept
    words = _words(question)
    asked = {k: v for k, v in kept.items() if any(w in f"{k} {_cell(v)}".lower() for w in words)}
    return asked or f"{len(kept)} settings, not shown (ask about one)"


def _record(data: dict[str, Any], question: str = "", said: str = "") -> str:
    twins = _twins(list(data))
    return "; ".join(
        f"{k}: {_cell(_plain(v, data, question))}"
        for k, v in data.items()
        if k not in twins and not (isinstance(v, str) and (_CHECKSUM.match(v) or _repeats(_cell(v), said)))
    )


def compact_data(data: Any, budget: int, *, question: str = "", keys: Collection[str] = (), said: str = "") -> str:
    """``data`` in at most about ``budget`` characters: tables for lists of records, ``key: value`` otherwise.

    Rows past the budget are dropped whole and counted ("…and 3 more rows, not shown"), never cut mid-value.
    With a ``question`` and identity fields ``keys``, a list shows only the rows the question names
    (:func:`named_rows`). Long values the tool's message ``said`` word for word are not repeated.
    """
    if _is_table(data):
        return _rows(data, budget, question, keys, said)
    if isinstance(data, dict):
        scalars = {k: v for k, v in data.items() if not _is_table(v)}
        lines = [_record(scalars, question, said)] if scalars else []
        used = sum(len(line) for line in lines)
        for key, value in data.items():
            if _is_table(value):
                lines.append(f"{key}:\n{_rows(value, max(200, budget - used), question, keys, said)}")
                used += len(lines[-1])
        text = "\n".join(lines)
    elif isinstance(data, list):
        text = ", ".join(_cell(v) for v in data)
    else:
        text = json.dumps(data, default=str, ensure_ascii=False)
    cut = "…(cut)"
    return text if len(text) <= budget else text[: budget - len(cut)] + cut


def named_records(data: Any, question: str, keys: Collection[str], *, limit: int = 5) -> list[str]:
    """The records of ``data`` that ``question`` names, one ``key: value; ...`` line each (at most ``limit``).

    None when it names no row of a list (or all of them): the tool's own summary speaks for the whole list.
    """
    tables = [data] if _is_table(data) else [v for v in data.values() if _is_table(v)] if isinstance(data, dict) else []
    lines: list[str] = []
    for rows in tables:
        shown, left = named_rows(rows, question, keys)
        if left:
            lines += [_record(r) for r in shown]
    return lines[:limit]


def asked_fields(data: Any, question: str, said: str) -> list[str]:
    """The fields of one record that ``question`` asks about by name and the tool's message ``said`` leaves out.

    "How big is the disk on qso-vae-dev?": ``vm.show``'s one line names cores and memory, its record holds
    ``disk_gib: 120``. Nested settings and lists are not shown this way (their record is long; the tool's
    summary speaks for them).
    """
    if not isinstance(data, dict) or _is_table(data):
        return []
    words = _words(question)
    lowered = said.lower()
    return [
        f"{k}: {_cell(v)}"
        for k, v in data.items()
        if not isinstance(v, dict | list)
        and _cell(v)
        and any(_fits(w, k) for w in words)
        and not any(re.search(rf"(?<![\w.]){re.escape(t.lower())}(?![\w.])", lowered) for t in {_cell(v), str(v)})
    ]
