"""Milvus Lite keeps serving, on the machine's clock, while a test travels in time.

The lab's time-driven behaviour is tested with time-machine in this process, beside the gRPC server thread
through which Milvus Lite serves its directory. That thread must not follow the travel (tests/conftest.py's
``grpc_server_on_the_machine_clock``): in the past its every wait deadline has passed and it spins.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import grpc._server
import time_machine

from core.config import load_settings
from knowledge.embeddings import OnnxEmbedder
from knowledge.ingest import ingest_paths
from knowledge.service import DocsService

PAGE = Path(__file__).resolve().parents[2] / "knowledge" / "docs" / "backup-policy.md"


def test_the_lite_server_thread_keeps_the_machine_clock_and_answers_in_the_past(
    tmp_path: Path, embedder: OnnxEmbedder
) -> None:
    settings = load_settings(None, lab_dir=tmp_path / "lab")
    ingest_paths(settings, [PAGE], embedder=embedder)
    docs = DocsService(settings, embedder=embedder)
    try:
        before = docs.hits("when do backups run", k=1)
        with time_machine.travel(dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC), tick=True):
            machine = time_machine.escape_hatch.time.time()
            assert abs(time.time() - dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC).timestamp()) < 60
            # The server thread's clock is the machine's, not the travelled one.
            assert abs(grpc._server.time.time() - machine) < 60
            during = docs.hits("when do backups run", k=1)
        assert [h.id for h in during] == [h.id for h in before]
    finally:
        docs.close()
