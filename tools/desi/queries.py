"""The named DESI queries the model fills in reliably, and the cone-search SQL."""

from __future__ import annotations

import math
from typing import Any

from psycopg import sql as pgsql

__all__ = ["cone_search_sql", "count_sql", "object_sql", "redshift_range_sql"]


def object_sql(schema: str) -> pgsql.Composed:
    """Every zpix row of one TARGETID with its photometry, the primary spectrum first."""
    return pgsql.SQL(
        "SELECT z.targetid, z.survey, z.program, z.spectype, z.subtype, z.z, z.zerr, z.zwarn, z.deltachi2, "
        "z.zcat_primary, z.healpix, p.ra, p.dec, p.ebv, p.flux_g, p.flux_r, p.flux_z, z.desiname "
        "FROM {s}.zpix z JOIN {s}.photometry p ON p.targetid = z.targetid "
        "WHERE z.targetid = %(targetid)s ORDER BY z.zcat_primary DESC, z.survey LIMIT %(n)s"
    ).format(s=pgsql.Identifier(schema))


def _filters(args: dict[str, Any]) -> list[pgsql.Composable]:
    where: list[pgsql.Composable] = []
    if args.get("good_only"):
        where.append(pgsql.SQL("zwarn = 0"))
    if args.get("primary_only"):
        where.append(pgsql.SQL("zcat_primary"))
    for key, column, op in (
        ("spectype", "spectype", "="),
        ("survey", "survey", "="),
        ("program", "program", "="),
        ("z_min", "z", ">="),
        ("z_max", "z", "<="),
    ):
        if args.get(key) is not None:
            where.append(pgsql.SQL("{} {} {}").format(pgsql.Identifier(column), pgsql.SQL(op), pgsql.Placeholder(key)))
    return where


def _where(args: dict[str, Any]) -> pgsql.Composable:
    parts = _filters(args)
    return pgsql.SQL(" WHERE ") + pgsql.SQL(" AND ").join(parts) if parts else pgsql.SQL("")


def count_sql(schema: str, args: dict[str, Any]) -> pgsql.Composed:
    """Counts by SPECTYPE with the filters in ``args``."""
    return pgsql.SQL(
        "SELECT spectype, count(*) AS n FROM {s}.zpix{w} GROUP BY spectype ORDER BY n DESC LIMIT 100"
    ).format(s=pgsql.Identifier(schema), w=_where(args))


def redshift_range_sql(schema: str, args: dict[str, Any], *, descending: bool) -> pgsql.Composed:
    """Objects of one class in a redshift range, ordered by z."""
    return pgsql.SQL(
        "SELECT z.targetid, z.spectype, z.z, z.zerr, z.zwarn, z.survey, z.program, z.mean_fiber_ra AS ra, "
        "z.mean_fiber_dec AS dec FROM {s}.zpix z{w} ORDER BY z.z {d}, z.targetid LIMIT %(n)s"
    ).format(s=pgsql.Identifier(schema), w=_where(args), d=pgsql.SQL("DESC" if descending else "ASC"))


def _ra_boxes(ra: float, dec: float, radius_deg: float) -> list[tuple[float, float, float, float]]:
    """RA/Dec boxes (ra1, dec1, ra2, dec2) covering the cone, split across RA 0/360."""
    dec_lo, dec_hi = max(-90.0, dec - radius_deg), min(90.0, dec + radius_deg)
    if dec_lo <= -90.0 or dec_hi >= 90.0:
        return [(0.0, dec_lo, 360.0, dec_hi)]  # the cone contains a pole: every RA
    widest = math.cos(math.radians(max(abs(dec_lo), abs(dec_hi))))
    dra = min(180.0, radius_deg / widest) if widest > 0 else 180.0
    lo, hi = ra - dra, ra + dra
    if dra >= 180.0:
        return [(0.0, dec_lo, 360.0, dec_hi)]
    if lo < 0:
        return [(0.0, dec_lo, hi, dec_hi), (lo + 360.0, dec_lo, 360.0, dec_hi)]
    if hi > 360:
        return [(lo, dec_lo, 360.0, dec_hi), (0.0, dec_lo, hi - 360.0, dec_hi)]
    return [(lo, dec_lo, hi, dec_hi)]


def cone_search_sql(
    schema: str, *, ra: float, dec: float, radius_arcmin: float, spectype: str | None
) -> pgsql.Composed:
    """Objects within ``radius_arcmin`` of (ra, dec), nearest first.

    The boxes use the GiST index on ``point(ra, dec)``; the haversine distance then makes the result
    exact on the sphere.
    """
    boxes = _ra_boxes(ra, dec, radius_arcmin / 60.0)
    box_sql = pgsql.SQL(" OR ").join(
        pgsql.SQL("point(p.ra, p.dec) <@ box(point({}, {}), point({}, {}))").format(*(pgsql.Literal(v) for v in b))
        for b in boxes
    )
    dist = pgsql.SQL(
        "degrees(2 * asin(least(1.0, sqrt(power(sin(radians(p.dec - %(dec)s) / 2), 2) + cos(radians(%(dec)s)) "
        "* cos(radians(p.dec)) * power(sin(radians(p.ra - %(ra)s) / 2), 2))))) * 60"
    )
    kind = pgsql.SQL(" AND z.spectype = %(spectype)s") if spectype else pgsql.SQL("")
    return pgsql.SQL(
        "SELECT * FROM (SELECT p.targetid, p.ra, p.dec, z.spectype, z.z, z.zwarn, {d} AS dist_arcmin "
        "FROM {s}.photometry p JOIN {s}.zpix z ON z.targetid = p.targetid AND z.zcat_primary "
        "WHERE ({b}){k}) c WHERE dist_arcmin <= %(radius)s ORDER BY dist_arcmin LIMIT %(n)s"
    ).format(d=dist, s=pgsql.Identifier(schema), b=box_sql, k=kind)
