"""Fixtures shared by the knowledge tests."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from core.config import Settings, load_settings
from knowledge.chunking import chunk_document
from knowledge.embeddings import OnnxEmbedder
from knowledge.ingest import ingest_paths
from knowledge.loaders import Document, load_document

DOCS = Path(__file__).resolve().parents[2] / "knowledge" / "docs"


@pytest.fixture(scope="session")
def docs_corpus(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxEmbedder) -> Settings:
    """The lab's own pages ingested once into a Milvus Lite directory of their own (read-only for the tests)."""
    settings = load_settings(None, lab_dir=tmp_path_factory.mktemp("klab"))
    report = ingest_paths(settings, [DOCS], embedder=embedder)
    assert len(report.added) >= 20
    return settings


@pytest.fixture(scope="session")
def readme_lines() -> list[str]:
    """Prose lines from installed packages' READMEs: text nobody here wrote, read at test time."""
    out: list[str] = []
    for package in ("httpx", "pydantic", "ray", "proxmoxer", "sqlglot", "ftfy"):
        payload = importlib.metadata.metadata(package).get_payload()  # type: ignore[attr-defined]
        lines = [line.strip() for line in str(payload or "").splitlines()]
        out += [line for line in lines if len(line.split()) >= 6 and not line.startswith(("[", "<", "|", "!"))][:5]
    assert len(out) >= 15, "too few README lines to compare on"
    return out


def load_file(tmp_path: Path, name: str, content: str | bytes) -> Document:
    """``content`` written to ``tmp_path/name`` and loaded as a document (the format tests' helper)."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return load_document(path, root=tmp_path)


def sections_of(doc: Document, embedder: OnnxEmbedder) -> dict[str, str]:
    """Section path -> the text of its chunks."""
    out: dict[str, str] = {}
    for c in chunk_document(doc, embedder.count_tokens):
        out[c.section] = out.get(c.section, "") + "\n" + c.text
    return out
