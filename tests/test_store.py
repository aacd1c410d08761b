"""The store layer: one transaction for every unit of work, and a versioned schema migrated in place.

A store written by LabOps before the schema was versioned (its tables, some columns missing, no version
table) is upgraded with its rows kept, in SQLite and in PostgreSQL; a store from a newer LabOps is refused.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from channels.cli.main import cli
from core.errors import ConfigError
from core.store import SCHEMA_VERSION, Database, schema_status
from simlab.postgres import create_database

# The tables as LabOps made them before versioning (request_keys without steps, agent_waits without result and
# delivered): an old store the migrations must bring up to date.
OLD_TABLES = (
    "CREATE TABLE approvals (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE audit (seq BIGINT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, entry TEXT NOT NULL, "
    "prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE TABLE request_keys (key TEXT NOT NULL, tool TEXT NOT NULL, binding TEXT NOT NULL, state TEXT NOT NULL, "
    "result TEXT, started DOUBLE PRECISION NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (key, tool))",
    "CREATE TABLE agent_waits (approval_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, requester TEXT NOT NULL, "
    "channel TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, resumed DOUBLE PRECISION)",
)
OLD_ROWS = (
    ("INSERT INTO approvals (id, data) VALUES (?, ?)", ("apr_0123456789ab", '{"state": "pending"}')),
    ("INSERT INTO audit (seq, ts, entry, prev_hash, hash) VALUES (?, ?, ?, ?, ?)", (1, 1.5, "{}", "0", "h1")),
    ("INSERT INTO request_keys (key, tool, binding, state, started, owner) VALUES (?, ?, ?, ?, ?, ?)",
     ("k1", "vm.provision", "b", "done", 2.0, "host:1")),
    ("INSERT INTO agent_waits (approval_id, thread_id, requester, channel, created) VALUES (?, ?, ?, ?, ?)",
     ("apr_0123456789ab", "thr_1", "researcher2", "api", 3.0)),
)  # fmt: skip


def _make_old(db: Database) -> None:
    with db.session() as s:
        for statement in OLD_TABLES:
            s.execute(statement)
        for statement, params in OLD_ROWS:
            s.execute(statement, params)
        s.commit()


def _check_upgraded(db: Database) -> None:
    assert schema_status(db).version == 0 and len(schema_status(db).pending) == SCHEMA_VERSION, "unversioned"
    db.ensure_schema()
    status = schema_status(db)
    assert status.version == SCHEMA_VERSION and not status.pending
    with db.session() as s:
        assert s.execute("SELECT data FROM approvals").fetchone()[0] == '{"state": "pending"}'
        assert s.execute("SELECT hash FROM audit WHERE seq = 1").fetchone()[0] == "h1"
        assert s.execute("SELECT state, steps FROM request_keys").fetchone() == ("done", None)
        assert s.execute("SELECT thread_id, result, delivered FROM agent_waits").fetchone() == ("thr_1", None, None)
        versions = [r[0] for r in s.execute("SELECT version FROM labops_schema ORDER BY version").fetchall()]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        for table in ("reservations", "api_keys", "chat_threads", "chat_replies", "slack_seen"):
            assert s.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, "missing tables were created"
    # The stores of every layer work on it, with the old rows.
    from agent.waits import Waits

    assert Waits(db).find("apr_0123456789ab") is not None


def test_an_old_sqlite_store_is_upgraded_in_place_with_its_data(tmp_path: Path) -> None:
    db = Database.sqlite(tmp_path / "old.sqlite")
    _make_old(db)
    _check_upgraded(db)


def test_an_old_postgresql_store_is_upgraded_in_place_with_its_data(desi_db: Any) -> None:
    name = f"labops_old_{uuid.uuid4().hex[:8]}"
    creds = json.loads((desi_db.lab_dir / "secrets.json").read_text())["postgres"]
    create_database(desi_db.lab_dir, name, owner=creds["admin_user"])
    db = Database(dialect="postgres", target=re.sub(r"dbname=\S+", f"dbname={name}", desi_db.admin_dsn))
    _make_old(db)
    _check_upgraded(db)


def test_a_store_from_a_newer_labops_is_refused_with_the_versions(tmp_path: Path) -> None:
    db = Database.sqlite(tmp_path / "new.sqlite")
    db.ensure_schema()
    with db.session() as s:
        s.execute("INSERT INTO labops_schema (version, description, applied) VALUES (99, 'the future', 0)")
        s.commit()
    fresh = Database.sqlite(tmp_path / "new.sqlite")
    # A new process (the cache of stores already checked is per process).
    from core import store

    store._READY.discard(("sqlite", str(tmp_path / "new.sqlite")))
    with pytest.raises(ConfigError, match=r"schema version 99, newer than this LabOps knows"):
        fresh.ensure_schema()


def test_a_transaction_commits_or_rolls_back_whole(tmp_path: Path) -> None:
    db = Database.sqlite(tmp_path / "tx.sqlite")
    with db.transaction(lock="slack_seen") as s:
        s.execute("INSERT INTO slack_seen (signature, seen) VALUES (?, ?)", ("a", 1.0))
    with pytest.raises(RuntimeError), db.transaction(lock="slack_seen") as s:
        s.execute("INSERT INTO slack_seen (signature, seen) VALUES (?, ?)", ("b", 1.0))
        raise RuntimeError("half-way")
    with db.session() as s:
        assert [r[0] for r in s.execute("SELECT signature FROM slack_seen").fetchall()] == ["a"]


def test_stores_opened_at_once_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite"
    _make_old(Database.sqlite(path))
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Database.sqlite(path).ensure_schema()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Database.sqlite(path).session() as s:
        versions = [r[0] for r in s.execute("SELECT version FROM labops_schema ORDER BY version").fetchall()]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_labops_db_status_and_upgrade(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    _make_old(Database.sqlite(lab / "labops.sqlite"))
    run: Callable[..., Any] = lambda *a: CliRunner().invoke(cli, ["--lab-dir", str(lab), "db", *a])  # noqa: E731
    before = run("status")
    assert before.exit_code == 1 and "version 0 of" in before.output and "labops db upgrade" in before.output
    done = run("upgrade")
    assert done.exit_code == 0 and "applied 2" in done.output and "applied 1" in done.output
    assert run("status").exit_code == 0
