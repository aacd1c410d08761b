"""The embedded DESI database: a SELECT-only role, and data shaped like DR1."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest

from simlab.desi import desi_row_count
from simlab.desi.healpix import ang2pix_nest

WRITES = [
    "INSERT INTO desi_dr1.photometry (targetid) VALUES (1)",
    "UPDATE desi_dr1.zpix SET z = 0",
    "DELETE FROM desi_dr1.zpix",
    "CREATE TABLE desi_dr1.mine (x int)",
    "CREATE TABLE public.mine (x int)",
    "DROP TABLE desi_dr1.zpix",
    "TRUNCATE desi_dr1.zpix",
]


def test_reader_can_select(desi_db: Any) -> None:
    with psycopg.connect(desi_db.reader_dsn) as conn:
        (n,) = conn.execute("SELECT count(*) FROM desi_dr1.photometry").fetchone()  # type: ignore[misc]
    assert n == desi_db.rows
    assert desi_row_count(desi_db.admin_dsn) == desi_db.rows


@pytest.mark.parametrize("statement", WRITES)
def test_reader_cannot_write_even_outside_a_read_only_transaction(desi_db: Any, statement: str) -> None:
    with psycopg.connect(desi_db.reader_dsn, autocommit=True) as conn:
        # The role's read-only default is only a backstop: the grants themselves refuse the write.
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_class_mix_redshifts_and_warnings_look_like_dr1(desi_db: Any) -> None:
    with psycopg.connect(desi_db.admin_dsn) as conn:
        rows = conn.execute(
            "SELECT spectype, count(*), min(z), max(z), avg((zwarn <> 0)::int) FROM desi_dr1.zpix "
            "WHERE zcat_primary GROUP BY spectype"
        ).fetchall()
        (dupes_ok,) = conn.execute(  # type: ignore[misc]
            "SELECT bool_and(n = 1) FROM (SELECT count(*) FILTER (WHERE zcat_primary) AS n FROM desi_dr1.zpix "
            "GROUP BY targetid) t"
        ).fetchone()
    stats = {r[0]: r[1:] for r in rows}
    total = sum(s[0] for s in stats.values())
    assert total == desi_db.rows and dupes_ok
    for spectype, expected in (("GALAXY", 13.1 / 18.7), ("QSO", 1.6 / 18.7), ("STAR", 4 / 18.7)):
        assert abs(stats[spectype][0] / total - expected) < 0.015, spectype
    assert stats["STAR"][1] > -0.005 and stats["STAR"][2] < 0.005
    assert stats["QSO"][1] >= 0.5 and stats["QSO"][2] <= 4.5
    assert stats["GALAXY"][1] >= 0 and stats["GALAXY"][2] <= 1.6
    warn = sum(s[0] * s[3] for s in stats.values()) / total
    assert 0.04 < warn < 0.06


def test_healpix_column_matches_ra_dec(desi_db: Any) -> None:
    with psycopg.connect(desi_db.admin_dsn) as conn:
        rows = conn.execute(
            "SELECT z.healpix, p.ra, p.dec FROM desi_dr1.zpix z JOIN desi_dr1.photometry p USING (targetid) LIMIT 2000"
        ).fetchall()
    pix, ra, dec = (np.array(col) for col in zip(*rows, strict=True))
    assert (ang2pix_nest(64, ra, dec) == pix).all()


def test_ang2pix_nest_reference_points() -> None:
    # Poles and the first equatorial face, derived by hand from the nested scheme's definition.
    assert ang2pix_nest(64, [0.0], [90.0])[0] == 4095  # last pixel of face 0
    assert ang2pix_nest(64, [0.0], [-90.0])[0] == 8 * 4096  # first pixel of face 8
    assert ang2pix_nest(1, [45.0, 135.0, 225.0, 315.0], [60.0] * 4).tolist() == [0, 1, 2, 3]
    assert ang2pix_nest(1, [0.0, 90.0, 180.0, 270.0], [0.0] * 4).tolist() == [4, 5, 6, 7]
    assert ang2pix_nest(1, [45.0, 135.0, 225.0, 315.0], [-60.0] * 4).tolist() == [8, 9, 10, 11]


def test_ang2pix_nest_is_equal_area() -> None:
    rng = np.random.default_rng(0)
    n = 480_000
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    counts = np.bincount(ang2pix_nest(4, ra, dec), minlength=192)
    assert len(counts) == 192
    # 2500 expected per pixel; Poisson noise is ~50.
    assert counts.min() > 2250 and counts.max() < 2750
