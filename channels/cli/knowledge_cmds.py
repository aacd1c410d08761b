"""``labops ingest PATH... [--json] [--rebuild]`` and ``labops search QUERY [-k 5] [--json]``."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import click
from rich.markup import escape

from channels.cli.common import FAST_EXIT, console, echo_json, get_settings, handle_errors
from core.endpoints import milvus_endpoint
from knowledge.reads import in_process
from knowledge.retrieve import cite, retrieve

__all__ = ["ingest", "search"]


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--rebuild", is_flag=True, help="Drop the collection and ingest everything again.")
@click.option("--json", "as_json", is_flag=True, help="Print a summary object.")
@handle_errors
def ingest(paths: tuple[Path, ...], rebuild: bool, as_json: bool) -> None:
    """Add folders or files of Markdown, text, reStructuredText, HTML, notebooks, PDF or Word to the knowledge."""
    # Loaders, chunker and progress bar: `labops search` needs none of them.
    from rich.progress import Progress

    from knowledge.ingest import ingest_paths

    settings = get_settings()
    if as_json:
        report = ingest_paths(settings, list(paths), rebuild=rebuild)
        echo_json(report.as_dict())
        return
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("ingesting", total=None)

        def progress(done: int, total: int, source: str) -> None:
            bar.update(task, total=total, completed=done, description=source[:40])

        report = ingest_paths(settings, list(paths), rebuild=rebuild, progress=progress)
    console.print(report.summary())


@click.command()
@click.argument("query")
@click.option("-k", "k", default=5, show_default=True, help="How many passages.")
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "dense", "bm25"]),
    default="hybrid",
    show_default=True,
    help="hybrid: dense and BM25 fused, then re-ranked; dense or bm25: one list alone (for comparison).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a list of {text, source, section, title, score}.")
@click.option(
    "--explain",
    is_flag=True,
    help="Show each hit's rank in the dense and the BM25 list, its re-ranking score, and its section.",
)
@handle_errors
def search(query: str, k: int, mode: str, as_json: bool, explain: bool) -> None:
    """Search the lab's documentation (dense + BM25, fused, then re-ranked word by word)."""
    settings = get_settings()
    # Only a Milvus Lite directory opened here reads without pymilvus; pymilvus itself imports pandas.
    lite = in_process(milvus_endpoint(settings)[0])
    with _pyarrow_without_pandas() if lite else contextlib.nullcontext():
        hits = retrieve(settings, query, k=k, mode=mode, explain=explain)  # type: ignore[arg-type]
    FAST_EXIT.set()  # read-only, and retrieve() closed the store: skipping the teardown loses nothing
    if as_json:
        echo_json([h.as_dict() for h in hits])
        return
    if not hits:
        console.print("no passage matched; ingest documents first: labops ingest knowledge/docs")
    else:
        # Hits are ranked by the fused score plus the re-ranking's word-match score: print the one the order
        # comes from, and the fused score the agent's relevance floor uses beside it.
        console.print("[dim]rank score = fused dense/BM25 score + word-match re-ranking; best first[/dim]\n")
    for hit in hits:
        console.print(f"[bold]{escape(cite(hit))}[/bold]  rank score {hit.rank_score:.4f} (fused {hit.score:.4f})")
        if explain:
            late = f", word match {hit.late_score:.3f}" if hit.late_score is not None else ""
            console.print(
                f"  dense rank {_rank(hit.dense_rank)}, BM25 rank {_rank(hit.bm25_rank)}{late}; "
                f"section: {escape(' > '.join(p for p in (hit.title, hit.section) if p))}"
            )
        console.print(escape("  " + hit.text.replace("\n", "\n  ")[:600]) + "\n")


def _rank(rank: int | None) -> str:
    return str(rank) if rank is not None else "- (not in its top list)"


class _NoPandas(importlib.abc.MetaPathFinder):
    """Answers "not installed" for pandas (see :func:`_pyarrow_without_pandas`)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError(f"{fullname} is not loaded by `labops search`", name=fullname)
        return None


@contextlib.contextmanager
def _pyarrow_without_pandas() -> Iterator[None]:
    """Keep pyarrow from importing pandas while the search opens Milvus Lite.

    Milvus Lite reads its segments with pyarrow, whose dataset module probes for pandas when it loads: about
    0.3 s of imports, a third of a fresh ``labops search``, for a library it never uses here (measured with
    ``python -X importtime``; bench/knowledge.py times the whole command). pyarrow treats a pandas that
    cannot be imported as absent and remembers that, so the finder is needed only until the first read. A
    process that loaded pandas already keeps it. Used only when the search opens a Milvus Lite directory
    itself: a search through pymilvus (a server, or ``labops lab up``) needs pandas, which pymilvus imports.
    """
    if "pandas" in sys.modules:
        yield
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
