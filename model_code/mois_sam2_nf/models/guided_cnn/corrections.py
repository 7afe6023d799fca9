"""Simulated corrective clicks for training: one click into the largest error region of a prediction.

As in DeepEdit-style training, a false-negative region gets a positive click and a false-positive region a negative
click, each at the voxel farthest from the region's border (Euclidean distance transform, first voxel on ties).
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

Voxel = tuple[int, int, int]


def corrective_click(prediction: np.ndarray, label: np.ndarray) -> tuple[Voxel, bool] | None:
    """The next click for ``prediction`` against ``label`` (both bool ``(R, C, F)``), or ``None`` when they agree.

    Returns ``(voxel, positive)``: the click lies in the largest 26-connected component of the false negatives (a
    positive click) or of the false positives (a negative click), whichever is larger.
    """
    best: tuple[int, np.ndarray, bool] | None = None
    for error, positive in ((label & ~prediction, True), (prediction & ~label, False)):
        if not error.any():
            continue
        components = cc3d.connected_components(error.astype(np.uint8), connectivity=26)
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        largest = int(np.argmax(sizes))
        if best is None or sizes[largest] > best[0]:
            best = (int(sizes[largest]), components == largest, positive)
    if best is None:
        return None
    _, region, positive = best
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1, 1:-1]
    voxel = np.unravel_index(int(np.argmax(distance)), region.shape)
    return tuple(int(v) for v in voxel), positive  # type: ignore[return-value]
