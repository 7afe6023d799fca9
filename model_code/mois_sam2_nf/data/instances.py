"""Lesion instances: 26-connected components (cc3d), ordered by size, and keep-N-largest."""

from __future__ import annotations

from typing import Literal

import cc3d
import numpy as np

#: the connectivities cc3d labels with: 6, 18 or 26 in 3-D, 4 or 8 in 2-D
Connectivity = Literal[4, 6, 8, 18, 26]


def size_ordered_components(mask: np.ndarray, connectivity: Connectivity = 26) -> tuple[np.ndarray, np.ndarray]:
    """Label the connected components of ``mask != 0`` and renumber them by decreasing voxel count.

    Ties are broken by the first voxel of each component in C raster order of the given array (pass the canonical
    array to get the canonical tie-break). cc3d numbers components in that raster order, so the work is one labelling
    of the mask's bounding box (cropping keeps the raster order) and a bincount -- no sort over voxels.

    Args:
        mask: any-dtype 3-D (or 2-D) array; non-zero = foreground.
        connectivity: 6, 18 or 26 in 3-D (4 or 8 in 2-D).

    Returns:
        ``(labels, sizes)``: ``labels`` int32 with the shape of ``mask``, 0 = background, 1 = largest component;
        ``sizes`` int64 ``(n,)`` voxel counts in label order.
    """
    foreground = mask != 0
    labels = np.zeros(mask.shape, dtype=np.int32)
    if not foreground.any():
        return labels, np.zeros(0, dtype=np.int64)
    axes = range(foreground.ndim)
    box = tuple(
        slice(int(np.flatnonzero(hit)[0]), int(np.flatnonzero(hit)[-1]) + 1)
        for hit in (foreground.any(axis=tuple(a for a in axes if a != axis)) for axis in axes)
    )
    raw = cc3d.connected_components(np.ascontiguousarray(foreground[box]), connectivity=connectivity,
                                    out_dtype=np.uint32)
    counts = np.bincount(raw.ravel())[1:]
    order = np.lexsort((np.arange(len(counts)), -counts))
    lookup = np.zeros(len(counts) + 1, dtype=np.int32)
    lookup[order + 1] = np.arange(1, len(counts) + 1, dtype=np.int32)
    labels[box] = lookup[raw]
    return labels, counts[order].astype(np.int64)


def keep_largest(labels: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Keep ids ``1..n`` of a size-ordered label map; returns ``(labels, number of ids dropped)``."""
    n_total = int(labels.max()) if labels.size else 0
    kept = np.where(labels <= n, labels, 0).astype(labels.dtype)
    return kept, max(0, n_total - n)
