"""Facts that live only in README markup (badges, Mermaid labels, table rows, mis-decoded headings) are found.

The documents are written the way real READMEs are: the fact each question needs sits in exactly one
place, surrounded by look-alike text, so a pass means the markup was read and not just the prose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from knowledge.chunking import WINDOW, chunk_document
from knowledge.embeddings import OnnxEmbedder
from knowledge.ingest import ingest_paths
from knowledge.loaders import load_document
from knowledge.markup import badges_to_text, compact_tables, fix_mojibake, mermaid_to_text, strip_noise
from knowledge.retrieve import retrieve

PLATFORM = """\
# Observatory data platform

[![Grafana](https://img.shields.io/badge/Dashboards-Grafana-F46800?logo=grafana)](https://grafana.com/)
[![build](https://github.com/obs/platform/actions/workflows/ci.yml/badge.svg)](https://github.com/obs/platform)
![License](https://img.shields.io/badge/license-BSD--3-blue)
<a href="https://queue.example"><img src="https://img.shields.io/badge/Batch_queue-Slurm_23.11-0a0" alt="queue"></a>

The platform collects telescope frames and serves them to the reduction pipeline.

## Architecture

```mermaid
flowchart LR
  CAM[Camera controller] -->|raw frames| ING(Ingest service)
  ING --> DB[(pg-main: PostgreSQL 16, 32 GB RAM)]
  DB --> CLS[Random Forest classifier]
  CLS -- flags transients --> ALR{{Alert broker}}
```

## Services

| Service | Where | Capacity | Status |
|---------|-------|----------|--------|
| **Object storage** | MinIO on node03 | 4 TB | ✅ **Active** |
| Message bus | RabbitMQ on node01 | 3 queues | ✅ **Active** |
| Frame cache | Redis on node02 | 64 GB | ⚠️ Degraded |
| Archive | tape library in building B | 400 TB | ✅ **Active** |
| Notebook hub | JupyterHub on node04 | 40 users | 🚧 Planned |
"""

PARTNERS_UTF8 = """\
# Consortium

## 🤝 Partners

The survey is run with the Nordic Optical Telescope and the Calar Alto observatory.

## 📅 Meetings

Collaboration meetings happen twice a year, in March and in October.

## 💶 Funding

Most of the funding comes from the national research council.
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxEmbedder) -> object:
    docs = tmp_path_factory.mktemp("readmes")
    (docs / "platform.md").write_text(PLATFORM)
    # The same page saved by a tool that decoded UTF-8 as Mac Roman, then wrote it back as UTF-8.
    (docs / "consortium.md").write_text(PARTNERS_UTF8.encode("utf-8").decode("mac_roman"))
    # Unrelated pages to compete with.
    for i, topic in enumerate(["GPU booking", "VPN access", "Printer setup", "Cluster storage"]):
        (docs / f"page{i}.md").write_text(
            f"# {topic}\n\n## Overview\n\nThis page describes {topic.lower()} for the lab. "
            "Ask the admins on #lab-help for anything that is not covered here.\n"
        )
    settings = load_settings(None, lab_dir=tmp_path_factory.mktemp("lab"))
    report = ingest_paths(settings, [docs], embedder=embedder)
    assert report.truncated == 0
    return settings


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("which tool do we use for dashboards", "Dashboards: Grafana"),  # only in a badge
        ("what batch queue system runs on the platform", "Batch queue: Slurm 23.11"),  # an HTML badge
        ("how much RAM does the pg-main database have", "32 GB RAM"),  # only in a Mermaid node label
        ("which model flags transients", "Random Forest classifier"),  # a Mermaid label
        ("which node hosts the object storage", "MinIO on node03"),  # one table row
        ("how big is the tape archive", "400 TB"),  # another row
        ("who are the partners of the survey", "Nordic Optical Telescope"),  # under a Mac Roman heading
    ],
)
def test_a_fact_only_the_markup_holds_is_found_first(lab: object, embedder: OnnxEmbedder, question: str,
                                                      fact: str) -> None:  # fmt: skip
    hits = retrieve(lab, question, k=5, embedder=embedder)  # type: ignore[arg-type]
    assert hits and fact in hits[0].text, [(h.source, h.section, h.text[:80]) for h in hits]


def test_badges_become_their_facts_and_decoration_goes() -> None:
    text = badges_to_text(PLATFORM)
    assert "Dashboards: Grafana." in text and "Batch queue: Slurm 23.11." in text
    assert "license" not in text.lower() and "shields.io" not in text and "actions/workflows" not in text
    rst = badges_to_text(
        "|gpu| |pypi|\n\n.. |gpu| image:: https://img.shields.io/badge/GPU-RTX_A4000-green\n   :alt: gpu\n"
        ".. |pypi| image:: https://img.shields.io/pypi/v/x.svg\n   :target: https://pypi.org/x\n"
    )
    assert "GPU: RTX A4000." in rst and "pypi" not in rst and "image::" not in rst
    # A screenshot is not a badge: its alt text is what it says.
    assert badges_to_text("![the Grafana overview board](docs/board.png)") == "the Grafana overview board"


def test_mermaid_labels_become_text() -> None:
    text = mermaid_to_text(PLATFORM)
    assert "```mermaid" not in text and "-->" not in text
    for label in ("Camera controller", "raw frames", "Ingest service", "pg-main: PostgreSQL 16, 32 GB RAM",
                  "flags transients", "Alert broker"):  # fmt: skip
        assert label in text
    sequence = mermaid_to_text("```mermaid\nsequenceDiagram\n  Alice->>PVE: POST /qemu/130/status/stop\n```\n")
    assert "POST /qemu/130/status/stop" in sequence


@pytest.mark.parametrize("codec", ["cp1252", "latin-1", "mac_roman"])
def test_mojibake_from_each_codec_is_repaired(codec: str) -> None:
    original = "## 🤝 Partners — naïve café, “quoted”, ✅ Deployed"
    broken = original.encode("utf-8").decode(codec, errors="ignore" if codec == "cp1252" else "strict")
    fixed = fix_mojibake(broken)
    assert "Partners" in fixed and "café" in fixed and "naïve" in fixed
    assert fixed == original or codec == "cp1252"  # cp1252 has no glyph for some bytes: those are lost
    assert fix_mojibake(original) == original, "correct text is left alone"


def test_emphasis_and_emoji_leave_the_words() -> None:
    assert strip_noise("| **Object storage** | ✅ **Active** |") == "| Object storage | Active |"
    assert compact_tables("|  a   |  b |\n|:-----|----:|") == "| a | b |\n|---|---|"
    assert strip_noise("```python\nx = a**2  # **kept**\n```") == "```python\nx = a**2  # **kept**\n```"


def test_nothing_reaches_the_embedder_longer_than_its_window(embedder: OnnxEmbedder, tmp_path: Path) -> None:
    # A wide table with long padded cells and a deep heading path: rows go in groups, each under its header.
    rows = "\n".join(f"| host{i:03d} | {'rack ' * 30}{i} | {'GPU ' * 20} | ok |" for i in range(60))
    deep = "# T\n" + "".join(f"{'#' * n} Level {n} heading with a long descriptive name\n" for n in range(2, 7))
    (tmp_path / "wide.md").write_text(f"{deep}\n| Host | Where | Cards | State |\n|---|---|---|---|\n{rows}\n")
    chunks = chunk_document(load_document(tmp_path / "wide.md", root=tmp_path), embedder.count_tokens)
    assert all(embedder.count_tokens(c.embed_text) <= WINDOW for c in chunks)
    found = "\n".join(c.text for c in chunks)
    assert all(f"host{i:03d}" in found for i in range(60)), "no row is lost"
    assert all(c.text.startswith("| Host |") for c in chunks if "host0" in c.text), "each group repeats the header"


def test_package_readmes_are_read_from_the_virtualenv(tmp_path: Path) -> None:
    from core.errors import InvalidArguments
    from knowledge.package_docs import export_readmes

    docs = export_readmes(["proxmoxer", "ftfy"], tmp_path)
    assert {d.name for d in docs} == {"proxmoxer", "ftfy"}
    assert (tmp_path / "proxmoxer.rst").is_file() and (tmp_path / "ftfy.md").is_file()
    with pytest.raises(InvalidArguments, match="not installed"):
        export_readmes(["no-such-package-here"], tmp_path)
