"""Lesion instances: 26-connected components (cc3d), ordered by size, and keep-N-largest."""

from __future__ import annotations

import cc3d
import numpy as np


def size_ordered_components(mask: np.ndarray, connectivity: int = 26) -> tuple[np.ndarray, np.ndarray]:
    """Label the connected components of ``mask > 0`` and renumber them by decreasing voxel count.

    Ties are broken by the first voxel of each component in C raster order of the given array (pass the canonical
    array to get the canonical tie-break).

    Args:
        mask: any-dtype 3-D (or 2-D) array; non-zero = foreground.
        connectivity: 6, 18 or 26 in 3-D (4 or 8 in 2-D).

    Returns:
        ``(labels, sizes)``: ``labels`` int32 with the shape of ``mask``, 0 = background, 1 = largest component;
        ``sizes`` int64 ``(n,)`` voxel counts in label order.
    """
    raw = cc3d.connected_components(np.ascontiguousarray(mask != 0), connectivity=connectivity, out_dtype=np.uint32)
    ids, first_index, counts = np.unique(raw.ravel(order="C"), return_index=True, return_counts=True)
    keep = ids != 0
    ids, first_index, counts = ids[keep], first_index[keep], counts[keep]
    order = np.lexsort((first_index, -counts))
    lookup = np.zeros(int(raw.max()) + 1, dtype=np.int32)
    lookup[ids[order]] = np.arange(1, len(order) + 1, dtype=np.int32)
    return lookup[raw], counts[order].astype(np.int64)


def keep_largest(labels: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Keep ids ``1..n`` of a size-ordered label map; returns ``(labels, number of ids dropped)``."""
    n_total = int(labels.max()) if labels.size else 0
    kept = np.where(labels <= n, labels, 0).astype(labels.dtype)
    return kept, max(0, n_total - n)
