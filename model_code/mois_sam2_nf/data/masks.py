"""Geometry of masks: foreground voxel lists, bounding boxes, connected components and the distance transform.

Every distance transform of the package goes through :func:`distance_transform` (the ``edt`` package, which the
evaluation's click simulation was defined with; it also takes anisotropic voxel sizes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cc3d
import edt
import numpy as np


def foreground(mask: np.ndarray) -> np.ndarray:
    """Ascending flat C-order indices (int64 ``(m,)``) of the non-zero voxels of ``mask`` (any shape and dtype)."""
    return np.flatnonzero(np.ascontiguousarray(mask).reshape(-1))


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """Bounding box of the non-zero voxels of ``mask`` grown by ``margin`` voxels per side (clipped to the array).

    Returns:
        One slice per axis of ``mask``, or ``None`` when ``mask`` has no non-zero voxel.
    """
    fg = foreground(mask)
    if fg.size == 0:
        return None
    coords = np.unravel_index(fg, mask.shape)
    return tuple(slice(max(int(c.min()) - margin, 0), min(int(c.max()) + 1 + margin, n))
                 for c, n in zip(coords, mask.shape))


#: cc3d's neighbourhoods: 4 or 8 in 2-D, 6, 18 or 26 in 3-D
Connectivity = Literal[4, 6, 8, 18, 26]


def components_at(mask: np.ndarray, points: Sequence[Sequence[int]],
                  connectivity: Connectivity | None = None) -> np.ndarray:
    """Union of the connected components of ``mask`` that contain one of ``points``.

    Args:
        mask: 2-D or 3-D array, non-zero = foreground.
        points: index tuples into ``mask`` (one index per axis); a point on background selects nothing.
        connectivity: neighbourhood of a component (2-D: 4 or 8, 3-D: 6, 18 or 26); ``None`` = the full one (8 / 26).

    Returns:
        Bool array of ``mask``'s shape (all ``False`` when no point lies on the foreground).
    """
    full: Connectivity = 8 if mask.ndim == 2 else 26
    labels = cc3d.connected_components(np.ascontiguousarray(mask != 0, dtype=np.uint8),
                                       connectivity=connectivity or full)
    hit = {int(labels[tuple(int(v) for v in point)]) for point in points} - {0}
    return np.isin(labels, sorted(hit))


def distance_transform(mask: np.ndarray, anisotropy: Sequence[float] | None = None,
                       black_border: bool = False) -> np.ndarray:
    """Euclidean distance of every non-zero voxel of ``mask`` to the nearest zero voxel (zero voxels: 0).

    Args:
        mask: 1-D to 3-D array, non-zero = foreground.
        anisotropy: voxel size per axis (distances in those units); ``None`` measures in voxels.
        black_border: count everything beyond the array border as zero voxels. Without it the border is no boundary,
            and a mask without any zero voxel gets infinite distances.

    Returns:
        float32 array of the shape of ``mask``.
    """
    unit = (1.0,) * mask.ndim if anisotropy is None else tuple(float(a) for a in anisotropy)
    return edt.edt(np.ascontiguousarray(mask), anisotropy=unit, black_border=black_border, parallel=1)
