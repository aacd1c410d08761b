"""The read-only SQL checker: one SELECT over the DESI tables, allow-listed functions, a bounded result.

SQL is parsed with sqlglot (PostgreSQL dialect) and accepted only when the whole tree is a single
query: no writes anywhere (also not in CTEs), no ``SELECT INTO``, no locking clause, no DDL or
``COPY``, no second statement, only the allowed schema's tables, only functions on an allow-list
(aggregates, maths including the astro trigonometry, strings, dates, window functions), and no join
without a join condition. The text that runs is re-generated from the checked tree (comments
dropped) and wrapped in an outer ``LIMIT``. Refusals raise :class:`~core.errors.QueryRefused` with
the reason and what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from core.errors import QueryRefused

__all__ = ["ALLOWED_FUNCTIONS", "CheckedQuery", "check_sql"]

TABLES = frozenset({"zpix", "photometry"})

# sqlglot node keys (typed functions) and plain names (functions sqlglot does not know).
ALLOWED_FUNCTIONS = frozenset(
    {
        # aggregates and statistics
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "stddev",
        "stddevsamp",
        "stddevpop",
        "variance",
        "variancepop",
        "percentilecont",
        "percentiledisc",
        "median",
        "corr",
        "covarsamp",
        "covarpop",
        "arrayagg",
        "groupconcat",
        "stringagg",
        "logicaland",
        "logicalor",
        "booland",
        "boolor",
        "bool_and",
        "bool_or",
        "countif",
        "anyvalue",
        "mode",
        "regr_slope",
        "regr_intercept",
        # maths and the trigonometry cone searches need
        "abs",
        "round",
        "floor",
        "ceil",
        "sqrt",
        "cbrt",
        "exp",
        "ln",
        "log",
        "log10",
        "pow",
        "power",
        "mod",
        "sign",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "degrees",
        "radians",
        "pi",
        "trunc",
        "widthbucket",
        "greatest",
        "least",
        "div",
        "random_not_allowed_placeholder",
        # conditionals and casts
        "coalesce",
        "nullif",
        "case",
        "if",
        "cast",
        "trycast",
        # sqlglot's names for lpad/rpad and to_timestamp
        "pad",
        "strtotime",
        "unixtotime",
        "not",
        # strings
        "lower",
        "upper",
        "length",
        "substring",
        "trim",
        "concat",
        "left",
        "right",
        "replace",
        "strposition",
        "lpad",
        "rpad",
        "initcap",
        "split_part",
        "splitpart",
        "regexplike",
        "startswith",
        # dates
        "currentdate",
        "currenttimestamp",
        "datetrunc",
        "extract",
        "timestamptrunc",
        "todate",
        "totimestamp",
        # windows
        "rownumber",
        "rank",
        "denserank",
        "percentrank",
        "cumedist",
        "ntile",
        "lag",
        "lead",
        "firstvalue",
        "lastvalue",
        "nthvalue",
        "window",
    }
) - {"random_not_allowed_placeholder"}

_WRITES: tuple[type[exp.Expression], ...] = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Copy,
    exp.TruncateTable,
    exp.Set,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Grant,
)


@dataclass(kw_only=True, frozen=True)
class CheckedQuery:
    """A query that passed the checker: the SQL to run (limit applied) and the limit."""

    sql: str
    limit: int


def _function_name(node: exp.Func) -> str:
    """The key the allow-list uses: sqlglot's node key, or the written name of a function it does not know."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.key).lower()


def _written_name(node: exp.Func) -> str:
    """A function as the user wrote it (``generate_series``, not sqlglot's ``explodinggenerateseries``)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql(dialect="postgres", comments=False).split("(")[0].strip().lower() or str(node.key)


def _sql_word(node: Any) -> str:
    """The SQL keyword a statement node stands for (``TRUNCATE``, ``VACUUM``), for messages people can read."""
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    try:
        words = node.sql(dialect="postgres", comments=False).split()
    except (SqlglotError, ValueError):
        words = []
    return words[0].upper() if words else str(node.key).upper()


def _refuse(reason: str) -> QueryRefused:
    return QueryRefused(f"query refused: {reason}")


MAX_SQL_CHARS = 20_000
MAX_NESTING = 24


def _nesting(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


def check_sql(sql: str, *, schema: str, limit: int, max_limit: int) -> CheckedQuery:
    """Check ``sql`` and return the SQL that may run; raises QueryRefused with the reason."""
    text = (sql or "").strip().rstrip(";").strip()
    if not text:
        raise _refuse("the SQL is empty; write one SELECT over desi_dr1.zpix / desi_dr1.photometry")
    # Bounded before parsing: the parser recurses per nesting level.
    if len(text) > MAX_SQL_CHARS:
        raise _refuse(f"it is {len(text)} characters long; the limit is {MAX_SQL_CHARS}")
    if "\x00" in text:
        raise _refuse("it contains a NUL character")
    if _nesting(text) > MAX_NESTING:
        raise _refuse(f"it nests parentheses {_nesting(text)} deep; the limit is {MAX_NESTING}")
    try:
        statements = [s for s in sqlglot.parse(text, read="postgres") if s is not None]
    except SqlglotError as exc:  # ParseError, and TokenError for text the tokenizer cannot split ('$', unclosed $$)
        first = str(exc).splitlines()[0]
        raise _refuse(f"it does not parse as PostgreSQL ({first}); fix the syntax") from exc
    except RecursionError as exc:
        raise _refuse("it is nested too deeply to check; simplify it") from exc
    if len(statements) != 1:
        raise _refuse(f"{len(statements)} statements; send exactly one SELECT (no ';' inside)")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise _refuse(f"only SELECT queries may run here, not {_sql_word(tree)}")
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise _refuse(f"it contains {_sql_word(node)} (writes and DDL are not allowed, also not inside a CTE)")
        if isinstance(node, exp.Into):
            raise _refuse("SELECT INTO creates a table; remove INTO")
        if isinstance(node, exp.Lock):
            raise _refuse("FOR UPDATE/SHARE takes row locks; remove the locking clause")
        if isinstance(node, exp.With) and node.args.get("recursive"):
            raise _refuse("recursive CTEs can run without end; write the query without RECURSIVE")
        if isinstance(node, exp.Cast) and _catalog_type(node):
            raise _refuse(f"casts to {node.to.sql()} look into the system catalog; they are not allowed")
        # AND/OR are Func subclasses in sqlglot but operators in SQL.
        if isinstance(node, exp.Func) and not isinstance(node, exp.Window | exp.Connector):
            name = _function_name(node)
            if name not in ALLOWED_FUNCTIONS:
                raise _refuse(
                    f"function {_written_name(node)}() is not allowed here (only aggregates, maths, strings, dates)"
                )
    _check_tables(tree, schema)
    _check_joins(tree)
    if limit < 1:
        raise _refuse("limit must be at least 1")
    effective = min(limit, max_limit)
    inner = tree.sql(dialect="postgres", comments=False)
    return CheckedQuery(sql=f"SELECT * FROM ({inner}) AS q LIMIT {effective + 1}", limit=effective)


def _check_tables(tree: Any, schema: str) -> None:
    ctes = {str(cte.alias_or_name).lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise _refuse("table functions (e.g. generate_series) are not allowed in FROM")
        name, db = str(table.name).lower(), str(table.db or "").lower()
        if table.catalog:
            raise _refuse(f"{table.sql(dialect='postgres')}: database-qualified names are not allowed")
        if not db and name in ctes:
            continue
        if db and db != schema.lower():
            raise _refuse(f"schema {db} is not allowed; only {schema}.zpix and {schema}.photometry")
        if name not in TABLES:
            raise _refuse(f"table {name} is not allowed; only {schema}.zpix and {schema}.photometry")


def _catalog_type(cast: exp.Cast) -> bool:
    name = cast.to.sql(dialect="postgres").lower()
    return name.startswith("reg") or name in ("oid", "xid", "cid", "tid", "pg_lsn")


_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.NullSafeEQ)


def _tables_of(node: Any) -> set[str]:
    """The table qualifiers of the columns in ``node`` (``a`` of ``a.x``); unqualified columns add none."""
    return {str(c.table).lower() for c in node.find_all(exp.Column) if c.table}


def _relates(left: Any, right: Any) -> bool:
    """Whether two sides of a comparison tie rows of different tables together.

    ``a.x = a.x`` or ``a.x = a.y`` holds (or not) for a row of ``a`` alone, whatever the other table's row:
    as a join condition it is a cross join in disguise.
    """
    if not (left.find(exp.Column) and right.find(exp.Column)):
        return False
    if left.sql() == right.sql():
        return False
    lt, rt = _tables_of(left), _tables_of(right)
    return not (lt and rt and lt == rt and len(lt) == 1)


def _restricts(condition: Any) -> bool:
    """Whether a join condition limits which pairs of rows match.

    ``ON true``, ``ON 1 = 1``, ``ON a.x = a.x`` and ``ON a.x = p.x OR true`` do not.
    """
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        return _restricts(condition.this) or _restricts(condition.expression)
    if isinstance(condition, exp.Or):
        return _restricts(condition.this) and _restricts(condition.expression)
    if isinstance(condition, _COMPARISONS):
        return _relates(condition.this, condition.expression)
    if isinstance(condition, exp.Between):
        return _relates(condition.this, condition.args["low"]) and _relates(condition.this, condition.args["high"])
    return False


def _check_joins(tree: Any) -> None:
    advice = "join with ON z.targetid = p.targetid"
    for select in tree.find_all(exp.Select):
        for join in select.args.get("joins") or []:
            on, using = join.args.get("on"), join.args.get("using")
            if not on and not using:
                raise _refuse(f"a join without ON/USING (cross or comma join) would multiply the tables; {advice}")
            if on is not None and not _restricts(on):
                raise _refuse(
                    f"the join condition {on.sql()} does not compare a column of one table with a column of the "
                    f"other, so every row would meet every row (a cross join); {advice}"
                )
