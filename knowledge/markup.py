"""Facts hidden in README markup, turned into text: badges, Mermaid diagrams, and noise taken out.

Real READMEs state whole technology stacks in shields.io badges (``Dashboards-Grafana-F46800``) and
architectures only in Mermaid labels (``DB[(pg-main: PostgreSQL 16)]``). Removing either removes the
fact; indexing them raw buries it in URL and diagram syntax. Emphasis markers and emoji, on the other
hand, carry nothing and would crowd the embedding and the BM25 terms.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

import ftfy

__all__ = ["badges_to_text", "compact_tables", "fix_mojibake", "image_text", "mermaid_to_text", "strip_noise"]

# Badges that say nothing about the project itself (its build state, licence, downloads, package version).
_DECORATION = re.compile(
    r"\b(build|ci|tests?|passing|failing|coverage|codecov|coveralls|licen[sc]e|downloads?|pypi|version|"
    r"release|pre-commit|code style|black|ruff|stars|forks|issues|pull requests|contributors|last commit|"
    r"status|docs|documentation|twitter|follow|sponsor|donate|binder|colab|open in|"
    r"conda|wheel|implementation|pyversions|python versions?|ossf|openssf|scorecard|mypy|checked|"
    r"monthly|weekly|commit activity|deepwiki|maintained|linting|security)\b",
    re.I,
)
_MD_BADGE = re.compile(
    r"\[!\[(?P<alt>[^\]]*)\]\((?P<img>[^)\s]*)[^)]*\)\]\([^)]*\)|!\[(?P<alt2>[^\]]*)\]\((?P<img2>[^)\s]*)[^)]*\)"
)
_HTML_IMG = re.compile(r"<a\b[^>]*>\s*(<img\b[^>]*>)\s*</a>|(<img\b[^>]*>)", re.I)
_ATTR = re.compile(r"""(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_RST_IMAGE = re.compile(
    r"^\.\. (?:\|(?P<name>[^|]+)\| )?image::\s*(?P<img>\S+)[ \t]*\n(?P<opts>(?:[ \t]+:\w+:.*\n?)*)", re.M
)
_BADGE_HOSTS = ("shields.io", "badge", "badgen.net", "codecov.io", "travis-ci", "github.com/", "readthedocs",
                "circleci", "coveralls", "pepy.tech", "anaconda.org", "deepwiki", "colab", "mybinder")  # fmt: skip


# Mac Roman's characters for the bytes 0x80-0xBF: what is left of an emoji whose lead byte was lost
# (a handshake emoji without its 0xF0, which Mac Roman shows as the Apple logo, often dropped on the way).
_MAC_TAIL = re.escape(bytes(range(0x80, 0xC0)).decode("mac_roman"))
_ORPHAN_TAIL = re.compile(rf"(?<!\S)[{_MAC_TAIL}]{{2,3}}(?=\s)")
# Mac Roman's characters for the lead bytes of 3- and 4-byte UTF-8 (0xE0-0xF4).
_MAC_LEAD = re.escape(bytes(range(0xE0, 0xF5)).decode("mac_roman"))
_MAC_SEQ = re.compile(rf"[{_MAC_LEAD}][{_MAC_TAIL}]{{2,3}}")


def _mac_roman(m: re.Match[str]) -> str:
    """A short Mac Roman misreading ftfy leaves alone (a lone check mark): repaired if it decodes to a symbol."""
    try:
        char = m.group(0).encode("mac_roman").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return m.group(0)
    return char if all(ord(c) >= 0x2000 for c in char) else m.group(0)


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 decoded as cp1252, Latin-1 or Mac Roman (also mixed in one file), keeping curly quotes."""
    fixed = ftfy.fix_text(text, uncurl_quotes=False, fix_latin_ligatures=False, fix_character_width=False)
    return _ORPHAN_TAIL.sub("", _MAC_SEQ.sub(_mac_roman, fixed))


def _shields_fact(url: str) -> str | None:
    """``Label: Message`` of a static shields.io badge (``/badge/<label>-<message>-<color>``)."""
    m = re.search(r"shields\.io/badge/([^?#]+)", url)
    if not m:
        return None
    path = re.sub(r"\.(svg|png)$", "", m.group(1))
    # Shields' escapes: "--" is a dash and "__" an underscore inside a part, "_" a space.
    parts = [p.replace("\x00", "-").replace("\x01", "_").replace("_", " ") for p in
             path.replace("--", "\x00").replace("__", "\x01").split("-")]  # fmt: skip
    parts = [unquote(p).strip() for p in parts]
    if len(parts) >= 3:
        parts = parts[:-1]  # the last part is the colour
    parts = [p for p in parts if p]
    return ": ".join(parts) if parts else None


def _badge_text(alt: str, img: str) -> str:
    """What a badge says, or "" for decoration; images that are not badges are described by their alt text."""
    alt = unquote(alt).strip()
    fact = _shields_fact(img)
    if fact is None and not any(host in img for host in _BADGE_HOSTS):
        return alt  # a screenshot or logo: its alt text is all it says
    if fact:
        # A static badge is judged by its label ("license: MIT" is decoration, "PostgreSQL: 16.2" a fact);
        # its alt text is often generic ("Postgres Version") and only added when it names something else.
        label = fact.split(":", 1)[0]
        if (_DECORATION.search(label) and ":" in fact) or _DECORATION.fullmatch(fact):
            return ""
        if alt and not _DECORATION.search(alt) and alt.lower() not in fact.lower():
            return f"{fact} ({alt})"
        return fact
    # A dynamic badge (build state, downloads, version) shows a number that changes: only its alt text is kept.
    return "" if not alt or _DECORATION.search(alt) else alt


def image_text(alt: str, src: str) -> str:
    """What an image says in text: a badge's fact (a sentence, for static badges), alt text, or "" (decoration)."""
    said = _badge_text(alt, src)
    return f"{said}." if said and _shields_fact(src) else said


def badges_to_text(text: str) -> str:
    """Badges (Markdown, HTML ``<img>``, reStructuredText ``image::``) replaced by the fact they show."""

    def markdown(m: re.Match[str]) -> str:
        alt, img = (
            (m.group("alt"), m.group("img")) if m.group("img") is not None else (m.group("alt2"), m.group("img2"))
        )
        return image_text(alt or "", img or "")

    def html_img(m: re.Match[str]) -> str:
        tag = m.group(1) or m.group(2)
        attrs = {k.lower(): a or b for k, a, b in _ATTR.findall(tag)}
        return image_text(attrs.get("alt", ""), attrs.get("src", ""))

    substitutions: dict[str, str] = {}

    def rst(m: re.Match[str]) -> str:
        opts = dict(re.findall(r":(\w+):\s*(.*)", m.group("opts")))
        said = _badge_text(opts.get("alt", ""), m.group("img"))
        if m.group("name"):  # ``.. |name| image::`` is placed where ``|name|`` is written
            substitutions[m.group("name")] = f"{said}." if said else ""
            return ""
        return f"{said}.\n" if said else ""

    text = _RST_IMAGE.sub(rst, text)
    for name, said in substitutions.items():
        text = text.replace(f"|{name}|_", said).replace(f"|{name}|", said)
    text = _MD_BADGE.sub(markdown, text)
    text = _HTML_IMG.sub(html_img, text)
    # A row of badges leaves a line of separators behind.
    # (Not a table's "|---|" row: only pipes and bullets with nothing between them.)
    return re.sub(r"^[ \t]*(?:[|·•][ \t]*)+$", "", text, flags=re.M)


# Node shapes of flowcharts, longest delimiters first: A[(db)], A((circle)), A([stadium]), A[[sub]], A{x}, A>flag].
_NODE = re.compile(
    r"\b[\w.-]+\s*(?:\[\(\s*(?P<a>.+?)\s*\)\]|\(\(\s*(?P<b>.+?)\s*\)\)|\(\[\s*(?P<c>.+?)\s*\]\)|"
    r"\[\[\s*(?P<d>.+?)\s*\]\]|\{\{\s*(?P<e>.+?)\s*\}\}|\[/\s*(?P<f>.+?)\s*/\]|\[\s*(?P<g>[^\]]+?)\s*\]|"
    r"\(\s*(?P<h>[^)]+?)\s*\)|\{\s*(?P<i>[^}]+?)\s*\}|>\s*(?P<j>[^\]]+?)\s*\])"
)
_EDGE_LABEL = re.compile(r"\|\s*(?P<a>[^|]+?)\s*\||--\s+(?P<b>[^->|]+?)\s+-->|==\s+(?P<c>[^=>|]+?)\s+==>")
_OTHER_TEXT = re.compile(
    r"^\s*(?:title|section|participant|actor|note\s+\w+(?:\s+of)?\s+[\w,]+\s*:|class\s+\w+|state)\s*(?P<t>.+)$",
    re.I,
)
_MESSAGE = re.compile(r"^\s*[\w ]+?\s*-[->x)]+[+-]?\s*[\w ]+?\s*:\s*(?P<t>.+)$")


def _diagram_text(body: str) -> str:
    """The words of a Mermaid diagram: node and edge labels, titles, notes and messages, in order."""
    labels: list[str] = []
    for line in body.splitlines():
        line = line.split("%%", 1)[0]
        found = [next(v for v in m.groupdict().values() if v) for m in _NODE.finditer(line)]
        found += [next(v for v in m.groupdict().values() if v) for m in _EDGE_LABEL.finditer(line)]
        if not found:
            m = _OTHER_TEXT.match(line) or _MESSAGE.match(line)
            if m:
                found = [m.group("t")]
        for label in found:
            label = re.sub(r"<br\s*/?>", " ", label.strip().strip("\"'`")).strip()
            if label and label not in labels:
                labels.append(label)
    return "; ".join(labels)


def mermaid_to_text(text: str) -> str:
    """Mermaid fences replaced by one line of their labels, so the diagram's facts are searchable words."""

    def repl(m: re.Match[str]) -> str:
        words = _diagram_text(m.group("body"))
        return f"Diagram: {words}." if words else ""

    return re.sub(r"^[ \t]*(?:```|~~~)\s*mermaid[^\n]*\n(?P<body>.*?)^[ \t]*(?:```|~~~)[ \t]*$", repl, text,
                  flags=re.M | re.S)  # fmt: skip


_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0000fe0f\U0000200d\U00002b00-\U00002bff\U0001f1e6-\U0001f1ff"
    "\U0000231a-\U000023ff\U000025a0-\U000025ff]"
)


def _outside_code(text: str, fix: Callable[[str], str]) -> str:
    out: list[str] = []
    fence = False
    for line in text.split("\n"):
        marker = line.lstrip().startswith(("```", "~~~"))
        if marker:
            fence = not fence
        out.append(line if fence or marker else fix(line))
    return "\n".join(out)


def _compact_row(line: str) -> str:
    if not line.lstrip().startswith("|"):
        return line
    # Padding and long separator rows are tokens without words: a row keeps its cells, "|---|" its shape.
    line = re.sub(r"[ \t]+", " ", line.strip())
    if set(line) <= set("|-: "):
        line = "|" + "|".join("---" for _ in line.strip("|").split("|")) + "|"
    return line


def compact_tables(text: str) -> str:
    """Table rows without padding (``|  a   |`` → ``| a |``) and separator rows as ``|---|---|``."""
    return _outside_code(text, _compact_row)


def _plain(line: str) -> str:
    line = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", line)
    line = re.sub(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])", r"\1", line)
    line = _EMOJI.sub("", line)
    return _compact_row(line) if line.lstrip().startswith("|") else re.sub(r"(?<=\S)[ \t]{2,}(?=\S)", " ", line)


def strip_noise(text: str) -> str:
    """Emphasis markers and emoji out, words kept (``✅ **Deployed**`` → ``Deployed``); code is left alone.

    For what is indexed (embedding and BM25): the text shown to people and the model keeps its emphasis,
    which tells a small model what matters in a passage.
    """
    return _outside_code(text, _plain)
