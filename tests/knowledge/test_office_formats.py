"""PDF and Word documents: read by their structure (bookmarks, heading styles), refused with a reason when damaged."""

from __future__ import annotations

import io
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ContentStream, DictionaryObject, NameObject

from knowledge.chunking import chunk_document
from knowledge.embeddings import OnnxEmbedder
from knowledge.loaders import UnreadableDocument

from .conftest import load_file, sections_of


def _pdf(pages: list[list[str]], outline: list[tuple[str, int, str | None]], title: str | None = None) -> bytes:
    """A PDF of text lines in Helvetica, with bookmarks ``(title, page, parent title)``: built with pypdf."""
    writer = PdfWriter()
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica"),
                             NameObject("/Encoding"): NameObject("/WinAnsiEncoding")})  # fmt: skip
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        shown = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
        stream = ContentStream(None, None)
        stream.set_data(
            "\n".join(["BT /F1 11 Tf 14 TL 72 740 Td", *(f"({s}) Tj T*" for s in shown), "ET"]).encode("cp1252")
        )
        page.replace_contents(stream)
    marks: dict[str, Any] = {}
    for text, page_number, parent in outline:
        marks[text] = writer.add_outline_item(
            title=text, page_number=page_number, parent=marks[parent] if parent else None
        )
    if title:
        writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_pdf_manual_is_read_by_its_bookmarks_without_its_running_headers(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    header = "Storage manual - Research Computing"
    pages = [
        [header, "Contents", "1 Ceph . . . . . . . . . 1", "2 Quotas . . . . . . . . 2", "- i -"],
        [header, "1 Ceph", "The Ceph cluster has three OSD nodes and repli-", "cates every object three times.",
         "1.1 Pools", "The rbd pool holds the VM disks.", "- 1 -"],
        [header, "2 Quotas", "Each research group gets 2 TB on /project.", "# groups over quota are mailed daily",
         "- 2 -"],
    ]  # fmt: skip
    outline = [("1 Ceph", 1, None), ("1.1 Pools", 1, "1 Ceph"), ("2 Quotas", 2, None)]
    doc = load_file(tmp_path, "storage.pdf", _pdf(pages, outline, title="Storage manual"))
    assert doc.title == "Storage manual"
    assert header not in doc.text and "- 2 -" not in doc.text and ". . . ." not in doc.text
    sections = sections_of(doc, embedder)
    assert set(sections) == {"", "1 Ceph", "1 Ceph > 1.1 Pools", "2 Quotas"}
    assert sections[""].strip() == "Contents", "the printed table of contents is left without its entries"
    assert "three OSD nodes and replicates every object" in " ".join(sections["1 Ceph"].split())
    assert "The rbd pool holds the VM disks." in sections["1 Ceph > 1.1 Pools"]
    assert "\\# groups over quota are mailed daily" in sections["2 Quotas"], "text that starts with # is no heading"


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [("scan.pdf", "blank", "no text layer"), ("locked.pdf", "encrypted", "encrypted; save an unprotected copy"),
     ("cut.pdf", "truncated", "storage.pdf|cut.pdf"), ("old.docx", b"\xd0\xcf\x11\xe0 an OLE .doc", "not a zip"),
     ("zip.docx", "zip", "without word/document.xml")],
)  # fmt: skip
def test_pdf_and_word_files_that_cannot_be_read_say_why(tmp_path: Path, name: str, content: object, says: str) -> None:
    if content == "blank":
        writer = PdfWriter()
        writer.add_blank_page(612, 792)
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    elif content == "encrypted":
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf([["Secret text"]], []))))
        writer.encrypt("owner-and-user-password")
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    elif content == "truncated":
        data = _pdf([["Some text"]], [])[:200]
    elif content == "zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("readme.txt", "not a Word document")
        data = out.getvalue()
    else:
        assert isinstance(content, bytes)
        data = content
    with pytest.raises(UnreadableDocument, match=rf"{re.escape(name)} is not a (PDF|Word document) LabOps can read"):
        load_file(tmp_path, name, data)
    with pytest.raises(UnreadableDocument, match=says):
        load_file(tmp_path, name, data)


_WORD = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _docx(body: str, *, title: str = "") -> bytes:
    """A Word document whose styles call "Heading1"/"Kop2" headings (Word names built-in styles in English)."""
    styles = (f'<w:styles {_WORD}>'
              '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style>'
              '<w:style w:type="paragraph" w:styleId="Kop2"><w:name w:val="heading 2"/></w:style>'
              '<w:style w:type="paragraph" w:styleId="Titel"><w:name w:val="Title"/></w:style></w:styles>')  # fmt: skip
    core = ('<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
            f' xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title>'
            "</cp:coreProperties>")  # fmt: skip
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", f"<w:document {_WORD}><w:body>{body}</w:body></w:document>")
        archive.writestr("word/styles.xml", styles)
        archive.writestr("docProps/core.xml", core)
    return out.getvalue()


def _p(text: str, style: str = "", *, item: int | None = None) -> str:
    props = f'<w:pStyle w:val="{style}"/>' if style else ""
    props += f'<w:numPr><w:ilvl w:val="{item}"/><w:numId w:val="1"/></w:numPr>' if item is not None else ""
    runs = "".join(f'<w:r><w:t xml:space="preserve">{part}</w:t></w:r>' for part in text.split("|"))
    return f"<w:p><w:pPr>{props}</w:pPr>{runs}</w:p>"


def test_a_word_document_keeps_its_headings_lists_and_tables(tmp_path: Path, embedder: OnnxEmbedder) -> None:
    row = "<w:tr>{}</w:tr>"
    cell = "<w:tc><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:tc>"
    cells = [("VM", "Owner"), ("vm-desi-01", "survey team"), ("vm-ray-02", "ml group")]
    table = "<w:tbl>" + "".join(row.format("".join(cell.format(c) for c in r)) for r in cells) + "</w:tbl>"
    toc = ('<w:sdt><w:sdtPr><w:docPartObj><w:docPartGallery w:val="Table of Contents"/></w:docPartObj></w:sdtPr>'
           f"<w:sdtContent>{_p('Onboarding 1')}</w:sdtContent></w:sdt>")  # fmt: skip
    body = (_p("New member checklist", "Titel") + toc + _p("Onboarding", "Heading1")
            + _p("Ask for an account |on the portal.") + _p("Accounts", "Kop2")
            + _p("Request a VPN profile", item=0) + _p("Install the client", item=1)
            + _p("# 1 rule: never share keys") + table)  # fmt: skip
    # The Title paragraph names the document; the file's properties (a template's stale title here) do not.
    doc = load_file(tmp_path, "onboarding.docx", _docx(body, title="Template v2"))
    assert doc.title == "New member checklist" and "Onboarding 1" not in doc.text, "the table of contents is left out"
    sections = sections_of(doc, embedder)
    assert set(sections) == {"Onboarding", "Onboarding > Accounts"}
    assert "Ask for an account on the portal." in sections["Onboarding"]
    accounts = sections["Onboarding > Accounts"]
    assert "- Request a VPN profile\n  - Install the client" in accounts and "\\# 1 rule" in accounts
    rows = [c.text for c in chunk_document(doc, embedder.count_tokens) if c.text.startswith("|")]
    assert "| VM | Owner |\n|---|---|\n| vm-ray-02 | ml group |" in rows
    untitled = load_file(
        tmp_path, "untitled.docx", _docx(_p("Onboarding", "Heading1") + _p("Ask."), title="Onboarding guide")
    )
    assert untitled.title == "Onboarding guide" and set(sections_of(untitled, embedder)) == {"Onboarding"}


@pytest.mark.parametrize("name", ["manual.pdf", "guide.docx"])
def test_damaged_pdf_and_word_files_are_refused_never_crash(tmp_path: Path, name: str) -> None:
    # Files arrive truncated by a failed copy or with flipped bytes: each is read or refused with its reason.
    if name.endswith(".pdf"):
        good = _pdf([["Backups run nightly at 01:00."], ["Verify jobs run at 11:00."]], [("Backups", 0, None)], "B")
    else:
        good = _docx(_p("Backups", "Heading1") + _p("Backups run nightly at 01:00."), title="B")
    # 600 variants: fewer missed the pypdf and zipfile errors a 1,500-variant run found escaping.
    rng = random.Random(1)
    damaged = [good[:cut] for cut in range(0, len(good), max(1, len(good) // 25))]
    for _ in range(600):
        flipped = bytearray(good)
        for _ in range(rng.randint(1, 12)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        damaged.append(bytes(flipped[: rng.randrange(len(flipped))] if rng.random() < 0.3 else flipped))
    outcomes = {"read": 0, "refused": 0}
    for data in damaged:
        try:
            load_file(tmp_path, name, data)
            outcomes["read"] += 1
        except UnreadableDocument as exc:
            assert name in str(exc) and "LabOps can read" in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == len(damaged)
