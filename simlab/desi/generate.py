"""Synthetic objects shaped like DESI DR1, generated in vectorised chunks.

Shape (from the DR1 paper and the data model, ``lab-apis.md`` §4): galaxies : quasars : stars about
13.1 : 1.6 : 4; redshift ranges per class (stars |z| < 0.005; galaxies 0-1.6 with BGS, LRG and ELG
peaks; quasars 0.5-4.5 peaking near 2); about 5% with ZWARN set; HEALPix NSIDE 64 nested from RA/Dec;
targeting bits from ``desitarget``'s masks; survey/program consistent with the target class. About 2%
of targets were also observed in SV3, giving a second zpix row with ``zcat_primary`` false.
Everything is deterministic for a given seed and chunk layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from simlab.desi.healpix import ang2pix_nest

__all__ = ["CHUNK", "TARGETID_BASE", "generate"]

CHUNK = 100_000
TARGETID_BASE = 39_627_000_000_000_000
CLASS_P = np.array([13.1, 1.6, 4.0]) / 18.7  # GALAXY, QSO, STAR
BGS_ANY, MWS_ANY = 1 << 60, 1 << 61
LRG, ELG, QSO = 1, 2, 4
DUPLICATE_FRACTION = 0.02
ZWARN_FRACTION = 0.05

Arrays = dict[str, npt.NDArray[Any]]


def _footprint(rng: np.random.Generator, n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Uniform on the sphere within Dec -20..+80, avoiding |galactic b| < 15 deg (roughly DESI's footprint)."""
    ras: list[npt.NDArray[np.float64]] = []
    decs: list[npt.NDArray[np.float64]] = []
    have = 0
    # Equatorial -> galactic rotation (J2000), rows of the standard matrix.
    rot_b = np.array([-0.4838350155, 0.7469822445, 0.4559837762])
    lo, hi = np.sin(np.radians(-20)), np.sin(np.radians(80))
    while have < n:
        m = int((n - have) * 1.6) + 16
        ra = rng.uniform(0, 360, m)
        dec = np.degrees(np.arcsin(rng.uniform(lo, hi, m)))
        r, d = np.radians(ra), np.radians(dec)
        xyz = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])
        b = np.degrees(np.arcsin(np.clip(rot_b @ xyz, -1, 1)))
        keep = np.abs(b) >= 15
        ras.append(ra[keep])
        decs.append(dec[keep])
        have += int(keep.sum())
    return np.concatenate(ras)[:n], np.concatenate(decs)[:n]


def _redshifts(
    rng: np.random.Generator, cls: npt.NDArray[np.int8], tracer: npt.NDArray[np.int8]
) -> npt.NDArray[np.float64]:
    n = len(cls)
    z = np.empty(n)
    star = cls == 2
    z[star] = np.clip(rng.normal(0, 0.0004, star.sum()), -0.0049, 0.0049)
    q = cls == 1
    z[q] = np.clip(rng.normal(1.95, 0.75, q.sum()), 0.5, 4.5)
    for t, (mu, sd, lo, hi) in {0: (0.2, 0.1, 0.005, 0.6), 1: (0.75, 0.15, 0.4, 1.1), 2: (1.1, 0.2, 0.6, 1.6)}.items():
        sel = (cls == 0) & (tracer == t)
        z[sel] = np.clip(rng.normal(mu, sd, sel.sum()), lo, hi)
    return z


def generate(rows: int, *, seed: int = 1) -> Iterator[tuple[Arrays, Arrays]]:
    """Yield ``(photometry, zpix)`` column arrays chunk by chunk (``rows`` unique targets in total)."""
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        rng = np.random.default_rng([seed, start])
        yield _chunk(rng, start, n)


def _chunk(rng: np.random.Generator, start: int, n: int) -> tuple[Arrays, Arrays]:
    targetid = TARGETID_BASE + (np.arange(start, start + n, dtype=np.int64) * 7919) % (1 << 40) * 16
    ra, dec = _footprint(rng, n)
    cls = rng.choice(3, size=n, p=CLASS_P).astype(np.int8)  # 0 GALAXY, 1 QSO, 2 STAR
    tracer = rng.choice(3, size=n, p=[0.35, 0.30, 0.35]).astype(np.int8)  # galaxies: BGS, LRG, ELG
    z = _redshifts(rng, cls, tracer)

    desi_target = np.zeros(n, np.int64)
    bgs_target = np.zeros(n, np.int64)
    mws_target = np.zeros(n, np.int64)
    gal = cls == 0
    desi_target[gal & (tracer == 0)] = BGS_ANY
    bgs_target[gal & (tracer == 0)] = np.where(rng.random(int((gal & (tracer == 0)).sum())) < 0.7, 2, 1)
    desi_target[gal & (tracer == 1)] = LRG
    desi_target[gal & (tracer == 2)] = ELG
    desi_target[cls == 1] = QSO
    desi_target[cls == 2] = MWS_ANY
    mws_target[cls == 2] = 1
    program = np.where((cls == 2) | (gal & (tracer == 0)), "bright", "dark").astype(object)
    program[(cls == 2) & (rng.random(n) < 0.15)] = "backup"
    survey = rng.choice(np.array(["main", "sv3", "sv1"], dtype=object), size=n, p=[0.85, 0.10, 0.05])

    zwarn = np.zeros(n, np.int64)
    warn = rng.random(n) < ZWARN_FRACTION
    zwarn[warn] = rng.choice(np.array([4, 4, 4, 32, 1024, 4 | 1024]), size=int(warn.sum()))
    deltachi2 = np.where(warn, rng.uniform(0, 9, n), rng.lognormal(6, 1.5, n))

    subtype = np.full(n, "", dtype=object)
    subtype[cls == 2] = rng.choice(
        np.array(["G", "K", "M", "F", "WD", "A"], dtype=object),
        size=int((cls == 2).sum()),
        p=[0.3, 0.3, 0.2, 0.12, 0.03, 0.05],
    )
    healpix = ang2pix_nest(64, ra, dec).astype(np.int32)
    spectype = np.array(["GALAXY", "QSO", "STAR"], dtype=object)[cls]

    flux_r = np.where(cls == 2, rng.lognormal(3.5, 1.0, n), rng.lognormal(1.2, 0.8, n)).astype(np.float32)
    ebv = (0.01 + 0.08 * rng.random(n) ** 3).astype(np.float32)
    brickid = (ang2pix_nest(256, ra, dec) % 662_174).astype(np.int32)
    brickname = np.char.add(np.char.mod("%04d", (ra * 10).astype(int)), np.where(dec >= 0, "p", "m"))
    brickname = np.char.add(brickname, np.char.mod("%03d", np.abs(dec * 10).astype(int) % 1000)).astype(object)
    phot: Arrays = {
        "targetid": targetid,
        "ls_id": (np.int64(10) << 40) + brickid.astype(np.int64) * 65536 + np.arange(n) % 65536,
        "release": np.where(dec > 32.375, 9011, 9010).astype(np.int16),
        "brickid": brickid,
        "brickname": brickname,
        "brick_objid": (np.arange(n) % 5000).astype(np.int32),
        "morphtype": np.where(
            cls == 0, rng.choice(np.array(["EXP", "DEV", "SER", "REX"], dtype=object), n), "PSF"
        ).astype(object),
        "ra": ra,
        "ra_ivar": rng.uniform(1e10, 1e12, n),
        "dec": dec,
        "dec_ivar": rng.uniform(1e10, 1e12, n),
        "ebv": ebv,
        "flux_g": (flux_r * rng.uniform(0.3, 0.9, n)).astype(np.float32),
        "flux_r": flux_r,
        "flux_z": (flux_r * rng.uniform(1.1, 2.2, n)).astype(np.float32),
        "flux_w1": (flux_r * rng.uniform(1.0, 3.0, n)).astype(np.float32),
        "flux_w2": (flux_r * rng.uniform(0.6, 2.5, n)).astype(np.float32),
        "flux_ivar_g": rng.uniform(50, 500, n).astype(np.float32),
        "flux_ivar_r": rng.uniform(20, 200, n).astype(np.float32),
        "flux_ivar_z": rng.uniform(5, 80, n).astype(np.float32),
        "mw_transmission_g": np.exp(-3.214 * ebv / 1.086).astype(np.float32),
        "mw_transmission_r": np.exp(-2.165 * ebv / 1.086).astype(np.float32),
        "mw_transmission_z": np.exp(-1.211 * ebv / 1.086).astype(np.float32),
        "fiberflux_g": (flux_r * 0.25).astype(np.float32),
        "fiberflux_r": (flux_r * 0.4).astype(np.float32),
        "fiberflux_z": (flux_r * 0.6).astype(np.float32),
        "maskbits": np.where(rng.random(n) < 0.02, 2048, 0).astype(np.int16),
        "shape_r": np.where(cls == 0, rng.lognormal(0, 0.5, n), 0).astype(np.float32),
        "sersic": np.where(cls == 0, rng.uniform(0.5, 4, n), 0).astype(np.float32),
        "ref_id": np.where(cls == 2, targetid % 10**15, 0).astype(np.int64),
        "ref_cat": np.where(cls == 2, "G2", "").astype(object),
        "gaia_phot_g_mean_mag": np.where(cls == 2, 22.5 - 2.5 * np.log10(flux_r), 0).astype(np.float32),
    }

    dup = rng.random(n) < DUPLICATE_FRACTION
    rows = np.concatenate([np.arange(n), np.flatnonzero(dup)])
    second = np.concatenate([np.zeros(n, bool), np.ones(int(dup.sum()), bool)])
    m = len(rows)
    zsurvey = survey[rows].copy()
    zsurvey[second] = np.where(survey[rows][second] == "sv3", "main", "sv3")
    zz = z[rows] + np.where(second, rng.normal(0, 0.0002, m), 0)
    mjd0 = np.where(zsurvey == "main", 59300.0, 59000.0) + rng.uniform(0, 380, m)
    survey_code = np.select([zsurvey == "main", zsurvey == "sv3"], [1, 3], 2)
    prog_code = np.select([program[rows] == "dark", program[rows] == "bright"], [1, 2], 3)
    zt = targetid[rows]
    zpix: Arrays = {
        "id": (zt.astype(object) * 100 + survey_code * 10 + prog_code),
        "targetid": zt,
        "desiname": np.char.add(
            np.char.add("DESI J", np.char.mod("%08.4f", ra[rows])), np.char.mod("%+08.4f", dec[rows])
        ).astype(object),
        "survey": zsurvey,
        "program": program[rows],
        "spgrp": np.full(m, "healpix", dtype=object),
        "spgrpval": healpix[rows],
        "healpix": healpix[rows],
        "z": zz,
        "zerr": np.abs(zz) * 1e-4 + rng.uniform(1e-5, 1e-4, m),
        "zwarn": zwarn[rows],
        "chi2": rng.uniform(7000, 9000, m),
        **{f"coeff_{i}": rng.normal(0, 100 / (i + 1), m) for i in range(10)},
        "npixels": rng.integers(7800, 7930, m),
        "spectype": spectype[rows],
        "subtype": subtype[rows],
        "ncoeff": np.where(cls[rows] == 1, 4, np.where(cls[rows] == 2, 5, 10)).astype(np.int64),
        "deltachi2": deltachi2[rows],
        "coadd_fiberstatus": np.where(rng.random(m) < 0.01, 8, 0).astype(np.int32),
        "cmx_target": np.zeros(m, np.int64),
        "desi_target": desi_target[rows],
        "bgs_target": bgs_target[rows],
        "mws_target": mws_target[rows],
        "scnd_target": np.zeros(m, np.int64),
        "coadd_numexp": rng.integers(1, 5, m).astype(np.int16),
        "coadd_exptime": rng.uniform(600, 3600, m).astype(np.float32),
        "coadd_numnight": rng.integers(1, 3, m).astype(np.int16),
        "coadd_numtile": rng.integers(1, 3, m).astype(np.int16),
        "mean_fiber_ra": ra[rows] + rng.normal(0, 1e-5, m),
        "mean_fiber_dec": dec[rows] + rng.normal(0, 1e-5, m),
        "std_fiber_ra": rng.uniform(0, 1e-5, m).astype(np.float32),
        "std_fiber_dec": rng.uniform(0, 1e-5, m).astype(np.float32),
        "min_mjd": mjd0,
        "mean_mjd": mjd0 + rng.uniform(0, 10, m),
        "max_mjd": mjd0 + rng.uniform(10, 20, m),
        "tsnr2_lrg": rng.uniform(50, 150, m).astype(np.float32),
        "tsnr2_elg": rng.uniform(50, 150, m).astype(np.float32),
        "tsnr2_qso": rng.uniform(20, 60, m).astype(np.float32),
        "tsnr2_bgs": rng.uniform(500, 1500, m).astype(np.float32),
        "tsnr2_lya": rng.uniform(0.5, 2, m).astype(np.float32),
        "sv_nspec": np.where(second | (zsurvey != "main"), 1, 0).astype(np.int16),
        "main_nspec": np.where(zsurvey == "main", 1, 0).astype(np.int16),
        "zcat_nspec": np.where(dup[rows], 2, 1).astype(np.int16),
        "sv_primary": zsurvey != "main",
        "main_primary": zsurvey == "main",
        "zcat_primary": ~second,
    }
    return phot, zpix
