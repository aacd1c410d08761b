"""A file's bytes as text: Unicode with or without a byte-order mark, Windows code pages, and what is not text at all.

Lab documents come from everywhere: UTF-8 (most), UTF-16 from Windows tools (PowerShell redirects and
Notepad's "Unicode" both write it, with a byte-order mark), and cp1252 from older Windows editors. A file
that is none of these (an image or an archive given a text suffix) is refused with the reason, instead of
being indexed as noise. Mojibake (UTF-8 that was decoded wrongly *before* it was saved) is a different
problem, repaired later by :func:`knowledge.markup.fix_mojibake`.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["NotText", "decode"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its mark starts with UTF-16 LE's
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# C0 controls other than tab, newline, form feed and carriage return: text has almost none.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_DECLARED = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)|<\?xml[^>]+encoding\s*=\s*["']([\w-]+)""", re.I)


class NotText(ValueError):
    """The bytes are not a text document (the message says why)."""


def _utf16_without_mark(data: bytes) -> str | None:
    """``utf-16-le``/``-be`` when every other byte of mostly-ASCII text is zero, else None."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.8 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.8 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _declared(data: bytes) -> str | None:
    """The encoding an HTML ``<meta charset>`` or an XML declaration names, if Python knows it."""
    m = _DECLARED.search(data[:2048])
    if not m:
        return None
    try:
        return codecs.lookup((m.group(1) or m.group(2)).decode("ascii")).name
    except LookupError:
        return None


def decode(data: bytes) -> str:
    """``data`` as text; raises :class:`NotText` for binary data.

    Order: a byte-order mark; UTF-16 without one; strict UTF-8; the encoding an HTML/XML file declares;
    cp1252 (what Windows editors wrote for Western text; its five undefined bytes read as Latin-1).
    """
    for mark, encoding in _BOMS:
        if data.startswith(mark):
            return data[len(mark) :].decode(encoding, errors="replace")
    wide = _utf16_without_mark(data)
    if wide:
        return data.decode(wide, errors="replace")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        declared = _declared(data)
        text = data.decode(declared, errors="replace") if declared else _cp1252(data)
    _check_text(text)
    return text


def _cp1252(data: bytes) -> str:
    # cp1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined; Latin-1 maps them to the C1 controls they were.
    return "".join(
        chunk.decode("cp1252") if i % 2 == 0 else chunk.decode("latin-1")
        for i, chunk in enumerate(re.split(rb"([\x81\x8d\x8f\x90\x9d]+)", data))
    )


def _check_text(text: str) -> None:
    sample = text[:8192]
    if "\x00" in sample:
        raise NotText("it contains NUL bytes (a binary file, or text in an encoding other than UTF-8/16/32)")
    controls = len(_CONTROL.findall(sample))
    if sample and controls > 0.05 * len(sample):
        raise NotText(f"{controls} of its first {len(sample)} characters are control characters (a binary file)")
