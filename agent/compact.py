"""Tool data as the model reads it: rows as a table, each key once, within a character budget.

JSON repeats every key in every row, and the small model reads ~100 prompt tokens a second on the lab's
CPU-only fallback: a 13-VM list cut at 700 characters of JSON showed it four VMs. The same budget as a
table header plus one line per row shows every VM, so the answer can name any of them from data instead
of guessing. A column with one value in every row is said once above the table, and an epoch number whose
ISO twin is in the row (``last_backup`` beside ``last_backup_iso``) is left out: the model copies raw
epoch numbers into answers, which people cannot read.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["compact_data"]

_SEP = " | "


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


def _is_table(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 1 and all(isinstance(v, dict) for v in value)


def _table(rows: list[dict[str, Any]], budget: int) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    keys = [k for k in keys if k not in _twins(keys)]
    cells = [{k: _cell(row.get(k)) for k in keys} for row in rows]
    same = [k for k in keys if len({c[k] for c in cells}) == 1]
    columns = [k for k in keys if k not in same] or keys[:1]
    lines = []
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


def compact_data(data: Any, budget: int) -> str:
    """``data`` in at most about ``budget`` characters: tables for lists of records, ``key: value`` otherwise.

    Rows past the budget are dropped whole and counted ("…and 3 more rows, not shown"), never cut mid-value.
    """
    if _is_table(data):
        return _table(data, budget)
    if isinstance(data, dict):
        twins = _twins(list(data))
        scalars = {k: v for k, v in data.items() if k not in twins and not _is_table(v)}
        lines = ["; ".join(f"{k}: {_cell(v)}" for k, v in scalars.items())] if scalars else []
        used = sum(len(line) for line in lines)
        for key, value in data.items():
            if _is_table(value):
                lines.append(f"{key}:\n{_table(value, max(200, budget - used))}")
                used += len(lines[-1])
        text = "\n".join(lines)
    elif isinstance(data, list):
        text = ", ".join(_cell(v) for v in data)
    else:
        text = json.dumps(data, default=str, ensure_ascii=False)
    cut = "…(cut)"
    return text if len(text) <= budget else text[: budget - len(cut)] + cut
