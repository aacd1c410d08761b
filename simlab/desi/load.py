"""Create ``desi_dr1.zpix`` and ``desi_dr1.photometry`` and fill them with synthetic DR1 objects.

Column names and SQL types follow specprod-db's ``Zpix``/``Photometry`` (``lab-apis.md`` §4.2; a subset
of the target-bit and TSNR2 columns). Data goes in with ``COPY`` and the indexes are built afterwards.

Cone searches: there is no q3c or pg_sphere here, so the spatial index is a GiST index on
``point(ra, dec)``. A query first selects the RA/Dec box around the cone (two boxes across RA 0/360,
the full RA range near a pole), which the index answers, then keeps the rows whose great-circle
distance is within the radius: exact results, index-assisted.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pandas as pd
import psycopg
import psycopg.sql

from simlab.desi.generate import generate

__all__ = ["SCHEMA", "desi_row_count", "load_desi"]

SCHEMA = "desi_dr1"

PHOTOMETRY_DDL = """
CREATE TABLE {s}.photometry (
    targetid bigint NOT NULL, ls_id bigint, release smallint, brickid integer, brickname varchar(8),
    brick_objid integer, morphtype varchar(4), ra double precision, ra_ivar real, dec double precision,
    dec_ivar real, ebv real, flux_g real, flux_r real, flux_z real, flux_w1 real, flux_w2 real,
    flux_ivar_g real, flux_ivar_r real, flux_ivar_z real, mw_transmission_g real, mw_transmission_r real,
    mw_transmission_z real, fiberflux_g real, fiberflux_r real, fiberflux_z real, maskbits smallint,
    shape_r real, sersic real, ref_id bigint, ref_cat varchar(2), gaia_phot_g_mean_mag real
)"""

ZPIX_DDL = """
CREATE TABLE {s}.zpix (
    id numeric(39) NOT NULL, targetid bigint NOT NULL, desiname varchar(22), survey varchar(7),
    program varchar(6), spgrp varchar(10), spgrpval integer, healpix integer,
    z double precision, zerr double precision, zwarn bigint, chi2 double precision,
    coeff_0 double precision, coeff_1 double precision, coeff_2 double precision, coeff_3 double precision,
    coeff_4 double precision, coeff_5 double precision, coeff_6 double precision, coeff_7 double precision,
    coeff_8 double precision, coeff_9 double precision, npixels bigint, spectype varchar(6),
    subtype varchar(20), ncoeff bigint, deltachi2 double precision, coadd_fiberstatus integer,
    cmx_target bigint, desi_target bigint, bgs_target bigint, mws_target bigint, scnd_target bigint,
    coadd_numexp smallint, coadd_exptime real, coadd_numnight smallint, coadd_numtile smallint,
    mean_fiber_ra double precision, mean_fiber_dec double precision, std_fiber_ra real, std_fiber_dec real,
    min_mjd double precision, mean_mjd double precision, max_mjd double precision,
    tsnr2_lrg real, tsnr2_elg real, tsnr2_qso real, tsnr2_bgs real, tsnr2_lya real,
    sv_nspec smallint, main_nspec smallint, zcat_nspec smallint,
    sv_primary boolean, main_primary boolean, zcat_primary boolean
)"""

INDEXES = [
    "ALTER TABLE {s}.photometry ADD PRIMARY KEY (targetid)",
    "ALTER TABLE {s}.zpix ADD PRIMARY KEY (id)",
    "ALTER TABLE {s}.zpix ADD CONSTRAINT zpix_targetid_survey_program_key UNIQUE (targetid, survey, program)",
    "ALTER TABLE {s}.zpix ADD CONSTRAINT zpix_targetid_fkey FOREIGN KEY (targetid) "
    "REFERENCES {s}.photometry (targetid)",
    "CREATE INDEX zpix_spectype_z_idx ON {s}.zpix (spectype, z)",
    "CREATE INDEX zpix_healpix_idx ON {s}.zpix (healpix)",
    "CREATE INDEX photometry_radec_gist ON {s}.photometry USING gist (point(ra, dec))",
]

Progress = Callable[[int, int], None]


def _copy(cur: psycopg.Cursor[tuple[object, ...]], table: str, frame: pd.DataFrame) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep="")
    with cur.copy(f"COPY {SCHEMA}.{table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(buf.getvalue())


def load_desi(
    admin_dsn: str, *, rows: int = 200_000, seed: int = 1, progress: Progress | None = None
) -> dict[str, int]:
    """(Re)create the tables with ``rows`` synthetic objects; returns zpix row counts per spectype.

    Runs in one transaction: an interrupted load leaves the previous tables in place.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    started = time.monotonic()
    with psycopg.connect(admin_dsn) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {SCHEMA}.zpix, {SCHEMA}.photometry")
        cur.execute(PHOTOMETRY_DDL.format(s=SCHEMA))
        cur.execute(ZPIX_DDL.format(s=SCHEMA))
        done = 0
        for phot, zpix in generate(rows, seed=seed):
            _copy(cur, "photometry", pd.DataFrame(phot))
            _copy(cur, "zpix", pd.DataFrame(zpix))
            done += len(phot["targetid"])
            if progress:
                progress(done, rows)
        for stmt in INDEXES:
            cur.execute(stmt.format(s=SCHEMA))
        comment = psycopg.sql.Literal(f"synthetic DESI DR1 objects: rows={rows} seed={seed}")
        cur.execute(
            psycopg.sql.SQL("COMMENT ON TABLE {}.photometry IS {}").format(psycopg.sql.Identifier(SCHEMA), comment)
        )
        counts = dict(cur.execute(f"SELECT spectype, count(*) FROM {SCHEMA}.zpix GROUP BY spectype").fetchall())
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"ANALYZE {SCHEMA}.zpix")
        conn.execute(f"ANALYZE {SCHEMA}.photometry")
    counts["seconds"] = int(time.monotonic() - started)
    return counts


def desi_row_count(admin_dsn: str) -> int | None:
    """How many objects the loaded tables hold (from the load's table comment), or None if not loaded."""
    with psycopg.connect(admin_dsn) as conn:
        row = conn.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (f"{SCHEMA}.photometry",)).fetchone()
    if not row or not row[0] or "rows=" not in row[0]:
        return None
    return int(row[0].split("rows=")[1].split()[0])
