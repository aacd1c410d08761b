"""One embedded PostgreSQL with a small synthetic DR1 load for the DESI tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simlab.desi import load_desi
from simlab.postgres import start_postgres, stop_postgres
from simlab.secrets import ensure_secrets

ROWS = 20_000


@dataclass
class Desi:
    lab_dir: Path
    admin_dsn: str
    reader_dsn: str
    counts: dict[str, int]


@pytest.fixture(scope="session")
def desi_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desi]:
    lab_dir = tmp_path_factory.mktemp("desi-lab")
    secrets = ensure_secrets(lab_dir)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    info = start_postgres(lab_dir, port=port, secrets=secrets)
    c = secrets["postgres"]
    base = f"host=127.0.0.1 port={info['port']} dbname={info['dbname']}"
    admin = f"{base} user={c['admin_user']} password={c['admin_password']}"
    reader = f"{base} user={c['reader_user']} password={c['reader_password']}"
    try:
        counts = load_desi(admin, rows=ROWS, seed=3)
        yield Desi(lab_dir=lab_dir, admin_dsn=admin, reader_dsn=reader, counts=counts)
    finally:
        stop_postgres(lab_dir)
