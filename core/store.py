"""The store every part of LabOps keeps its state in: SQLite in the lab directory, or PostgreSQL shared by replicas.

Approvals, the audit log, request keys, quota reservations, API keys, chat threads, Slack replays, the
agent's waiting conversations and incidents all live here. Both databases speak the same small SQL (``?`` placeholders,
rewritten for psycopg). :meth:`Database.transaction` is the one unit of work: commit at the end, roll back
on any exception, and with ``lock=`` a transaction no other writer of that table can interleave with
(``BEGIN IMMEDIATE`` in SQLite, a table lock in PostgreSQL), so the audit chain cannot fork and an
approval cannot be used twice.

The schema is versioned (:data:`MIGRATIONS`, recorded in ``labops_schema``). A store made by an older
LabOps is brought up to date in place, its data kept, the first time a process opens it (or by ``labops db
upgrade``); a store made by a newer LabOps is refused with the versions named, since this code would not
know its tables.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg

from core.config import Settings
from core.errors import AuditError, ConfigError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Database", "Migration", "Session", "schema_status"]

log = logging.getLogger(__name__)


class Session:
    """One connection: statements, an exclusive write transaction, commit/rollback."""

    def __init__(self, conn: Any, dialect: Literal["sqlite", "postgres"]) -> None:
        self.conn, self.dialect = conn, dialect

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """Run one statement (``?`` placeholders)."""
        if self.dialect == "postgres":
            return self.conn.execute(sql.replace("?", "%s"), params)
        return self.conn.execute(sql, params)

    def exclusive(self, table: str) -> None:
        """Start a transaction that no other writer of ``table`` can interleave with."""
        if self.dialect == "postgres":
            self.conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        else:
            self.conn.execute("BEGIN IMMEDIATE")

    def columns(self, table: str) -> set[str]:
        """The columns ``table`` has now."""
        if self.dialect == "postgres":
            rows = self.conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND table_schema = "
                "current_schema()",
                (table,),
            ).fetchall()
            return {str(r[0]) for r in rows}
        return {str(row[1]) for row in self.conn.execute(f"PRAGMA table_info({table})").fetchall()}

    def add_column(self, table: str, column: str, kind: str) -> None:
        """Add ``column`` unless ``table`` has it (a store made before the column existed)."""
        if column not in self.columns(table):
            self.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def commit(self) -> None:
        """Commit the current transaction."""
        if self.dialect == "postgres":
            self.conn.commit()
        elif self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def rollback(self) -> None:
        """Roll the current transaction back."""
        if self.dialect == "postgres":
            self.conn.rollback()
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


# --- the schema --------------------------------------------------------------------------------------------
@dataclass(kw_only=True, frozen=True)
class Migration:
    """One step of the schema: its version, what it does, and the statements (or a function) that do it."""

    version: int
    description: str
    apply: Callable[[Session], None]


def _statements(*sql: str) -> Callable[[Session], None]:
    def apply(session: Session) -> None:
        for statement in sql:
            session.execute(statement)

    return apply


def _later_columns(session: Session) -> None:
    # Columns added to tables after they first shipped; a store from before has the tables without them.
    session.add_column("request_keys", "steps", "TEXT")
    session.add_column("agent_waits", "result", "TEXT")
    session.add_column("agent_waits", "delivered", "INTEGER")


# Each statement is valid in SQLite and in PostgreSQL, and each migration can run again harmlessly: a store made
# before the schema was versioned (its tables, no version) is brought up from version 0 with its rows kept.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="approvals, audit log, request keys, reservations, API keys, chats, Slack replays, waits",
        apply=_statements(
            "CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS audit (seq BIGINT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, "
            "entry TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS request_keys (key TEXT NOT NULL, tool TEXT NOT NULL, binding TEXT NOT NULL, "
            "state TEXT NOT NULL, result TEXT, started DOUBLE PRECISION NOT NULL, owner TEXT NOT NULL, "
            "PRIMARY KEY (key, tool))",
            "CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, username TEXT NOT NULL, tool TEXT NOT NULL, "
            "amounts TEXT NOT NULL, owner TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, digest TEXT NOT NULL, "
            "username TEXT NOT NULL, trusted INTEGER NOT NULL, created DOUBLE PRECISION NOT NULL, "
            "revoked DOUBLE PRECISION, last_used DOUBLE PRECISION)",
            "CREATE TABLE IF NOT EXISTS chat_threads (history TEXT PRIMARY KEY, thread_id TEXT NOT NULL, "
            "created DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE IF NOT EXISTS chat_replies (request TEXT PRIMARY KEY, reply TEXT, "
            "created DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE IF NOT EXISTS slack_seen (signature TEXT PRIMARY KEY, seen DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE IF NOT EXISTS agent_waits (approval_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, "
            "requester TEXT NOT NULL, channel TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, "
            "resumed DOUBLE PRECISION)",
        ),
    ),
    Migration(
        version=2,
        description="request_keys.steps (resumable provisions), agent_waits.result and .delivered",
        apply=_later_columns,
    ),
    Migration(
        version=3,
        description="indexes: the agent's waits by thread, quota reservations by user",
        apply=_statements(
            "CREATE INDEX IF NOT EXISTS agent_waits_thread ON agent_waits (thread_id)",
            "CREATE INDEX IF NOT EXISTS reservations_user ON reservations (username)",
        ),
    ),
    Migration(
        version=4,
        description="incidents (one open per fingerprint), their Slack threads, what watchers remember",
        apply=_statements(
            "CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, open_key TEXT UNIQUE, "
            "fingerprint TEXT NOT NULL, state TEXT NOT NULL, grp TEXT, opened DOUBLE PRECISION NOT NULL, "
            "updated DOUBLE PRECISION NOT NULL, data TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS incidents_state ON incidents (state)",
            "CREATE TABLE IF NOT EXISTS incident_threads (key TEXT PRIMARY KEY, channel TEXT, ts TEXT, "
            "claimed DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE IF NOT EXISTS watcher_state (name TEXT PRIMARY KEY, data TEXT NOT NULL, "
            "updated DOUBLE PRECISION NOT NULL)",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS labops_schema (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
    "applied DOUBLE PRECISION NOT NULL)"
)


def _tables(session: Session) -> set[str]:
    if session.dialect == "postgres":
        rows = session.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
    else:
        rows = session.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(r[0]) for r in rows}


def _version(session: Session) -> int:
    """The store's schema version: 0 for an empty store, and for tables made before the schema was versioned.

    Such a store may lack tables its LabOps created only when first used; every migration is idempotent
    (``IF NOT EXISTS``, columns added only when missing), so it is brought up from 0 with its rows kept.
    """
    if "labops_schema" in _tables(session):
        row = session.execute("SELECT max(version) FROM labops_schema").fetchone()
        if row is not None and row[0] is not None:
            return int(row[0])
    return 0


@dataclass(kw_only=True, frozen=True)
class SchemaStatus:
    """Where a store's schema stands against this code's."""

    where: str
    version: int
    current: int
    pending: list[Migration]

    @property
    def message(self) -> str:
        """One line for people."""
        if self.version > self.current:
            return (
                f"the store {self.where} is at schema version {self.version}, newer than this LabOps knows "
                f"({self.current}): upgrade LabOps (every replica), or point audit.database_url at another store"
            )
        if self.pending:
            steps = "; ".join(f"{m.version}: {m.description}" for m in self.pending)
            return f"the store {self.where} is at schema version {self.version} of {self.current} (to apply: {steps})"
        return f"the store {self.where} is at schema version {self.version} (current)"


def schema_status(database: Database) -> SchemaStatus:
    """The store's schema version and the migrations it still needs."""
    with database.session() as session:
        version = _version(session)
    pending = [m for m in MIGRATIONS if m.version > version]
    return SchemaStatus(where=database.where, version=version, current=SCHEMA_VERSION, pending=pending)


# --- the database --------------------------------------------------------------------------------------------
_READY: set[tuple[str, str]] = set()
_READY_LOCK = threading.Lock()


@dataclass(kw_only=True, frozen=True)
class Database:
    """A SQLite file or a PostgreSQL DSN."""

    dialect: Literal["sqlite", "postgres"]
    target: str

    @classmethod
    def sqlite(cls, path: Path) -> Database:
        """A SQLite file (its folder is created)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(dialect="sqlite", target=str(path))

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """``audit.database_url`` when set (PostgreSQL), else ``<lab_dir>/labops.sqlite``."""
        if settings.audit.database_url is not None:
            return cls(dialect="postgres", target=settings.audit.database_url.get_secret_value())
        return cls.sqlite(settings.lab_dir / "labops.sqlite")

    @property
    def where(self) -> str:
        """For messages: the file, or 'PostgreSQL (audit.database_url)'."""
        return self.target if self.dialect == "sqlite" else "PostgreSQL (audit.database_url)"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A connection for one unit of work (see :meth:`transaction` for the usual one)."""
        try:
            if self.dialect == "postgres":
                with psycopg.connect(self.target, connect_timeout=10) as conn:
                    yield Session(conn, "postgres")
            else:
                with closing(sqlite3.connect(self.target, timeout=30, isolation_level=None)) as conn:
                    yield Session(conn, "sqlite")
        except (sqlite3.Error, psycopg.Error) as exc:
            raise AuditError(f"cannot use the audit and approval store {self.where}: {exc}") from exc

    @contextmanager
    def transaction(self, *, lock: str | None = None) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on any exception (then re-raised).

        ``lock`` names a table no other writer may interleave with until the commit.
        """
        self.ensure_schema()
        with self.session() as session:
            if lock is not None:
                session.exclusive(lock)
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def ensure_schema(self, *, upgrade: bool = True) -> SchemaStatus:
        """Bring the store to this code's schema (once per process); refuse a store from a newer LabOps."""
        key = (self.dialect, self.target)
        with _READY_LOCK:
            if key in _READY:
                return SchemaStatus(where=self.where, version=SCHEMA_VERSION, current=SCHEMA_VERSION, pending=[])
            status = self._migrate() if upgrade else schema_status(self)
            if status.version > SCHEMA_VERSION or (status.pending and not upgrade):
                raise ConfigError(status.message, setting="audit.database_url")
            _READY.add(key)
            return status

    def _migrate(self) -> SchemaStatus:
        with self.session() as session:
            # One upgrader at a time (replicas starting together): the version table serialises them.
            session.execute(_VERSION_TABLE)
            session.commit()
            session.exclusive("labops_schema")
            try:
                version = _version(session)
                if version > SCHEMA_VERSION:
                    session.rollback()
                    return SchemaStatus(where=self.where, version=version, current=SCHEMA_VERSION, pending=[])
                applied = []
                for migration in MIGRATIONS:
                    if migration.version <= version:
                        continue
                    migration.apply(session)
                    session.execute(
                        "INSERT INTO labops_schema (version, description, applied) VALUES (?, ?, ?)",
                        (migration.version, migration.description, time.time()),
                    )
                    applied.append(migration)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        for migration in applied:
            log.info("store %s: applied schema version %d (%s)", self.where, migration.version, migration.description)
        return SchemaStatus(where=self.where, version=SCHEMA_VERSION, current=SCHEMA_VERSION, pending=[])
