"""reStructuredText as Markdown-like text: titles, directives, literal blocks, tables and roles.

Python projects document themselves in reStructuredText (READMEs on PyPI, Sphinx pages). Left raw, a
search indexes ``.. code-block:: bash`` and ``:ref:`quotas <quota-page>``` as words, and a grid table as
ASCII art in which no row can be found on its own. This converts what carries text (titles; code as
fences; admonitions as "Note: ..."; grid, simple, list and CSV tables as pipe tables; roles and links as
their text) and drops what does not (tables of contents, targets, comments, directive options). A
directive it does not know keeps its content. Images are left to :func:`knowledge.markup.badges_to_text`.
"""

from __future__ import annotations

import csv
import io
import re
import textwrap

from knowledge.formats.tables import cell_text, pipe_table

__all__ = ["rst_to_markdown"]

_ADORNMENT = re.compile(r"([=\-~^\"'`#*+:._])\1{2,}")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\.[ \t]+(?:\|(?P<sub>[^|]+)\|[ \t]+)?(?P<name>[\w:.-]+)::(?P<arg>.*)$")
_EXPLICIT = re.compile(r"^(?P<indent>[ \t]*)\.\.(?:[ \t]+(?P<rest>.*))?$")
_CODE = {"code-block", "code", "sourcecode", "literalinclude", "doctest", "ipython", "jupyter-execute"}
_ADMONITIONS = {"note", "warning", "tip", "important", "caution", "attention", "hint", "danger", "error", "seealso",
                "admonition", "versionadded", "versionchanged", "deprecated", "todo"}  # fmt: skip
_DROPPED = {"contents", "toctree", "include", "raw", "index", "highlight", "sectnum", "meta", "autosummary",
            "automodule", "autoclass", "autofunction", "automethod", "autoattribute", "currentmodule", "module",
            "default-role", "role", "tabularcolumns", "only", "ifconfig", "spelling:word-list"}  # fmt: skip
_IMAGES = {"image", "figure"}
_CODE_ROLES = re.compile(r"^(?:\w+:)?(?:func|meth|class|mod|attr|obj|data|exc|const|envvar|file|program|option|"
                         r"command|samp|kbd|code|literal|makevar|mailheader|regexp)$")  # fmt: skip
_ROLE = re.compile(r":(?P<role>[\w:.-]+):`(?P<body>[^`]+)`")
_LINK = re.compile(r"`(?P<text>[^`<]+?)\s*<(?P<target>[^>`]+)>`__?")
_REF = re.compile(r"(?<![`\w])`(?P<text>[^`]+)`__?(?!\w)")
_FIELD = re.compile(r"^(?P<indent>[ \t]*):(?P<name>[^:`]+):(?:[ \t]+(?P<value>.*))?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, base: int) -> int:
    """The end of the indented block that starts at ``start`` (lines indented deeper than ``base``, or blank)."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def _dedent(lines: list[str]) -> list[str]:
    return textwrap.dedent("\n".join(lines)).split("\n") if lines else []


def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive's ``:option: value`` lines and the content after them."""
    options: dict[str, str] = {}
    i = 0
    while i < len(body) and (m := _FIELD.match(body[i])):
        options[m.group("name").strip()] = (m.group("value") or "").strip()
        i += 1
    return options, body[i:]


def _cell(text: str) -> str:
    """A cell's text on one line, its pipes escaped; ``|name|`` substitutions stay whole, to be replaced later."""
    text = re.sub(r"\|(?=[^|\s])([^|]*?[^|\s])\|", "\x02\\1\x02", _inline(re.sub(r"\s+", " ", text).strip()))
    return cell_text(text).replace("\x02", "|")


def _pipe_table(rows: list[list[str]]) -> list[str]:
    lines = pipe_table([[_cell(c) for c in r] for r in rows])
    return ["", *lines, ""] if lines else []


def _grid_table(block: list[str]) -> list[str] | None:
    """``+---+---+`` tables; None if ``block`` is not one."""
    border = block[0].strip()
    if not re.fullmatch(r"\+(?:[-=]+\+)+", border):
        return None
    cuts = [i for i, ch in enumerate(border) if ch == "+"]
    offset = _indent(block[0])
    rows: list[list[str]] = []
    current: list[list[str]] | None = None
    for line in block[1:]:
        body = line.strip()
        if re.fullmatch(r"\+(?:[-=+]+)", body):
            if current is not None:
                rows.append([" ".join(part for part in cell if part) for cell in current])
            current = None
            continue
        if not body.startswith("|"):
            return None
        current = current or [[] for _ in cuts[:-1]]
        text = line[offset:]
        for c in range(len(cuts) - 1):
            current[c].append(text[cuts[c] + 1 : cuts[c + 1]].strip())
    if current is not None:
        rows.append([" ".join(part for part in cell if part) for cell in current])
    return _pipe_table(rows)


def _simple_table(block: list[str]) -> list[str] | None:
    """``=====  =====`` tables; None if ``block`` is not one."""
    border = block[0].rstrip()
    if not re.fullmatch(r"[ \t]*=+(?:[ \t]+=+)+", border):
        return None
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", border)]
    rows: list[list[str]] = []
    for line in block[1:]:
        if re.fullmatch(r"[ \t]*[=-]+(?:[ \t]+[=-]+)*[ \t]*", line):
            continue
        if not line.strip():
            continue
        # The last column runs to the end of the line.
        cells = [line[s:e].strip() for s, e in spans[:-1]] + [line[spans[-1][0] :].strip()]
        if not cells[0] and rows:  # a continuation line of the row above
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    return _pipe_table(rows)


def _list_table(content: list[str]) -> list[str]:
    rows: list[list[str]] = []
    for line in content:
        stripped = line.strip()
        if stripped.startswith("* - "):
            rows.append([stripped[4:]])
        elif stripped.startswith("- ") and rows:
            rows[-1].append(stripped[2:])
        elif stripped and rows and rows[-1]:
            rows[-1][-1] += " " + stripped
    return _pipe_table(rows)


def _csv_table(options: dict[str, str], content: list[str]) -> list[str]:
    text = "\n".join(line.strip() for line in content)
    rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))
    if options.get("header"):
        rows.insert(0, next(csv.reader([options["header"]], skipinitialspace=True)))
    return _pipe_table(rows)


def _directive(name: str, arg: str, body: list[str]) -> list[str]:
    """What a directive with body ``body`` (dedented) becomes."""
    options, content = _options(body)
    while content and not content[0].strip():
        content = content[1:]
    if name in _CODE:
        lang = arg.split()[0] if arg.split() else ""
        return ["", f"```{lang}", *content, "```", ""] if content else []
    # What an admonition or an unknown directive holds is reStructuredText again (a note may hold code).
    if name in _ADMONITIONS:
        label = name.replace("seealso", "see also").replace("version", "version ").capitalize()
        head = f"{label}: {arg.strip()}".strip() if name != "admonition" else f"{arg.strip()}:"
        said = rst_to_markdown("\n".join(content)).split("\n") if content else []
        if not arg.strip() and said and said[0].strip() and not said[0].startswith("```"):
            head, said = f"{head} {said[0].strip()}", said[1:]  # "Note:" and its first line read as one sentence
        return ["", _inline(head), *said, ""]
    caption = [f"{_inline(arg.strip())}:"] if arg.strip() else []
    if name == "list-table":
        return caption + _list_table(content)
    if name == "csv-table":
        return caption + _csv_table(options, content)
    if name in _DROPPED:
        return []
    # An unknown directive (a tab, a container, an extension's own) keeps what it says.
    said = rst_to_markdown("\n".join(content)).split("\n") if content else []
    return ["", *([_inline(arg.strip())] if arg.strip() else []), *said, ""]


def _inline(line: str) -> str:
    def role(m: re.Match[str]) -> str:
        body = m.group("body")
        shown = re.match(r"(.+?)\s*<[^>]+>$", body)
        text = shown.group(1) if shown else body.lstrip("~!")
        if not shown and body.startswith("~"):
            text = text.rsplit(".", 1)[-1]
        return f"`{text}`" if _CODE_ROLES.match(m.group("role")) else text

    line = _ROLE.sub(role, line)
    line = _LINK.sub(lambda m: m.group("text"), line)
    line = re.sub(r"``([^`]+)``", r"`\1`", line)
    return _REF.sub(lambda m: m.group("text"), line)


def rst_to_markdown(text: str) -> str:
    """The reStructuredText ``text`` as Markdown-like text for the chunker."""
    lines = text.split("\n")
    out: list[str] = []
    levels: list[str] = []  # adornments in the order the document uses them
    substitutions: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        stripped = line.strip()
        # A title: text over (and optionally under) a line of one repeated punctuation character.
        underlined = _ADORNMENT.fullmatch(nxt.strip()) and len(nxt.strip()) >= len(stripped)
        if stripped and underlined and _indent(line) == 0 and not _ADORNMENT.fullmatch(stripped):
            overlined = bool(out) and out[-1] == "\x00overline"
            style = nxt.strip()[0] + ("o" if overlined else "")
            if overlined:
                out.pop()
            if style not in levels:
                levels.append(style)
            out += ["", "\x01" + "#" * min(levels.index(style) + 1, 6) + " " + _inline(stripped), ""]
            i += 2
            continue
        if _ADORNMENT.fullmatch(stripped) and nxt.strip() and i + 2 < len(lines) and lines[i + 2].strip() == stripped:
            out.append("\x00overline")  # over-and-under title: the title line comes next
            i += 1
            continue
        if stripped.startswith("+") and (table := _grid_table(lines[i : (end := _table_end(lines, i))])) is not None:
            out += table
            i = end
            continue
        if stripped.startswith("=") and (table := _simple_table(lines[i : (end := _simple_end(lines, i))])) is not None:
            out += table
            i = end
            continue
        directive = _DIRECTIVE.match(line)
        if directive:
            base = len(directive.group("indent"))
            end = _block(lines, i + 1, base)
            name, arg, sub = directive.group("name").lower(), directive.group("arg"), directive.group("sub")
            if name in _IMAGES:
                # badges_to_text reads ``image::`` with its options; a figure's caption is its content.
                options, caption = _options(_dedent(lines[i + 1 : end]))
                out.append(line.replace("figure::", "image::"))
                out += [" " * (base + 3) + f":{k}: {v}" for k, v in options.items()]
                out += ["", *map(_inline, caption)] if any(c.strip() for c in caption) else []
            elif sub and name == "replace":
                substitutions[sub] = arg.strip()
            else:
                out += _directive(name, arg, _dedent(lines[i + 1 : end]))
            i = end
            continue
        explicit = _EXPLICIT.match(line)
        if explicit:
            rest = explicit.group("rest") or ""
            end = _block(lines, i + 1, len(explicit.group("indent")))
            if re.match(r"\[[^\]]+\]", rest):  # a footnote or citation: its text stays
                out += [_inline(rest), *map(_inline, _dedent(lines[i + 1 : end]))]
            # Otherwise a target (".. _name: url") or a comment: nothing to read.
            i = end
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            end = _block(lines, i + 1, _indent(line))
            literal = _dedent(lines[i + 1 : end])
            while literal and not literal[0].strip():
                literal = literal[1:]
            if literal:
                said = stripped[:-2].rstrip()
                if said:
                    out.append(_inline(line.rstrip()[:-2].rstrip() + ("" if said.endswith(":") else ":")))
                out += ["", "```", *literal, "```", ""]
                i = end
                continue
        field = _FIELD.match(line)
        out.append(f"{field.group('indent')}{field.group('name')}: {_inline(field.group('value') or '')}"
                   if field and field.group("name")[0].isalpha() else _inline(line))  # fmt: skip
        i += 1
    # Only titles are headings: a line of prose that starts with "#" is escaped, so the chunker does not take it
    # for one (code is fenced, and fences are left alone by the chunker).
    result = "\n".join(_escape_hash(out))
    for name, value in substitutions.items():
        result = result.replace(f"|{name}|_", value).replace(f"|{name}|", value)
    return result


def _table_end(lines: list[str], start: int) -> int:
    """The first blank line after ``start`` (tables end at one)."""
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    return end


def _simple_end(lines: list[str], start: int) -> int:
    """After a simple table's closing border: the first border line followed by a blank line (or the end)."""
    for j in range(start + 1, len(lines)):
        if re.fullmatch(r"[ \t]*=+(?:[ \t]+=+)*[ \t]*", lines[j]) and (j + 1 == len(lines) or not lines[j + 1].strip()):
            return j + 1
    return len(lines)


def _escape_hash(lines: list[str]) -> list[str]:
    out: list[str] = []
    fence = False
    for line in lines:
        if line == "\x00overline":
            continue
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.lstrip().startswith("#"):
            line = line.replace("#", "\\#", 1)
        out.append(line.replace("\x01", "", 1) if line.startswith("\x01") else line)
    return out
