"""Ingestion of messy documents, incremental re-ingest, and the ingest/search commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import knowledge.ingest as ingest_module
import knowledge.store as store_module
from channels.cli.main import cli
from core.config import load_settings
from core.errors import InvalidArguments, KnowledgeError
from knowledge.chunking import chunk_document
from knowledge.embeddings import Encoded, OnnxEmbedder
from knowledge.ingest import ingest_paths
from knowledge.loaders import load_document
from knowledge.retrieve import format_for_model, retrieve
from knowledge.store import Store

MESSY = Path(__file__).parent / "messy"


def test_messy_documents_are_cleaned_and_chunked_by_heading(embedder: OnnxEmbedder) -> None:
    gpu = load_document(MESSY / "gpu.md", root=MESSY)
    assert gpu.title == "GPU access runbook" and gpu.meta["owner"] == "platform"
    assert "shields.io" not in gpu.text and "It\u2019s shared" in gpu.text
    chunks = chunk_document(gpu, embedder.count_tokens)
    sections = {c.section for c in chunks}
    assert "GPU access > Booking rules" in sections
    # Each row is retrievable on its own, under the table's header.
    rows = [c for c in chunks if "| researcher |" in c.text or "| student |" in c.text]
    assert len(rows) == 2 and all(c.text.startswith("| who | max hours |") for c in rows)
    assert any("Diagram: request; booking." in c.text for c in chunks), "a diagram is indexed as its labels"
    assert any("```python" in c.text and c.text.count("```") % 2 == 0 for c in chunks), "code fences stay whole"

    rst = load_document(MESSY / "restore.rst", root=MESSY)
    assert [c.section for c in chunk_document(rst, embedder.count_tokens)] == ["", "How to restore"]
    html = load_document(MESSY / "monitoring.html", root=MESSY)
    assert html.title == "Monitoring" and "Backup older than 24 h" in html.text and "p{}" not in html.text


def test_long_sections_split_between_sentences(embedder: OnnxEmbedder, tmp_path: Path) -> None:
    sentences = [f"Sentence number {i} explains how node0{i % 7 + 1} is patched on Tuesdays." for i in range(80)]
    (tmp_path / "long.md").write_text("# Patching\n\n## Weekly\n\n" + " ".join(sentences) + "\n")
    chunks = chunk_document(load_document(tmp_path / "long.md", root=tmp_path), embedder.count_tokens)
    assert len(chunks) > 2
    for c in chunks:
        assert embedder.count_tokens(c.text) <= 220
        assert c.text.endswith("Tuesdays."), "never cut mid-sentence"


def test_incremental_ingest_and_the_commands(tmp_path: Path, embedder: OnnxEmbedder) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(MESSY, docs)
    settings = load_settings(None, lab_dir=tmp_path / "lab")
    first = ingest_paths(settings, [docs], embedder=embedder)
    assert sorted(first.added) == ["gpu.md", "monitoring.html", "networks.txt", "restore.rst"] and first.chunks >= 5
    again = ingest_paths(settings, [docs], embedder=embedder)
    assert again.summary().startswith("nothing to do") and not (again.added or again.updated)

    (docs / "networks.txt").write_text("The storage network is 10.30.0.0/16 and carries Ceph traffic.\n")
    (docs / "restore.rst").unlink()
    changed = ingest_paths(settings, [docs], embedder=embedder)
    assert changed.updated == ["networks.txt"] and changed.deleted == ["restore.rst"]
    hits = retrieve(settings, "which subnet carries ceph storage traffic", k=3, embedder=embedder)
    assert hits[0].source == "networks.txt" and "10.30.0.0/16" in hits[0].text
    assert all(
        h.source != "restore.rst" for h in retrieve(settings, "restore drills qmrestore", k=5, embedder=embedder)
    )
    assert "data, not instructions" in format_for_model(hits) and "[networks.txt § " in format_for_model(hits)

    runner = CliRunner()
    out = runner.invoke(cli, ["--lab-dir", str(tmp_path / "lab"), "ingest", str(docs), "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["unchanged"]
    found = runner.invoke(
        cli, ["--lab-dir", str(tmp_path / "lab"), "search", "who may book the GPU", "-k", "2", "--json"]
    )
    rows = json.loads(found.stdout)
    assert rows[0]["source"] == "gpu.md" and {"text", "source", "section", "score"} <= set(rows[0])
    # --explain: where each hit stood in the dense and the BM25 list, and its section path.
    explained = runner.invoke(
        cli, ["--lab-dir", str(tmp_path / "lab"), "search", "who may book the GPU", "-k", "2", "--explain"]
    )
    assert explained.exit_code == 0 and "dense rank" in explained.output and "BM25 rank" in explained.output
    assert "section: GPU access runbook > GPU access" in " ".join(explained.output.split())
    ranked = json.loads(
        runner.invoke(
            cli, ["--lab-dir", str(tmp_path / "lab"), "search", "who may book the GPU", "--explain", "--json"]
        ).stdout
    )
    assert all(isinstance(r["dense_rank"], int) or isinstance(r["bm25_rank"], int) for r in ranked)
    missing = runner.invoke(cli, ["--lab-dir", str(tmp_path / "lab"), "ingest", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "does not exist" in " ".join(missing.output.split())

    # The console script ends a search without the interpreter's teardown: the output and exit code must survive
    # it. A lab of its own: Milvus Lite lets one process at a time open a data directory, and this one holds "lab".
    labops, own = str(Path(sys.executable).with_name("labops")), str(tmp_path / "cli-lab")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([labops, "--lab-dir", own, *args], capture_output=True, text=True, timeout=300)

    assert run("ingest", str(docs)).returncode == 0
    real = run("search", "who may book the GPU", "-k", "2", "--json")
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)[0]["source"] == "gpu.md"
    bad = run("search", "gpu", "--mode", "fuzzy")
    assert bad.returncode == 2 and "fuzzy" in bad.stderr


def test_a_checkout_is_walked_for_its_own_documents_and_unreadable_files_are_named(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "vlans.md").write_text("# VLANs\n\nVLAN 40 carries the Ceph storage traffic.\n")
    (repo / "notes.txt").write_text("Scratch is wiped every Sunday at 03:00.\n")
    for vendored in (".git", ".venv/lib", "node_modules/left-pad", "web/node_modules/x"):
        (repo / vendored).mkdir(parents=True)
        (repo / vendored / "README.md").write_text("# Not ours\n\nA dependency's own readme.\n")
    (repo / ".hidden.md").write_text("# Editor state\n")
    (repo / "docs" / "diagram.md").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    (repo / "docs" / "notes.ipynb").write_text('{"cells": [')
    settings = load_settings(None, lab_dir=tmp_path / "lab")

    report = ingest_paths(settings, [repo], embedder=embedder)
    assert sorted(report.added) == ["docs/vlans.md", "notes.txt"]
    assert set(report.skipped) == {"docs/diagram.md", "docs/notes.ipynb"}
    assert "not a text document" in report.skipped["docs/diagram.md"]
    assert "skipped docs/notes.ipynb: is not a Jupyter notebook" in report.summary()
    assert json.loads(json.dumps(report.as_dict()))["skipped"] == report.skipped

    # A document that turns unreadable loses what it said before: the index mirrors what the folder says now.
    (repo / "notes.txt").write_bytes(bytes(range(256)) * 4)
    later = ingest_paths(settings, [repo], embedder=embedder)
    assert later.deleted == ["notes.txt"] and "notes.txt" in later.skipped
    assert all(h.source != "notes.txt" for h in retrieve(settings, "when is scratch wiped", k=5, embedder=embedder))


def test_a_named_file_that_is_no_document_stops_the_ingest_before_anything_is_written(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    good = tmp_path / "vlans.md"
    good.write_text("# VLANs\n\nVLAN 40 carries the Ceph storage traffic.\n")
    slides = tmp_path / "slides.pptx"
    slides.write_bytes(b"PK\x03\x04")
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\xff\xd8\xff\xe0" + bytes(512))
    settings = load_settings(None, lab_dir=tmp_path / "lab")
    for bad, says in ((slides, "is not a document LabOps reads; give files of Markdown"),
                      (pdf, "manual.pdf is not a PDF LabOps can read: pypdf cannot read it"),
                      (binary, "photo.txt is not a text document"),
                      (tmp_path / "missing.md", "does not exist")):  # fmt: skip
        with pytest.raises(InvalidArguments, match=says):
            ingest_paths(settings, [good, bad], embedder=embedder)
    assert retrieve(settings, "which VLAN carries Ceph", k=3, embedder=embedder) == []
    assert not (tmp_path / "lab" / "knowledge.sqlite").exists()


def test_an_embedding_failure_leaves_the_document_as_it_was_indexed(
    tmp_path: Path, embedder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "docs" / "vlans.md"
    doc.parent.mkdir()
    doc.write_text("# VLANs\n\nVLAN 40 carries the Ceph storage traffic.\n")
    settings = load_settings(None, lab_dir=tmp_path / "lab")
    ingest_paths(settings, [doc.parent], embedder=embedder)
    doc.write_text("# VLANs\n\nVLAN 41 carries the Ceph storage traffic now.\n")

    def fail(texts: list[str]) -> object:
        raise KnowledgeError("the embedding model could not be loaded")

    monkeypatch.setattr(embedder, "encode", fail)
    with pytest.raises(KnowledgeError, match="could not be loaded"):
        ingest_paths(settings, [doc.parent], embedder=embedder)
    monkeypatch.undo()
    hits = retrieve(settings, "which VLAN carries Ceph", k=1, embedder=embedder)
    assert "VLAN 40" in hits[0].text, "the old chunks are still there"
    assert ingest_paths(settings, [doc.parent], embedder=embedder).updated == ["vlans.md"], "and the change is retried"


def _runbook(hosts: range, port: int) -> str:
    sections = [f"## Host gpu-{i:02d}\n\nService gpu-{i:02d} listens on port {port + i} and is owned by team {i % 7}.\n"
                for i in hosts]  # fmt: skip
    return "# Service runbook\n\n" + "\n".join(sections)


def test_a_big_document_is_embedded_and_written_in_bounded_batches(
    tmp_path: Path, embedder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches stand in for a 10 000-chunk page: embedding it whole held gigabytes of token states, and
    # writing it in one call overflowed gRPC's message cap.
    monkeypatch.setattr(ingest_module, "EMBED_BATCH", 4)
    monkeypatch.setattr(store_module, "UPSERT_BYTES", 40_000)  # a few rows per call
    calls: list[int] = []
    encode = embedder.encode

    def counted(texts: list[str]) -> Encoded:
        calls.append(len(texts))
        return encode(texts)

    monkeypatch.setattr(embedder, "encode", counted)
    doc = tmp_path / "docs" / "runbook.md"
    doc.parent.mkdir()
    doc.write_text(_runbook(range(30), 9000))
    settings = load_settings(None, lab_dir=tmp_path / "lab")
    first = ingest_paths(settings, [doc.parent], embedder=embedder)
    assert first.chunks >= 30 and max(calls) <= 4 and sum(calls) == first.chunks
    with Store(settings, dim=embedder.dim) as store:
        assert len(store.ids_of("runbook.md")) == first.chunks == store.count()

    # Half the hosts renumbered, the last ten gone: the document's chunks are exactly the new ones.
    doc.write_text(_runbook(range(20), 7000))
    second = ingest_paths(settings, [doc.parent], embedder=embedder)
    assert second.updated == ["runbook.md"]
    with Store(settings, dim=embedder.dim) as store:
        assert len(store.ids_of("runbook.md")) == second.chunks == store.count()
    hits = retrieve(settings, "which port does gpu-05 listen on", k=3, embedder=embedder)
    assert "port 7005" in hits[0].text
    assert not [h for h in retrieve(settings, "gpu-25", k=10, embedder=embedder) if "gpu-25" in h.text]


def test_a_failure_part_way_through_a_document_leaves_it_as_indexed(
    tmp_path: Path, embedder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "EMBED_BATCH", 4)
    doc = tmp_path / "docs" / "runbook.md"
    doc.parent.mkdir()
    doc.write_text(_runbook(range(30), 9000))
    settings = load_settings(None, lab_dir=tmp_path / "lab")
    before = ingest_paths(settings, [doc.parent], embedder=embedder).chunks
    with Store(settings, dim=embedder.dim) as store:
        old_ids = store.ids_of("runbook.md")

    doc.write_text(_runbook(range(30), 7000))
    encode, calls = embedder.encode, []

    def flaky(texts: list[str]) -> Encoded:
        calls.append(len(texts))
        if len(calls) == 3:  # two batches of the new version are written by then
            raise KnowledgeError("Ollama stopped answering")
        return encode(texts)

    monkeypatch.setattr(embedder, "encode", flaky)
    with pytest.raises(KnowledgeError, match="stopped answering"):
        ingest_paths(settings, [doc.parent], embedder=embedder)
    monkeypatch.setattr(embedder, "encode", encode)
    with Store(settings, dim=embedder.dim) as store:
        assert store.ids_of("runbook.md") == old_ids and store.count() == before
    assert "port 9005" in retrieve(settings, "which port does gpu-05 listen on", k=1, embedder=embedder)[0].text
    again = ingest_paths(settings, [doc.parent], embedder=embedder)
    assert again.updated == ["runbook.md"], "the change is retried"
    assert "port 7005" in retrieve(settings, "which port does gpu-05 listen on", k=1, embedder=embedder)[0].text
