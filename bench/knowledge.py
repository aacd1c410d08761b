"""Retrieval on both question sets, per configuration, and what `labops search` costs as a fresh process.

Sets: the lab's own pages (``tests/knowledge/retrieval_cases.yaml``) and installed packages' READMEs
(``tests/knowledge/foreign/questions.yaml``, exported from the virtualenv). Configurations: dense, BM25,
fused with several weightings (without re-ranking), the shipped fusion re-ranked by late interaction at
several weights (first pass reads token states from Milvus, the second from the process's cache), hits per
section; the chunker's rows per table chunk; questions embedded by the int8-arithmetic query model (shipped)
against the document model; query-time reads from the Milvus Lite engine in this process (shipped) against
reads through pymilvus's gRPC path; the README set again with its Markdown READMEs rendered to HTML (the HTML
loader on pages nobody here wrote). Run by hand::

    .venv/bin/python -m bench.knowledge            # everything (~5 min on two cores)
    .venv/bin/python -m bench.knowledge --quick    # the shipped configuration only
    .venv/bin/python -m bench.knowledge --cli      # only the fresh `labops search`
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

import knowledge.chunking as chunking
import knowledge.store as store_module
from core.config import load_settings
from knowledge.embeddings import OnnxEmbedder
from knowledge.evaluate import Question, load_foreign, load_own, measure
from knowledge.fusion import Ranker, Rrf, Weighted
from knowledge.ingest import ingest_paths
from knowledge.package_docs import export_readmes
from knowledge.reads import ClientReads
from knowledge.store import Store

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "knowledge" / "docs"
OWN = ROOT / "tests" / "knowledge" / "retrieval_cases.yaml"
FOREIGN = ROOT / "tests" / "knowledge" / "foreign" / "questions.yaml"
FUSIONS: dict[str, Ranker] = {
    "weighted 0.7/0.3": Weighted(dense=0.7, sparse=0.3),
    "weighted 0.5/0.5": Weighted(dense=0.5, sparse=0.5),
    "weighted 0.4/0.6": Weighted(dense=0.4, sparse=0.6),
    "RRF k=60": Rrf(k=60),
}


def _ingest(folder: Path, lab: Path, embedder: OnnxEmbedder) -> tuple[Store, str]:
    settings = load_settings(None, lab_dir=lab)
    report = ingest_paths(settings, [folder], embedder=embedder)
    rate = report.chunks / report.seconds
    line = f"{report.chunks} chunks in {report.seconds:.1f} s ({rate:.1f}/s), cut: {report.truncated}"
    return Store(settings, dim=embedder.dim), line


def _document_model_only() -> OnnxEmbedder:
    """An embedder that asks questions through the document model too (before the int8-arithmetic query model)."""
    embedder = OnnxEmbedder()
    embedder.models["queries"] = embedder.models["documents"]
    return embedder


def _through_grpc(sets: dict[str, tuple[Store, list[Question]]]) -> dict[str, tuple[Store, list[Question]]]:
    """The same stores reading through pymilvus instead of the Milvus Lite engine in this process."""
    out = {}
    for name, (store, questions) in sets.items():
        grpc = copy.copy(store)
        grpc.df = copy.copy(store.df)
        grpc.reads = grpc.df.reads = ClientReads(store.client, store.reads.uri)
        out[name] = (grpc, questions)
    return out


def _row(label: str, mode: str, sets: dict[str, tuple[Store, list[Question]]], embedder: OnnxEmbedder) -> None:
    cells = []
    for name, (store, questions) in sets.items():
        r = measure(store, embedder, questions, mode=mode)  # type: ignore[arg-type]
        median, p95 = r.latency()
        cells.append(f"{name} @1 {r.recall_at_1:.2f} @5 {r.recall_at_5:.2f} ({median:.1f}/{p95:.1f} ms)")
    print(f"  {label:32} " + "  |  ".join(cells))


def _as_html(folder: Path, dest: Path) -> dict[str, str]:
    """The Markdown READMEs of ``folder`` rendered to HTML by markdown-it-py (the rest copied); name -> suffix."""
    from markdown_it import MarkdownIt

    render = MarkdownIt("commonmark").enable("table")
    dest.mkdir()
    suffixes = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".md":
            body = render.render(path.read_text(encoding="utf-8"))
            (dest / f"{path.stem}.html").write_text(f"<html><body>{body}</body></html>", encoding="utf-8")
            suffixes[path.stem] = ".html"
        else:
            (dest / path.name).write_bytes(path.read_bytes())
            suffixes[path.stem] = path.suffix
    return suffixes


def _html_set(tmp: Path, embedder: OnnxEmbedder) -> None:
    """The README set as HTML pages: what the HTML loader keeps of pages nobody here wrote."""
    _, questions = load_foreign(FOREIGN, _as_html(tmp / "readmes", tmp / "html"))
    store, line = _ingest(tmp / "html", tmp / "html-lab", embedder)
    print(f"READMEs rendered to HTML by markdown-it-py: {line}")
    sets = {"HTML": (store, questions)}
    store_module.RERANK = False
    _row("hybrid 0.7/0.3 without re-ranking", "hybrid", sets, embedder)
    store_module.RERANK = True
    _row("shipped", "hybrid", sets, embedder)
    store.close()


def _cli_startup(lab: Path) -> None:
    labops = Path(sys.executable).parent / "labops"
    # A lab of its own: Milvus Lite keeps a lock on a data directory this process has opened.
    subprocess.run([str(labops), "--lab-dir", str(lab), "ingest", str(DOCS)], check=True, capture_output=True)
    times = []
    for _ in range(9):
        start = time.perf_counter()
        subprocess.run([str(labops), "--lab-dir", str(lab), "search", "backup", "-k", "1"], check=True,
                       capture_output=True)  # fmt: skip
        times.append(time.perf_counter() - start)
    print(f"`labops search` as a fresh process: median {statistics.median(times):.2f} s (min {min(times):.2f} s)")


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="Only the shipped configuration.")
    parser.add_argument("--cli", action="store_true", help="Only the fresh `labops search` process.")
    options = parser.parse_args()
    if options.cli:
        with tempfile.TemporaryDirectory() as tmp_name:
            _cli_startup(Path(tmp_name))
        return 0
    quick = options.quick
    embedder = OnnxEmbedder()
    sources = list(yaml.safe_load(FOREIGN.read_text())["sources"])
    rows_options = [chunking.TABLE_ROWS] if quick else [chunking.TABLE_ROWS, 0, 3]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        docs = export_readmes(sources, tmp / "readmes")
        _, foreign = load_foreign(FOREIGN, {d.name: d.suffix for d in docs})
        own = load_own(OWN)
        for rows in rows_options:
            chunking.TABLE_ROWS = rows
            own_store, own_line = _ingest(DOCS, tmp / f"own{rows}", embedder)
            foreign_store, foreign_line = _ingest(tmp / "readmes", tmp / f"foreign{rows}", embedder)
            print(f"table rows per chunk: {rows or 'whole tables'}; own docs {own_line}; READMEs {foreign_line}")
            sets = {"own": (own_store, own), "READMEs": (foreign_store, foreign)}
            for mode in ("dense", "bm25"):
                _row(mode, mode, sets, embedder)
            shipped_fusion, shipped_cap = store_module.FUSION, store_module.PER_SECTION
            shipped_weight = store_module.RERANK_WEIGHT
            store_module.RERANK = False
            for label, ranker in FUSIONS.items() if not quick else [("weighted 0.7/0.3", shipped_fusion)]:
                store_module.FUSION = ranker
                _row(f"hybrid, {label}", "hybrid", sets, embedder)
            store_module.FUSION = shipped_fusion
            store_module.RERANK = True
            _row(f"shipped + re-rank x{shipped_weight:g}, cold", "hybrid", sets, embedder)
            _row(f"shipped + re-rank x{shipped_weight:g}, warm", "hybrid", sets, embedder)
            _row("  the same, questions by the document model", "hybrid", sets, _document_model_only())
            store_module.RERANK = False
            _row("hybrid 0.7/0.3 by the query model (again)", "hybrid", sets, embedder)
            _row("  the same, questions by the document model", "hybrid", sets, _document_model_only())
            _row("  the same, reads through gRPC", "hybrid", _through_grpc(sets), embedder)
            store_module.RERANK = True
            _row("shipped, reads through gRPC", "hybrid", _through_grpc(sets), embedder)
            _row("shipped (again)", "hybrid", sets, embedder)
            for weight in [] if quick else [2.0, 10.0]:
                store_module.RERANK_WEIGHT = weight
                _row(f"shipped + re-rank x{weight:g}", "hybrid", sets, embedder)
            store_module.RERANK_WEIGHT = shipped_weight
            for cap in [] if quick else [c for c in (0, 1, 2, 3) if c != shipped_cap]:
                store_module.PER_SECTION = cap
                _row(f"shipped, {cap or 'no'} cap per section", "hybrid", sets, embedder)
            store_module.PER_SECTION = shipped_cap
            own_store.close()
            foreign_store.close()
        chunking.TABLE_ROWS = rows_options[0]  # the shipped chunking, not the last one tried
        _html_set(tmp, embedder)
        _cli_startup(tmp / "cli")
    return 0


if __name__ == "__main__":
    sys.exit(main())
