"""DESI DR1 query tools (psycopg, SELECT-only role): named queries and checked read-only SQL."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from tools.base import ResourceRef, Tool, ToolArgs, ToolResult, Toolset
from tools.context import ToolContext
from tools.desi.queries import cone_search_sql, count_sql, object_sql, redshift_range_sql
from tools.desi.runner import QueryResult, export_csv, export_target, run_query
from tools.desi.sqlguard import check_sql

__all__ = ["TOOLS", "TOOLSET"]

SPECTYPE = {"spectype": ("type", "class", "object_type", "spectral_type")}

Spectype = Literal["GALAXY", "QSO", "STAR"]


def _table_text(result: QueryResult, max_rows: int = 8, width: int = 40) -> str:
    def cell(v: Any) -> str:
        # Identifiers (TARGETIDs are 18-digit integers) are never shortened: people copy them.
        if isinstance(v, int | float) and not isinstance(v, bool):
            return f"{v:.7g}" if isinstance(v, float) else str(v)
        text = str(v)
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = [" | ".join(cell(c) for c in result.columns)]
    lines += [" | ".join(cell(v) for v in row) for row in result.rows[:max_rows]]
    if len(result.rows) > max_rows:
        lines.append(f"… {len(result.rows) - max_rows} more rows in data")
    return "\n".join(lines)


def _envelope(result: QueryResult, what: str) -> ToolResult:
    if not result.rows:
        return ToolResult.no_data(f"no rows: {what}", data=result.as_data())
    more = " (more rows exist: raise limit or add filters)" if result.truncated else ""
    return ToolResult.ok(f"{len(result.rows)} rows: {what}{more}\n{_table_text(result)}", data=result.as_data())


class ObjectArgs(ToolArgs):
    """Arguments of ``desi.object``."""

    targetid: int = Field(
        ..., ge=-(2**63), le=2**63 - 1, description="DESI TARGETID, the full 64-bit integer exactly as given."
    )


def desi_object(ctx: ToolContext, args: ObjectArgs) -> ToolResult:
    """Look up one object by TARGETID: every spectrum in desi_dr1.zpix (primary first) with its photometry."""
    schema = ctx.settings.postgres.schema_name
    result = run_query(ctx.settings, object_sql(schema), {"targetid": args.targetid, "n": 51}, limit=50)
    return _envelope(result, f"TARGETID {args.targetid}")


class CountArgs(ToolArgs):
    """Arguments of ``desi.count_by_spectype``."""

    spectype: Spectype | None = Field(None, description="Only this class; omit for GALAXY, QSO and STAR.")
    z_min: float | None = Field(None, ge=-0.1, le=7, description="Lowest redshift z (inclusive).")
    z_max: float | None = Field(None, ge=-0.1, le=7, description="Highest redshift z (inclusive).")
    good_only: bool = Field(True, description="Only reliable redshifts (ZWARN = 0).")
    primary_only: bool = Field(True, description="Only the best spectrum per target (ZCAT_PRIMARY).")
    survey: Literal["main", "sv1", "sv2", "sv3", "cmx", "special"] | None = Field(None, description="Only this survey.")
    program: Literal["dark", "bright", "backup", "other"] | None = Field(None, description="Only this program.")


def count_by_spectype(ctx: ToolContext, args: CountArgs) -> ToolResult:
    """Count DESI DR1 redshifts by SPECTYPE (GALAXY/QSO/STAR), optionally within a z range, survey or program."""
    params = args.model_dump()
    result = run_query(ctx.settings, count_sql(ctx.settings.postgres.schema_name, params), params, limit=100)
    total = sum(int(r[1]) for r in result.rows)
    return _envelope(result, f"{total:,} objects counted by class{_count_scope(args)}")


def _count_scope(args: CountArgs) -> str:
    """Which rows a count is of, said with it: "7,759 objects" of good primary redshifts is not every row."""
    parts = []
    if args.z_min is not None or args.z_max is not None:
        low = f"{args.z_min:g} <= " if args.z_min is not None else ""
        high = f" <= {args.z_max:g}" if args.z_max is not None else ""
        parts.append(f"{low}z{high}")
    named = (("class", args.spectype), ("survey", args.survey), ("program", args.program))
    parts += [f"{name} {value}" for name, value in named if value]
    if args.good_only:
        parts.append("reliable redshifts only (ZWARN = 0)")
    if args.primary_only:
        parts.append("best spectrum per target (ZCAT_PRIMARY)")
    return f" ({'; '.join(parts)})" if parts else " (every row of zpix)"


class RangeArgs(ToolArgs):
    """Arguments of ``desi.redshift_range``."""

    spectype: Spectype = Field(..., description="Object class.")
    z_min: float = Field(..., ge=-0.1, le=7, description="Lowest redshift z (inclusive).")
    z_max: float = Field(..., ge=-0.1, le=7, description="Highest redshift z (inclusive).")
    good_only: bool = Field(True, description="Only reliable redshifts (ZWARN = 0).")
    limit: int = Field(100, ge=1, le=10000, description="Rows to return.")
    order: Literal["z", "-z"] = Field("z", description="'z' lowest redshift first, '-z' highest first.")

    @model_validator(mode="after")
    def _range(self) -> RangeArgs:
        if self.z_min > self.z_max:
            raise ValueError("z_min must not be larger than z_max")
        return self


def redshift_range(ctx: ToolContext, args: RangeArgs) -> ToolResult:
    """List primary DESI objects of one class with z_min <= z <= z_max (ordered by z), with their positions."""
    params = {**args.model_dump(), "primary_only": True, "n": min(args.limit, ctx.settings.postgres.max_limit) + 1}
    limit = min(args.limit, ctx.settings.postgres.max_limit)
    query = redshift_range_sql(ctx.settings.postgres.schema_name, params, descending=args.order == "-z")
    return _envelope(
        run_query(ctx.settings, query, params, limit=limit), f"{args.spectype} with {args.z_min} <= z <= {args.z_max}"
    )


class ConeArgs(ToolArgs):
    """Arguments of ``desi.cone_search``."""

    ra: float = Field(..., ge=0, lt=360, description="Right ascension of the centre in degrees (0-360).")
    dec: float = Field(..., ge=-90, le=90, description="Declination of the centre in degrees (-90 to 90).")
    radius_arcmin: float = Field(..., gt=0, le=60, description="Search radius in ARCMINUTES (max 60).")
    spectype: Spectype | None = Field(None, description="Only this class.")
    limit: int = Field(200, ge=1, le=10000, description="Rows to return, nearest first.")


def cone_search(ctx: ToolContext, args: ConeArgs) -> ToolResult:
    """Find DESI objects within a radius (arcminutes) of a sky position, nearest first, with angular distance."""
    limit = min(args.limit, ctx.settings.postgres.max_limit)
    query = cone_search_sql(
        ctx.settings.postgres.schema_name,
        ra=args.ra,
        dec=args.dec,
        radius_arcmin=args.radius_arcmin,
        spectype=args.spectype,
    )
    params = {"ra": args.ra, "dec": args.dec, "radius": args.radius_arcmin, "spectype": args.spectype, "n": limit + 1}
    return _envelope(
        run_query(ctx.settings, query, params, limit=limit),
        f"within {args.radius_arcmin} arcmin of RA {args.ra}, Dec {args.dec}",
    )


class QueryArgs(ToolArgs):
    """Arguments of ``desi.query``."""

    sql: str = Field(
        ...,
        max_length=20_000,
        description="ONE PostgreSQL SELECT over desi_dr1.zpix and/or desi_dr1.photometry (full table names).",
    )
    limit: int | None = Field(None, ge=1, le=2**31, description="Maximum rows (default 1000, at most 10000).")
    out_csv: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.csv$",
        description="Also write the rows to this CSV file name in the lab's exports folder, e.g. 'qsos.csv'.",
    )
    overwrite: bool = Field(False, description="Replace an existing export of that name.")


def desi_query(ctx: ToolContext, args: QueryArgs) -> ToolResult:
    """Run one read-only SQL SELECT on the DESI tables.

    For anything the named queries cannot answer. Writes, DDL, several statements, other schemas and
    unsafe functions are refused with the reason; a LIMIT is always applied.
    """
    pg = ctx.settings.postgres
    checked = check_sql(args.sql, schema=pg.schema_name, limit=args.limit or pg.default_limit, max_limit=pg.max_limit)
    target = export_target(ctx.settings, args.out_csv, overwrite=args.overwrite) if args.out_csv else None
    result = run_query(ctx.settings, checked.sql, limit=checked.limit)
    envelope = _envelope(result, "read-only query")
    if target is not None and result.rows:
        path = export_csv(result, target)
        envelope.data["csv_path"] = str(path)
        envelope.message += f"\nCSV written to {path}"
    return envelope


def _tables(ctx: ToolContext, args: Any) -> list[ResourceRef]:
    s = ctx.settings.postgres.schema_name
    return [ResourceRef(type="Table", id=f"{s}.zpix"), ResourceRef(type="Table", id=f"{s}.photometry")]


TOOLS: list[Tool[Any]] = [
    Tool(
        name="desi.object",
        args_model=ObjectArgs,
        fn=desi_object,
        risk="read",
        resources=_tables,
        summary=lambda a: f"look up TARGETID {a.targetid}",
        numbers=lambda a: {"rows": 50},
        words=("targetid", "target"),
        aliases={"targetid": ("target_id", "id")},
        examples=("What do we know about DESI target 39627000000126704?",),
    ),
    Tool(
        name="desi.count_by_spectype",
        args_model=CountArgs,
        fn=count_by_spectype,
        risk="read",
        resources=_tables,
        summary=lambda a: "count DESI objects by class" + (f" ({a.spectype})" if a.spectype else ""),
        numbers=lambda a: {"rows": 3},
        words=("how many", "count", "counts", "number of"),
        aliases=SPECTYPE,
        examples=("How many quasars with a good redshift are there?", "Count the DESI objects by class."),
    ),
    Tool(
        name="desi.redshift_range",
        args_model=RangeArgs,
        fn=redshift_range,
        risk="read",
        resources=_tables,
        summary=lambda a: f"list {a.spectype} with {a.z_min} <= z <= {a.z_max}",
        numbers=lambda a: {"rows": a.limit},
        words=("between", "redshift range", "range"),
        aliases=SPECTYPE,
        examples=("Find quasars with redshift between 2.1 and 3.5.",),
    ),
    Tool(
        name="desi.cone_search",
        args_model=ConeArgs,
        fn=cone_search,
        risk="read",
        resources=_tables,
        summary=lambda a: f"cone search {a.radius_arcmin}' around RA {a.ra} Dec {a.dec}",
        numbers=lambda a: {"rows": a.limit},
        words=("arcmin", "arcminutes", "within", "near", "around", "cone"),
        aliases={"radius_arcmin": ("radius", "radius_arcminutes", "arcmin"), **SPECTYPE},
        examples=("Which objects are within 5 arcminutes of RA 150.1, Dec 2.2?",),
    ),
    Tool(
        name="desi.query",
        args_model=QueryArgs,
        fn=desi_query,
        risk="read",
        resources=_tables,
        summary=lambda a: f"read-only SQL: {' '.join(a.sql.split())[:80]}",
        numbers=lambda a: {"rows": a.limit or 1000},
        words=("sql", "select", "query"),
        aliases={"sql": ("query", "statement", "sql_query")},
        examples=("Run this SQL: SELECT spectype, count(*) FROM desi_dr1.zpix GROUP BY spectype",),
        # An SQL statement in a message, read or write: the tool runs it or says why not (only SELECT).
        recognizes=(
            r"(?is)\bselect\b.+\bfrom\b",
            r"(?i)\b(?:update\s+[\w.\"]+\s+set|delete\s+from|insert\s+into|drop\s+(?:table|schema)|truncate\s+table"
            r"|alter\s+table|create\s+table)\b",
        ),
    ),
]

TOOLSET = Toolset(
    name="desi",
    words=("desi", "redshift", "quasar", "quasars", "galaxy", "galaxies", "qso", "targetid", "dr1", "sql",
           "spectype", "arcmin", "ra", "dec", "cone", "stars", "zpix", "catalog", "catalogue"),
    title="the DESI DR1 tables",
    tools=TOOLS,
)  # fmt: skip
