"""The deterministic corrective click: the centre of the largest error region.

One rule, defined by the evaluation protocol (docs/evaluation_protocol.md, Click simulation, ``center``): the
evaluation's simulated user (``evaluation.clicks``, strategy ``center`` and the ``center`` fallback) and the training
clicks of the guided-CNN baselines (``models.guided_cnn.corrections``) both call :func:`center_click`.
"""

from __future__ import annotations

from dataclasses import replace

import cc3d
import numpy as np

from mois_sam2_nf.data.masks import bounding_box, distance_transform, foreground
from mois_sam2_nf.data.view import ScanView, triple


def _canonical_coords(flat: np.ndarray, view: ScanView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical ``(rows, cols, frames)`` int64 coordinates of original-grid flat indices (vectorised, exact)."""
    ijk = np.unravel_index(flat, view.original_shape)
    out: list[np.ndarray] = [ijk[0]] * 3
    for axis, (new_axis, flip) in enumerate(view.transform):
        out[int(new_axis)] = ijk[axis] if flip > 0 else view.original_shape[axis] - 1 - ijk[axis]
    return out[0], out[1], out[2]


def center_click(target: np.ndarray, prediction: np.ndarray, view: ScanView,
                 use_spacing: bool = False) -> tuple[tuple[int, int, int], bool] | None:
    """The click at the centre of the largest error region (docs/evaluation_protocol.md, center).

    Takes the largest 26-connected component of ``FN | FP`` (size ties: first voxel in canonical raster order) and
    the maximum of its Euclidean distance transform, where every voxel outside the component -- including beyond the
    volume border -- counts as background (ties: first voxel in canonical raster order). Components are labelled on
    the original grid (26-connectivity does not depend on axis order or flips); only the distance transform and the
    tie-breaks use the canonical orientation.

    Args:
        target, prediction: bool ``(I, J, K)`` masks on the original grid.
        view: canonical view of that grid (:meth:`ScanView.of_canonical` for arrays that already are canonical).
        use_spacing: distances in mm (canonical spacing) instead of voxels.

    Returns:
        ``((i, j, k), positive)`` on the original grid (``positive``: the voxel is in ``target``, a missed voxel), or
        ``None`` when prediction equals target.
    """
    error = np.asarray(target, dtype=bool) ^ np.asarray(prediction, dtype=bool)
    box = bounding_box(error)
    if box is None:
        return None
    crop = np.ascontiguousarray(error[box])
    crop_view = replace(view, original_shape=triple(crop.shape))
    fg = foreground(crop)
    ids = cc3d.connected_components(crop, connectivity=26).reshape(-1)[fg]
    counts = np.bincount(ids)
    tied = np.flatnonzero(counts == counts[1:].max())
    if len(tied) == 1:
        chosen = int(tied[0])
    else:
        in_tied = np.isin(ids, tied)
        first = np.ravel_multi_index(_canonical_coords(fg[in_tied], crop_view), crop_view.canonical_shape)
        chosen = int(ids[in_tied][np.argmin(first)])
    coords = np.unravel_index(fg[ids == chosen], crop.shape)
    inner = tuple(slice(int(c.min()), int(c.max()) + 1) for c in coords)
    component = np.zeros(tuple(i.stop - i.start for i in inner), dtype=bool)
    component[tuple(c - i.start for c, i in zip(coords, inner))] = True
    component_view = replace(view, original_shape=triple(component.shape))
    anisotropy = view.spacing if use_spacing else None
    distance = distance_transform(component_view.to_canonical(component), anisotropy=anisotropy, black_border=True)
    local = component_view.canonical_to_ijk(np.unravel_index(int(np.argmax(distance)), distance.shape))
    ijk = triple(int(b.start + i.start + x) for b, i, x in zip(box, inner, local))
    return ijk, bool(target[ijk])
