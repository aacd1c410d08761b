"""HEALPix ``ang2pix`` in the NESTED scheme, vectorised with numpy (DR1 uses NSIDE 64, nested).

A transcription of the reference algorithm (Górski et al. 2005; ``ang2pix_nest`` in the HEALPix C
library), since healpy is not available here.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["ang2pix_nest"]


def _spread_bits(v: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Put bit ``i`` of ``v`` at bit ``2i`` (the nested scheme interleaves x and y)."""
    out = np.zeros_like(v)
    for bit in range(16):
        out |= ((v >> bit) & 1) << (2 * bit)
    return out


def ang2pix_nest(nside: int, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Nested pixel index of each (RA, Dec) in degrees."""
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    z = np.sin(np.radians(dec))
    za = np.abs(z)
    tt = np.mod(np.radians(ra), 2 * np.pi) / (np.pi / 2)  # in [0, 4)

    # Equatorial belt
    temp1 = nside * (0.5 + tt)
    temp2 = nside * z * 0.75
    jp = (temp1 - temp2).astype(np.int64)
    jm = (temp1 + temp2).astype(np.int64)
    ifp = jp // nside
    ifm = jm // nside
    face_eq = np.where(ifp == ifm, ifp | 4, np.where(ifp < ifm, ifp, ifm + 8))
    ix_eq = jm & (nside - 1)
    iy_eq = nside - (jp & (nside - 1)) - 1

    # Polar caps
    ntt = np.minimum(3, tt.astype(np.int64))
    tp = tt - ntt
    tmp = nside * np.sqrt(3 * (1 - za))
    jp_p = np.minimum((tp * tmp).astype(np.int64), nside - 1)
    jm_p = np.minimum(((1 - tp) * tmp).astype(np.int64), nside - 1)
    north = z >= 0
    face_p = np.where(north, ntt, ntt + 8)
    ix_p = np.where(north, nside - jm_p - 1, jp_p)
    iy_p = np.where(north, nside - jp_p - 1, jm_p)

    belt = za <= 2.0 / 3.0
    face = np.where(belt, face_eq, face_p).astype(np.int64)
    ix = np.where(belt, ix_eq, ix_p).astype(np.int64)
    iy = np.where(belt, iy_eq, iy_p).astype(np.int64)
    result: npt.NDArray[np.int64] = face * nside * nside + _spread_bits(ix) + (_spread_bits(iy) << 1)
    return result
