"""Where approvals and the audit log live: SQLite in the lab directory, or PostgreSQL (shared by replicas).

Both speak the same small SQL (``?`` placeholders, rewritten for psycopg). :meth:`Session.exclusive`
serialises writers — ``BEGIN IMMEDIATE`` in SQLite, a table lock in PostgreSQL — so the audit chain cannot
fork and an approval cannot be used twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg

from core.config import Settings
from core.errors import AuditError

__all__ = ["Database", "Session"]


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

    def ensure_column(self, table: str, column: str, kind: str) -> None:
        """Add ``column`` to a table made by an older version (a store outlives upgrades)."""
        if self.dialect == "postgres":
            self.conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
            return
        columns = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})").fetchall()}
        if column not in columns:
            self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

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
        """A connection for one unit of work."""
        try:
            if self.dialect == "postgres":
                with psycopg.connect(self.target, connect_timeout=10) as conn:
                    yield Session(conn, "postgres")
            else:
                with closing(sqlite3.connect(self.target, timeout=30, isolation_level=None)) as conn:
                    yield Session(conn, "sqlite")
        except (sqlite3.Error, psycopg.Error) as exc:
            raise AuditError(f"cannot use the audit and approval store {self.where}: {exc}") from exc
