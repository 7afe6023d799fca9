"""Simulated corrective clicks for training: one click at the centre of the largest error region of a prediction.

The rule is the evaluation protocol's ``center`` click (:func:`mois_sam2_nf.data.corrective_click.center_click`): the
largest 26-connected component of the false negatives and false positives together, clicked at its
distance-transform maximum (first voxel in raster order on ties); a missed voxel gets a positive click, a false
positive a negative one.
"""

from __future__ import annotations

import numpy as np

from mois_sam2_nf.data.corrective_click import center_click
from mois_sam2_nf.data.view import ScanView

Voxel = tuple[int, int, int]


def corrective_click(prediction: np.ndarray, label: np.ndarray) -> tuple[Voxel, bool] | None:
    """The next click for ``prediction`` against ``label`` (both bool ``(R, C, F)`` working-grid arrays, canonical
    axis order), or ``None`` when they agree.

    Returns ``(voxel, positive)``: ``voxel`` an ``(r, c, f)`` index into the arrays, ``positive`` when it lies in
    ``label`` (a missed voxel) and ``False`` when it is a false positive.
    """
    return center_click(label, prediction, ScanView.of_canonical(label.shape))
