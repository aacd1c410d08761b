"""Run a checked query as the SELECT-only role: READ ONLY transaction, statement timeout, bounded rows."""

from __future__ import annotations

import csv
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql as pgsql

from core.config import Settings
from core.endpoints import postgres_dsn
from core.errors import BackendUnavailable, InvalidArguments, QueryError

__all__ = ["MAX_RESULT_BYTES", "QueryResult", "export_csv", "export_target", "run_query"]

# Rows are bounded by LIMIT; bytes too (one array_agg row can be megabytes).
MAX_RESULT_BYTES = 2 * 1024 * 1024

Params = dict[str, Any] | tuple[Any, ...] | None


@dataclass(kw_only=True, frozen=True)
class QueryResult:
    """Columns, rows (at most ``limit``), whether more existed, the SQL and how long it took."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    sql: str
    ms: float

    def as_data(self) -> dict[str, Any]:
        """The envelope's data."""
        return {
            "columns": self.columns,
            "rows": self.rows,
            "row_count": len(self.rows),
            "truncated": self.truncated,
            "sql": self.sql,
            "ms": round(self.ms, 1),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)  # Decimal (zpix.id is numeric(39)), dates, ...


def run_query(
    settings: Settings, query: str | pgsql.SQL | pgsql.Composed, params: Params = None, *, limit: int
) -> QueryResult:
    """Run ``query`` (which should ask for ``limit + 1`` rows) and keep ``limit``."""
    dsn = postgres_dsn(settings)
    timeout = settings.postgres.statement_timeout_ms
    started = time.monotonic()
    try:
        with psycopg.connect(dsn, connect_timeout=int(settings.postgres.connect_timeout)) as conn:
            conn.read_only = True
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(pgsql.SQL("SET LOCAL statement_timeout = {}").format(pgsql.Literal(timeout)))
                # A client that goes away (a killed process, a dropped connection) would otherwise leave the query
                # and its parallel workers running until the timeout: PostgreSQL notices only when it next writes.
                cur.execute("SET LOCAL client_connection_check_interval = '1s'")
                cur.execute(
                    pgsql.SQL("SET LOCAL search_path = {}").format(pgsql.Identifier(settings.postgres.schema_name))
                )
                cur.execute(query, params)
                rows = cur.fetchmany(limit + 1)
                columns = [d.name for d in cur.description or []]
                text = query if isinstance(query, str) else query.as_string(conn)
    except pgerrors.QueryCanceled as exc:
        raise QueryError(
            f"the query ran longer than {timeout} ms and was cancelled: add filters (spectype, z range, a smaller "
            "cone) or raise postgres.statement_timeout_ms"
        ) from exc
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendUnavailable("PostgreSQL", first, setting="postgres.dsn") from exc
    except psycopg.Error as exc:
        diag = exc.diag.message_primary or str(exc)
        hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
        raise QueryError(f"PostgreSQL refused the query: {diag}{hint}") from exc
    kept: list[list[Any]] = []
    size, truncated = 0, len(rows) > limit
    for raw in rows[:limit]:
        row = [_plain(v) for v in raw]
        size += sum(len(str(v)) for v in row)
        if size > MAX_RESULT_BYTES:
            if not kept:
                raise QueryError(
                    f"one row of the result is larger than {MAX_RESULT_BYTES // 1024 // 1024} MiB: aggregate less "
                    "(e.g. count(*) instead of array_agg) or select fewer columns"
                )
            truncated = True
            break
        kept.append(row)
    return QueryResult(
        columns=columns, rows=kept, truncated=truncated, sql=text, ms=(time.monotonic() - started) * 1000
    )


def export_target(settings: Settings, name: str, *, overwrite: bool) -> Path:
    """Where an export goes, checked before the query runs: a plain ``.csv`` name in ``<lab_dir>/exports``."""
    base = (settings.lab_dir / "exports").resolve()
    plain = (
        name.endswith(".csv")
        and len(name) <= 100
        and name not in (".csv",)
        and not name.startswith(".")
        and all(c.isprintable() and c not in "/\\" for c in name)
    )
    if not plain:
        raise InvalidArguments(f"out_csv must be a plain file name ending in .csv (e.g. 'qsos.csv'), not {name!r}")
    target = base / name
    if target.is_symlink():
        # Written through, a link would put the rows wherever it points (another user's file, outside the lab).
        raise InvalidArguments(
            f"{name} in the exports folder is a symbolic link, and exports are never written through links: "
            "choose another name (or remove the link)"
        )
    if target.exists() and not overwrite:
        raise InvalidArguments(f"{name} already exists in the exports folder; choose another name or set overwrite")
    return target


def export_csv(result: QueryResult, target: Path) -> Path:
    """Write the rows to ``target`` (from :func:`export_target`), atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # A new file of our own (never an existing name or a link someone left), renamed over the target at the end.
    fd, partial_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    partial = Path(partial_name)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(result.columns)
            writer.writerows(result.rows)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target
