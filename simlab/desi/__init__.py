"""Synthetic DESI DR1 tables (``desi_dr1.zpix`` and ``desi_dr1.photometry``) for the embedded database."""

from simlab.desi.load import desi_row_count, load_desi

__all__ = ["desi_row_count", "load_desi"]
