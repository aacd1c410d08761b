"""Word documents (.docx) as Markdown-like text, read with the standard library.

A .docx is a zip of XML (Office Open XML). Its structure is explicit: paragraphs carry a style, and the
styles part says which styles are headings (built-in "heading 1".. names, "Title", or an outline level,
whatever language Word's menus were in). The Title paragraph becomes the ``#`` line and headings ``##``
and deeper, list paragraphs ``-`` items, tables pipe rows under their first row; without a Title paragraph,
the file's properties give the title. Comments, tracked deletions,
headers and footers are not body text and are left out.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from xml.etree import ElementTree

from knowledge.formats.tables import cell_text, pipe_table

__all__ = ["NotADocx", "docx_to_markdown"]

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"


class NotADocx(ValueError):
    """The bytes are not a Word document that can be read (the message says why)."""


def _heading_levels(styles_xml: bytes | None) -> dict[str, int]:
    """Paragraph style id -> heading level (0 for the document title)."""
    if not styles_xml:
        return {}
    levels: dict[str, int] = {}
    for style in ElementTree.fromstring(styles_xml).iter(f"{_W}style"):
        sid = style.get(f"{_W}styleId") or ""
        name_el = style.find(f"{_W}name")
        name = (name_el.get(f"{_W}val") if name_el is not None else "") or ""
        outline = style.find(f"{_W}pPr/{_W}outlineLvl")
        if m := re.fullmatch(r"heading (\d)", name.strip().lower()):
            levels[sid] = int(m.group(1))
        elif name.strip().lower() == "title":
            levels[sid] = 0
        elif outline is not None and (value := outline.get(f"{_W}val", "")).isdigit() and int(value) < 9:
            levels[sid] = int(value) + 1
    return levels


def _text(element: ElementTree.Element) -> str:
    """The visible text of a paragraph: runs, tabs and breaks, without deleted (tracked) text."""
    parts: list[str] = []
    for node in element.iter():
        if node.tag == f"{_W}t":
            parts.append(node.text or "")
        elif node.tag == f"{_W}tab":
            parts.append("\t")
        elif node.tag in (f"{_W}br", f"{_W}cr"):
            parts.append("\n")
    return "".join(parts)


def _paragraph(p: ElementTree.Element, levels: dict[str, int]) -> str:
    text = _text(p).strip()
    if not text:
        return ""
    style = p.find(f"{_W}pPr/{_W}pStyle")
    level = levels.get(style.get(f"{_W}val", "") if style is not None else "")
    if level is not None:  # the Title paragraph is "#", "heading 1" is "##": chapters under the document
        return "#" * min(level + 1, 6) + " " + re.sub(r"\s+", " ", text)
    if p.find(f"{_W}pPr/{_W}numPr") is not None:
        depth = p.find(f"{_W}pPr/{_W}numPr/{_W}ilvl")
        indent = "  " * int(depth.get(f"{_W}val", "0") if depth is not None else 0)
        return f"{indent}- {text}"
    # Word text is not Markdown: a paragraph that starts with "#" is no heading.
    return re.sub(r"^#", r"\\#", text)


def _table(tbl: ElementTree.Element) -> str:
    rows = []
    for tr in tbl.findall(f"{_W}tr"):
        cells = [" ".join(_text(p).strip() for p in tc.iter(f"{_W}p")).strip() for tc in tr.findall(f"{_W}tc")]
        rows.append([cell_text(c) for c in cells])
    return "\n".join(pipe_table(rows))


def docx_to_markdown(data: bytes) -> tuple[str, str]:
    """``(text, title)`` of the Word document ``data``; raises :class:`NotADocx` if it cannot be read."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" not in names:
                raise NotADocx("it is a zip without word/document.xml (not a Word document)")
            document = ElementTree.fromstring(archive.read("word/document.xml"))
            styles = archive.read("word/styles.xml") if "word/styles.xml" in names else None
            core = archive.read("docProps/core.xml") if "docProps/core.xml" in names else None
            levels = _heading_levels(styles)
    except zipfile.BadZipFile as exc:
        raise NotADocx("it is not a zip archive (a .docx is one; an old binary .doc is not read)") from exc
    except ElementTree.ParseError as exc:
        raise NotADocx(f"its XML is broken ({exc})") from exc
    # A damaged or exotic archive: zipfile raises these for bad offsets, bad CRCs, encryption, unknown compression.
    except (OSError, EOFError, KeyError, ValueError, RuntimeError, NotImplementedError, zlib.error) as exc:
        raise NotADocx(f"its archive cannot be read ({type(exc).__name__}: {exc})") from exc
    # The title the reader sees (a Title paragraph) wins over the file's properties, which templates leave stale.
    title = ""
    if core:
        found = ElementTree.fromstring(core).find(_DC_TITLE)
        title = (found.text or "").strip() if found is not None else ""
    body = document.find(f"{_W}body")
    blocks: list[str] = []
    for child in list(body) if body is not None else []:
        if child.tag == f"{_W}p":
            blocks.append(_paragraph(child, levels))
        elif child.tag == f"{_W}tbl":
            blocks.append(_table(child))
        elif child.tag == f"{_W}sdt" and not _is_toc(child):  # a content control: its paragraphs are text
            blocks += [_paragraph(p, levels) for p in child.iter(f"{_W}p")]
    # Consecutive list items stay one block; everything else is its own paragraph.
    out: list[str] = []
    previous = ""
    for block in (b for b in blocks if b):
        if out:
            out.append("\n" if _is_item(block) and _is_item(previous) else "\n\n")
        out.append(block)
        previous = block
    text = "".join(out)
    visible = re.search(r"^# (.+)$", text, re.M)
    if visible:
        title = visible.group(1)
    elif title:
        text = f"# {title}\n\n{text}"
    return text, title


def _is_item(block: str) -> bool:
    return block.lstrip().startswith("- ")


def _is_toc(sdt: ElementTree.Element) -> bool:
    """Word's generated table of contents (page numbers of the headings, which are indexed anyway)."""
    gallery = sdt.find(f"{_W}sdtPr/{_W}docPartObj/{_W}docPartGallery")
    return gallery is not None and "contents" in (gallery.get(f"{_W}val") or "").lower()
