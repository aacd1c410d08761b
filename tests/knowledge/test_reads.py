"""Query-time reads straight from the Milvus Lite engine answer exactly as pymilvus's gRPC path does.

The in-process path (knowledge.reads.LiteReads) relies on where milvus-lite keeps the engine it serves;
these tests are what notices an upgrade that moves it (the store would silently fall back to gRPC).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from milvus_lite import server_manager_instance
from pymilvus import MilvusClient

import knowledge.reads as reads_module
from core.config import Settings, load_settings
from core.endpoints import milvus_endpoint
from core.errors import BackendUnavailable, KnowledgeError
from knowledge.embeddings import OnnxEmbedder
from knowledge.frequencies import ALL_CHUNKS
from knowledge.milvus_errors import translate, translating
from knowledge.reads import ClientReads, LiteReads, Reads
from knowledge.retrieve import search_store
from knowledge.store import Store

CASES = yaml.safe_load((Path(__file__).parent / "retrieval_cases.yaml").read_text())
FIELDS = ["text", "source", "section", "title"]


def _lists(reads: Reads, store: Store, question: str, vector: list[float], expr: str) -> list[list[dict[str, Any]]]:
    dense = reads.search(store.collection, vector, field="dense", metric="COSINE", limit=20, expr=expr, output=FIELDS)
    bm25 = reads.search(store.collection, question, field="sparse", metric="BM25", limit=20, expr=expr, output=FIELDS)
    return [dense, bm25]


def test_a_store_reads_in_process_when_this_process_serves_milvus_lite(
    docs_corpus: Settings, embedder: OnnxEmbedder
) -> None:
    with Store(docs_corpus, dim=embedder.dim) as store:
        assert isinstance(store.reads, LiteReads), "milvus-lite moved its engine: see knowledge/reads.py"
        assert store.df.reads is store.reads


@pytest.mark.parametrize(
    ("uri", "pings"),
    [
        ("/var/lib/labops/milvus.db", False),  # Milvus Lite in this process
        ("http://127.0.0.1:19530", False),  # `labops lab up` serves it here
        ("http://localhost:19530", False),
        ("http://[::1]:19530", False),
        ("unix:/run/milvus.sock", False),
        ("http://milvus.lab.internal:19530", True),  # a Milvus server: pymilvus's keepalive stands
        ("https://10.20.0.15:19530", True),
    ],
)
def test_only_connections_off_this_machine_send_idle_pings(uri: str, pings: bool) -> None:
    # Milvus Lite's gRPC server closes connections that ping while idle ("Too many pings", a flaky failure).
    options = reads_module.client_options(uri).get("grpc_options", {})
    assert ("grpc.keepalive_time_ms" not in options) is pings
    assert options.get("grpc.keepalive_time_ms", 2**31 - 1) >= 2**31 - 1


def test_a_store_client_of_milvus_lite_sends_no_idle_pings(docs_corpus: Settings, embedder: OnnxEmbedder) -> None:
    with Store(docs_corpus, dim=embedder.dim) as store:
        assert store.client is not None
        # pymilvus keeps the channel options on the connection it shares by address; a pymilvus that dropped
        # the keyword would bring the flaky failure back unnoticed.
        handler = store.client._get_connection()
        assert handler._grpc_options == {"grpc.keepalive_time_ms": 2**31 - 1}


def test_both_read_paths_give_the_same_lists_and_rows(
    docs_corpus: Settings, embedder: OnnxEmbedder, readme_lines: list[str]
) -> None:
    # Questions of the lab-docs set and lines of other projects' READMEs (vocabulary the corpus barely has).
    questions = [c["q"] for c in CASES[::3]] + readme_lines[::2]
    with Store(docs_corpus, dim=embedder.dim) as store:
        lite, grpc = store.reads, ClientReads(store.client, milvus_endpoint(docs_corpus)[0])
        nonempty = 0
        for question in questions:
            vector = embedder.encode_queries([question]).vectors[0].tolist()
            for expr in ("", 'source like "runbook-%"'):
                for ours, theirs in zip(
                    _lists(lite, store, question, vector, expr),
                    _lists(grpc, store, question, vector, expr),
                    strict=True,
                ):
                    assert [h["id"] for h in ours] == [h["id"] for h in theirs], (question, expr)
                    assert [h["entity"] for h in ours] == [h["entity"] for h in theirs]
                    assert [h["distance"] for h in ours] == pytest.approx([h["distance"] for h in theirs], abs=1e-5)
                    assert all(h["entity"]["source"].startswith("runbook-") for h in ours if expr)
                    nonempty += bool(ours)
            ids = [h["id"] for h in _lists(lite, store, question, vector, "")[0][:5]] + ["no-such-chunk"]
            assert lite.get(store.collection, ids, ["tokens"]) == grpc.get(store.collection, ids, ["tokens"])
            tokens = [int(t) for t in embedder.encode_queries([question]).tokens[0].ids] + [ALL_CHUNKS, 10**9]  # type: ignore[index]
            assert lite.get(store.df.name, tokens, ["df"]) == grpc.get(store.df.name, tokens, ["df"])
        assert nonempty >= len(questions) * 3  # the comparison compared something


def test_a_search_ranks_alike_through_either_path(
    docs_corpus: Settings, embedder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(docs_corpus, dim=embedder.dim) as store:
        direct = [search_store(store, embedder, c["q"], k=5, explain=True) for c in CASES]
    monkeypatch.setattr(reads_module, "IN_PROCESS", False)
    with Store(docs_corpus, dim=embedder.dim) as store:
        assert isinstance(store.reads, ClientReads)
        through_grpc = [search_store(store, embedder, c["q"], k=5, explain=True) for c in CASES]
    for ours, theirs in zip(direct, through_grpc, strict=True):
        assert [(h.id, h.dense_rank, h.bm25_rank, h.late_score) for h in ours] == [
            (h.id, h.dense_rank, h.bm25_rank, h.late_score) for h in theirs
        ]
        assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-5)


def test_a_missing_collection_is_a_knowledge_error_on_either_path(
    docs_corpus: Settings, embedder: OnnxEmbedder
) -> None:
    with Store(docs_corpus, dim=embedder.dim) as store:
        grpc = ClientReads(store.client, milvus_endpoint(docs_corpus)[0])
        for reads in (store.reads, grpc):
            with pytest.raises(KnowledgeError, match="no_such_collection"):
                reads.search("no_such_collection", "backup", field="sparse", metric="BM25", limit=3, expr="", output=[])
            with pytest.raises(KnowledgeError, match="no_such_collection"):
                reads.get("no_such_collection", ["x"], ["text"])


def test_a_milvus_server_gone_mid_session_is_reported_as_unavailable(tmp_path: Path) -> None:
    # A server of its own (milvus-lite's public server manager, in this process), stopped under a connected client.
    path = str(tmp_path / "gone.db")
    uri = server_manager_instance.start_and_get_uri(path)
    assert uri is not None
    client = MilvusClient(uri=uri, **reads_module.client_options(uri))
    try:
        client.create_collection("c", dimension=2)
        server_manager_instance.release_server(path)
        with pytest.raises(BackendUnavailable, match=r"milvus\.uri"):
            ClientReads(client, uri).search(
                "c", [0.1, 0.2], field="vector", metric="COSINE", limit=1, expr="", output=[]
            )
        with pytest.raises(BackendUnavailable, match=r"milvus\.uri"):  # and the writes an ingest makes
            translating(client, uri).upsert("c", [{"id": 1, "vector": [0.3, 0.4]}])
    finally:
        client.close()


class _RpcFailure(grpc.RpcError):
    # The two methods of the call objects grpc raises (grpc._channel._InactiveRpcError needs a live call).
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_grpc_errors_pymilvus_lets_through_are_translated_too() -> None:
    # What an ingest of a 10 000-chunk page got from one upsert before writes were batched.
    too_big = _RpcFailure(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max (380148519 vs. 268435456)"
    )
    refused = translate(too_big, "/lab/milvus.db")
    assert isinstance(refused, KnowledgeError) and not isinstance(refused, BackendUnavailable)
    assert "larger than max" in str(refused)
    gone = translate(_RpcFailure(grpc.StatusCode.UNAVAILABLE, "Socket closed"), "http://10.0.0.5:19530")
    assert isinstance(gone, BackendUnavailable) and "milvus.uri" in str(gone)


def test_a_read_only_store_searches_like_a_full_one(docs_corpus: Settings, embedder: OnnxEmbedder) -> None:
    with Store(docs_corpus, dim=embedder.dim) as full:
        expected = [[h.id for h in search_store(full, embedder, c["q"], k=5)] for c in CASES[::4]]
    with Store(docs_corpus, dim=embedder.dim, read_only=True) as store:
        assert store.client is None and isinstance(store.reads, LiteReads)
        assert [[h.id for h in search_store(store, embedder, c["q"], k=5)] for c in CASES[::4]] == expected
        with pytest.raises(KnowledgeError, match="read-only"):
            store.delete_source("backup-policy.md")


def test_a_read_only_store_over_nothing_finds_nothing_and_creates_nothing(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    settings = load_settings(None, lab_dir=tmp_path)
    with Store(settings, dim=embedder.dim, read_only=True) as store:
        assert store.empty and search_store(store, embedder, "when are backups verified?", k=3) == []
    from milvus_lite import MilvusLite

    with MilvusLite(milvus_endpoint(settings)[0]) as db:  # closed above: the directory is free again
        assert db.list_collections() == []


def test_a_search_in_a_fresh_process_loads_neither_pymilvus_nor_pandas(tmp_path: Path) -> None:
    # `labops search` must not pay for importing pymilvus nor for starting Milvus Lite's gRPC server.
    # Its own lab: Milvus Lite lets one process at a time open a directory, and this one holds the corpus's.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "backups.md").write_text("# Backups\n\nBackups are verified every day at 11:00.\n")
    lab = tmp_path / "lab"
    labops = Path(sys.executable).with_name("labops")
    ingest = [str(labops), "--lab-dir", str(lab), "ingest", str(tmp_path / "docs")]
    done = subprocess.run(ingest, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    code = (
        "import sys; from pathlib import Path; from core.config import load_settings; "
        "from knowledge.retrieve import retrieve; "
        f"hits = retrieve(load_settings(None, lab_dir=Path({str(lab)!r})), 'when are backups verified', k=3); "
        "print(len(hits), 'pymilvus' in sys.modules, 'grpc' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "False", "False"]
    # Nor pandas, which pyarrow would import on Milvus Lite's first read (a third of the command's time); the
    # import log of the real command shows what it loaded.
    command = "import sys; from channels.cli.main import main; sys.argv[0] = 'labops'; main()"
    args = ["--lab-dir", str(lab), "search", "when are backups verified", "-k", "1", "--json"]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)[0]["source"] == "backups.md"
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert {"milvus_lite", "pyarrow.dataset", "onnxruntime"} <= loaded  # the log is the real one
    assert not {"pymilvus", "grpc"} & loaded
    # pyarrow's attempt shows as a bare "pandas" line; pandas itself would have loaded its hundreds of modules.
    assert not [name for name in loaded if name.startswith("pandas.")]


def test_a_directory_another_process_holds_is_reported_with_the_fix(
    tmp_path: Path, embedder: OnnxEmbedder, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(None, lab_dir=tmp_path)
    path = milvus_endpoint(settings)[0]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from milvus_lite import MilvusLite; db = MilvusLite({path!r}); print('held', flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(BackendUnavailable, match=r"another process has .*milvus\.uri"):
            Store(settings, dim=embedder.dim, read_only=True)
        # An ingest's store, through pymilvus: Milvus Lite's reason once, not its traceback and pymilvus's own.
        with pytest.raises(BackendUnavailable, match=r"another process holds the lock .*labops lab up") as raised:
            Store(settings, dim=embedder.dim)
        assert "Open local milvus failed" not in str(raised.value)
        assert "Traceback" not in capfd.readouterr().err
    finally:
        holder.communicate("\n", timeout=60)
