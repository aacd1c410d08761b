"""Where conversation threads (and their pending approvals) are kept between requests and restarts.

SQLite in the lab directory by default; PostgreSQL when ``agent.checkpoint_dsn`` (or ``audit.database_url``)
is set, so several replicas of the server share threads and pending approvals. A pending approval is an
interrupt in a checkpoint: it survives a restart of the process.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from core.config import Settings
from core.errors import BackendUnavailable

__all__ = ["open_checkpointer"]


def open_checkpointer(settings: Settings) -> tuple[Any, Callable[[], None]]:
    """``(checkpointer, close)`` for the configured store."""
    dsn = settings.agent.checkpoint_dsn or settings.audit.database_url
    if dsn is not None:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        pool = ConnectionPool(
            dsn.get_secret_value(),
            min_size=1,
            max_size=8,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=False,
        )
        try:
            pool.open(wait=True, timeout=15)
            saver = PostgresSaver(pool)  # type: ignore[arg-type]
            saver.setup()
        except (psycopg.Error, TimeoutError) as exc:
            pool.close()
            raise BackendUnavailable(
                "PostgreSQL (checkpoints)",
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                setting="agent.checkpoint_dsn",
            ) from exc
        return saver, pool.close
    from langgraph.checkpoint.sqlite import SqliteSaver

    settings.lab_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.lab_dir / "agent.sqlite", check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    sqlite_saver = SqliteSaver(conn)
    sqlite_saver.setup()
    return sqlite_saver, conn.close
