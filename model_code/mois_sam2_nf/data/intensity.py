"""Intensity scaling for SAM2-family models (docs/synthetic_data.md, Intensity scaling)."""

from __future__ import annotations

import numpy as np

PERCENTILES: tuple[float, float] = (0.5, 99.5)


def percentile_bounds(volume: np.ndarray) -> tuple[float, float]:
    """``(lo, hi)``: the 0.5 / 99.5 percentiles (linear, float64) of the voxels > 0; ``(0, 0)`` if there are none."""
    positive = volume[volume > 0]
    if positive.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(positive.astype(np.float64), PERCENTILES)
    return float(lo), float(hi)


def percentile_scale(volume: np.ndarray, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Scale a volume of any shape to float32 in ``[0, 1]``.

    ``x = (clip(v, lo, hi) - lo) / (hi - lo)``, and ``x = 0`` where ``v == 0``. When ``hi <= lo`` the result is 0 where
    ``v == 0`` and 1 elsewhere. ``bounds`` overrides the percentiles (e.g. those stored in a slice ``meta.json``).
    """
    lo, hi = percentile_bounds(volume) if bounds is None else bounds
    v = volume.astype(np.float64)
    if hi <= lo:
        return (v != 0).astype(np.float32)
    x = (np.clip(v, lo, hi) - lo) / (hi - lo)
    x[v == 0] = 0.0
    return x.astype(np.float32)
