"""DESI tools against the embedded PostgreSQL, checked against independent SQL and numpy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from core.config import Settings, load_settings
from policies.guard import Caller, Guard

CALLER = Caller(user="researcher1", channel="cli")


@pytest.fixture(scope="module")
def guard(desi_db: Any) -> Guard:
    return Guard.from_settings(load_settings(None, lab_dir=desi_db.lab_dir))


def _admin(desi_db: Any, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(desi_db.admin_dsn) as conn:
        return conn.execute(sql, params).fetchall()


def test_count_by_spectype_matches_independent_sql(guard: Guard, desi_db: Any) -> None:
    result = guard.call("desi.count_by_spectype", {"z_min": 0.5, "z_max": 2.0}, caller=CALLER)
    got = {row[0]: row[1] for row in result.data["rows"]}
    want = dict(
        _admin(
            desi_db,
            "SELECT spectype, count(*) FROM desi_dr1.zpix WHERE zwarn = 0 AND zcat_primary "
            "AND z BETWEEN 0.5 AND 2.0 GROUP BY spectype",
        )
    )
    assert got == want and set(got) == {"GALAXY", "QSO"}
    everything = guard.call("desi.count_by_spectype", {"good_only": False, "primary_only": False}, caller=CALLER)
    assert sum(r[1] for r in everything.data["rows"]) == _admin(desi_db, "SELECT count(*) FROM desi_dr1.zpix")[0][0]
    # The message says which rows were counted: asked how many objects have z above 2, "7,759 objects" of the
    # reliable primary redshifts read as every object.
    assert "0.5 <= z <= 2" in result.message and "ZWARN = 0" in result.message and "ZCAT_PRIMARY" in result.message
    assert "every row of zpix" in everything.message


def test_redshift_range_and_object(guard: Guard, desi_db: Any) -> None:
    args = {"spectype": "QSO", "z_min": 2.1, "z_max": 2.2, "limit": 10000}
    result = guard.call("desi.redshift_range", args, caller=CALLER)
    (want,) = _admin(
        desi_db,
        "SELECT count(*) FROM desi_dr1.zpix WHERE spectype = 'QSO' AND zwarn = 0 "
        "AND zcat_primary AND z BETWEEN 2.1 AND 2.2",
    )[0]
    zs = [row[2] for row in result.data["rows"]]
    assert len(zs) == want and zs == sorted(zs) and all(2.1 <= z <= 2.2 for z in zs)
    bad = guard.call("desi.redshift_range", {"spectype": "QSO", "z_min": 3, "z_max": 2}, caller=CALLER)
    assert bad.status == "error" and "z_min" in bad.message

    (dup,) = _admin(desi_db, "SELECT targetid FROM desi_dr1.zpix GROUP BY targetid HAVING count(*) > 1 LIMIT 1")[0]
    obj = guard.call("desi.object", {"targetid": dup}, caller=CALLER)
    assert obj.status == "ok" and obj.data["row_count"] == 2
    primary = obj.data["columns"].index("zcat_primary")
    assert [row[primary] for row in obj.data["rows"]] == [True, False]
    assert guard.call("desi.object", {"targetid": 1}, caller=CALLER).status == "no_data"


@pytest.mark.parametrize(
    ("ra", "dec", "radius"), [(150.0, 20.0, 45.0), (0.2, 10.0, 40.0), (359.9, 30.0, 50.0), (10.0, 79.5, 60.0)]
)
def test_cone_search_is_exact_including_ra_wrap(
    guard: Guard, desi_db: Any, ra: float, dec: float, radius: float
) -> None:
    rows = _admin(desi_db, "SELECT p.targetid, p.ra, p.dec FROM desi_dr1.photometry p")
    ids = np.array([r[0] for r in rows])
    r2, d2 = np.radians([r[1] for r in rows]), np.radians([r[2] for r in rows])
    r1, d1 = np.radians(ra), np.radians(dec)
    hav = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    dist = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1)))) * 60
    # Skip anything within a hair of the edge, where float rounding could differ between numpy and PostgreSQL.
    want = set(ids[dist <= radius - 1e-6].tolist())
    edge = set(ids[np.abs(dist - radius) < 1e-6].tolist())
    result = guard.call(
        "desi.cone_search", {"ra": ra, "dec": dec, "radius_arcmin": radius, "limit": 10000}, caller=CALLER
    )
    got = {row[0] for row in result.data["rows"]}
    assert got - edge == want
    dists = [row[-1] for row in result.data["rows"]]
    assert dists == sorted(dists)


HOSTILE = [
    "SELECT 1; DROP TABLE desi_dr1.zpix",
    "SELECT * FROM desi_dr1.zpix; DELETE FROM desi_dr1.zpix",
    "WITH gone AS (DELETE FROM desi_dr1.zpix RETURNING targetid) SELECT count(*) FROM gone",
    "WITH x AS (UPDATE desi_dr1.zpix SET z = 0 RETURNING 1) SELECT * FROM x",
    "SELECT 1 /* harmless */; /* then */ TRUNCATE desi_dr1.zpix",
    "SELECT 1 -- comment\n; DROP TABLE desi_dr1.photometry",
    "SELECT pg_sleep(30)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM dblink('host=evil', 'select 1') AS t(x int)",
    "SELECT lo_import('/etc/shadow')",
    "SELECT * INTO desi_dr1.copy FROM desi_dr1.zpix",
    "SELECT * FROM desi_dr1.zpix FOR UPDATE",
    "SELECT * FROM information_schema.tables",
    "SELECT usename, passwd FROM pg_catalog.pg_shadow",
    "SELECT * FROM public.secrets",
    "SELECT set_config('statement_timeout', '0', false)",
    "SELECT count(*) FROM desi_dr1.zpix, desi_dr1.photometry",
    "SELECT count(*) FROM desi_dr1.zpix a CROSS JOIN desi_dr1.zpix b",
    "COPY desi_dr1.zpix TO '/tmp/out.csv'",
    "CREATE TABLE desi_dr1.x AS SELECT 1",
    "INSERT INTO desi_dr1.zpix (id) VALUES (1)",
    "EXPLAIN ANALYZE DELETE FROM desi_dr1.zpix",
    "SELECT * FROM generate_series(1, 100000000)",
    "",
    "SELEKT spectype FROM desi_dr1.zpix",
    "SET ROLE postgres",
    # Cross joins in disguise, unbounded recursion, catalog probes, parser bombs.
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON true",
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON 1 = 1",
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON a.z > 0",
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON a.z = a.z",
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.photometry p ON a.targetid = a.targetid",
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON b.z = b.zerr",
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON (a.targetid = b.targetid OR true)",
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON ((a.z = a.z))",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
    "SELECT 'pg_authid'::regclass",
    "SELECT z::oid FROM desi_dr1.zpix",
    "SELECT " + "(" * 50 + "1" + ")" * 50,
    "SELECT 1 FROM desi_dr1.zpix WHERE spectype = 'QSO\x00'",
    # Text the tokenizer itself cannot split (found by tests/security/test_fuzz_tools.py).
    "$",
    "SELECT $$unclosed FROM desi_dr1.zpix",
]


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_sql_is_refused_with_a_reason(guard: Guard, sql: str) -> None:
    result = guard.call("desi.query", {"sql": sql}, caller=CALLER)
    assert result.status == "error", result.message
    assert result.message.startswith("query refused: ") and len(result.message) > 30


def test_limit_is_enforced_and_csv_export(guard: Guard, desi_db: Any) -> None:
    big = guard.call("desi.query", {"sql": "SELECT targetid, z FROM desi_dr1.zpix", "limit": 50_000}, caller=CALLER)
    assert big.data["row_count"] == 10_000 and big.data["truncated"] and big.data["sql"].endswith("LIMIT 10001")
    default = guard.call("desi.query", {"sql": "SELECT targetid FROM desi_dr1.zpix"}, caller=CALLER)
    assert default.data["row_count"] == 1000
    small = guard.call(
        "desi.query",
        {"sql": "SELECT spectype, avg(z) FROM desi_dr1.zpix GROUP BY 1", "out_csv": "mean_z.csv"},
        caller=CALLER,
    )
    assert small.status == "ok" and Path(small.data["csv_path"]).read_text().startswith("spectype,avg")
    escape = guard.call("desi.query", {"sql": "SELECT 1 AS x", "out_csv": "../../evil.csv"}, caller=CALLER)
    assert escape.status == "error" and "out_csv" in escape.message
    # A link left in the exports folder is named as one (it used to be refused as "not a plain file name").
    outside = Path(small.data["csv_path"]).parent.parent / "outside.csv"
    (Path(small.data["csv_path"]).parent / "linked.csv").symlink_to(outside)
    linked = guard.call("desi.query", {"sql": "SELECT 1 AS x", "out_csv": "linked.csv", "overwrite": True},
                        caller=CALLER)  # fmt: skip
    assert linked.status == "error" and "symbolic link" in linked.message and not outside.exists()
    again = guard.call(
        "desi.query",
        {"sql": "SELECT spectype, avg(z) FROM desi_dr1.zpix GROUP BY 1", "out_csv": "mean_z.csv"},
        caller=CALLER,
    )
    assert again.status == "error" and "already exists" in again.message, "an export is never overwritten silently"


def test_timeout_and_unreachable_database_are_error_envelopes(desi_db: Any, tmp_path: Any) -> None:
    settings = load_settings(None, lab_dir=desi_db.lab_dir)
    slow = settings.model_copy(update={"postgres": settings.postgres.model_copy(update={"statement_timeout_ms": 100})})
    heavy = "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON a.z < b.z"
    result = Guard.from_settings(slow).call("desi.query", {"sql": heavy}, caller=CALLER)
    assert result.status == "error" and "postgres.statement_timeout_ms" in result.message
    down = Settings.model_validate(
        {"lab_dir": tmp_path, "postgres": {"dsn": "host=127.0.0.1 port=9 dbname=x user=x", "connect_timeout": 2}}
    )
    gone = Guard.from_settings(down).call("desi.count_by_spectype", {}, caller=CALLER)
    assert gone.status == "error" and "postgres.dsn" in gone.message


ACCEPTED = [
    "SELECT survey, count(*) AS n, round(avg(z)::numeric, 3) FROM desi_dr1.zpix "
    "WHERE spectype = 'GALAXY' AND (program = 'bright' OR NOT zwarn <> 0) GROUP BY survey",
    "WITH q AS (SELECT targetid, z FROM desi_dr1.zpix WHERE spectype = 'QSO') "
    "SELECT width_bucket(q.z, 0, 5, 10) AS b, count(*) FROM q GROUP BY b ORDER BY b",
    "SELECT p.ra, p.dec, z.z FROM desi_dr1.zpix z JOIN desi_dr1.photometry p ON p.targetid = z.targetid "
    "WHERE degrees(acos(least(1, sin(radians(p.dec)) * sin(radians(10)) + cos(radians(p.dec)) * cos(radians(10)) "
    "* cos(radians(p.ra - 150))))) < 1",
    "SELECT spectype, percentile_cont(0.5) WITHIN GROUP (ORDER BY z) FROM desi_dr1.zpix GROUP BY spectype "
    "UNION ALL SELECT 'ALL', percentile_cont(0.5) WITHIN GROUP (ORDER BY z) FROM desi_dr1.zpix",
    "SELECT targetid, z, rank() OVER (PARTITION BY spectype ORDER BY z DESC) FROM zpix WHERE z IS NOT NULL",
    "SELECT lpad(spectype, 8, '.'), rpad(survey, 6) FROM desi_dr1.zpix",
    "SELECT to_timestamp(0) AS epoch, to_timestamp('2021-05-14', 'YYYY-MM-DD') AS dr1_start",
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON a.targetid = b.targetid AND a.z < b.z",
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.photometry p USING (targetid)",
    "SELECT count(*) FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON a.targetid = b.targetid AND a.z = a.z",
]


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("TRUNCATE desi_dr1.zpix", "not TRUNCATE"),
        ("VACUUM desi_dr1.zpix", "not VACUUM"),
        ("EXPLAIN ANALYZE DELETE FROM desi_dr1.zpix", "not EXPLAIN"),
        ("SELECT generate_series(1, 10)", "generate_series()"),
        ("SELECT now() - pg_sleep(1)", "pg_sleep()"),
        ("WITH x AS (DELETE FROM desi_dr1.zpix RETURNING 1) SELECT * FROM x", "contains DELETE"),
    ],
)
def test_refusals_speak_sql_not_the_parser_s_node_names(guard: Guard, sql: str, words: str) -> None:
    result = guard.call("desi.query", {"sql": sql}, caller=CALLER)
    assert result.status == "error" and words in result.message, result.message
    for internal in ("COMMAND", "TRUNCATETABLE", "exploding", "ANONYMOUS"):
        assert internal not in result.message


def test_a_huge_aggregate_row_is_refused_not_returned(guard: Guard) -> None:
    # One row of about 4 MB: LIMIT cannot bound it, the byte bound does.
    sql = "SELECT string_agg(lpad(spectype, 200, 'x'), ',') FROM desi_dr1.zpix"
    result = guard.call("desi.query", {"sql": sql}, caller=CALLER)
    assert result.status == "error" and "MiB" in result.message and "aggregate less" in result.message


@pytest.mark.parametrize("sql", ACCEPTED)
def test_ordinary_analysis_queries_run(guard: Guard, sql: str) -> None:
    result = guard.call("desi.query", {"sql": sql, "limit": 5}, caller=CALLER)
    assert result.status in {"ok", "no_data"}, result.message


def test_a_query_whose_client_was_killed_ends_with_its_workers(desi_db: Any) -> None:
    # A process killed mid-query used to leave the statement (and its parallel workers) running until the
    # statement timeout: PostgreSQL notices a vanished client only when it next writes to it.
    import os
    import signal
    import subprocess
    import sys
    import time

    import psycopg

    marker = f"killed_client_{os.getpid()}"
    heavy = f"SELECT count(*) AS {marker} FROM desi_dr1.zpix a JOIN desi_dr1.zpix b ON a.z < b.z"
    script = (
        "import sys\nfrom core.config import load_settings\nfrom tools.desi.runner import run_query\n"
        "s = load_settings(None, lab_dir=sys.argv[1], postgres={'statement_timeout_ms': 120000})\n"
        "run_query(s, sys.argv[2], limit=1)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(desi_db.lab_dir), heavy])

    from simlab import postgres

    # The superuser over the lab's private socket: other roles see no query text of the reader's sessions.
    port = postgres.postgres_status(desi_db.lab_dir)["port"]  # type: ignore[index]
    superuser = f"host={postgres.socket_dir(desi_db.lab_dir)} port={port} user=postgres dbname=desi"

    def running() -> int:
        with psycopg.connect(superuser, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchone()
        return int(row[0]) if row else 0

    try:
        deadline = time.monotonic() + 30
        while running() == 0:
            assert child.poll() is None and time.monotonic() < deadline, "the query never started"
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 20  # far below the 120 s statement timeout
        while running() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running() == 0, "the statement (or a parallel worker) outlived its killed client"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
