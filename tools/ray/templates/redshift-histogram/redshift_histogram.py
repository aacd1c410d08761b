"""Redshift histogram per SPECTYPE from desi_dr1.zpix (good, primary redshifts), one Ray task per class."""

import argparse
import os
import sys

import psycopg
import ray


@ray.remote
def histogram(dsn: str, schema: str, spectype: str, bins: int, z_max: float) -> list[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT width_bucket(z, 0, %s, %s) AS b, count(*) FROM {schema}.zpix "
            "WHERE spectype = %s AND zwarn = 0 AND zcat_primary AND z >= 0 GROUP BY b ORDER BY b",
            (z_max, bins, spectype),
        ).fetchall()
    counts = [0] * bins
    for b, n in rows:
        if 1 <= b <= bins:
            counts[b - 1] = n
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bins", type=int, default=12)
    parser.add_argument("--z-max", type=float, default=4.8)
    args = parser.parse_args()
    dsn = os.environ.get("DESI_DSN")
    if not dsn:
        sys.exit("DESI_DSN is not set: submit this job through LabOps (ray.submit), which passes the read-only DSN")
    schema = os.environ.get("DESI_SCHEMA", "desi_dr1")
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        sys.exit(f"cannot reach the DESI database: {exc}")
    ray.init()
    classes = ["GALAXY", "QSO", "STAR"]
    results = ray.get([histogram.remote(dsn, schema, c, args.bins, args.z_max) for c in classes])
    width = args.z_max / args.bins
    print("z_lo  " + "".join(f"{c:>10}" for c in classes))
    for i in range(args.bins):
        print(f"{i * width:4.1f}  " + "".join(f"{r[i]:>10}" for r in results))
    print("totals " + " ".join(f"{c}={sum(r)}" for c, r in zip(classes, results, strict=True)))


if __name__ == "__main__":
    main()
