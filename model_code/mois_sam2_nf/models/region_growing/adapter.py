"""Evaluation adapter ``"region_growing"``: click-seeded 3-D region growing, the classical interactive peer.

Implements :class:`~mois_sam2_nf.segmenters.InteractiveSegmenter`. Clicks arrive as original-grid voxel
indices ``(i, j, k)``; each :meth:`RegionGrowingSegmenter.add_clicks` appends the new clicks to the lesion's history
and regrows the lesion from all of them (:mod:`mois_sam2_nf.models.region_growing.grow`). The growing runs on the scan
as stored, with the voxel sizes of its affine, and returns a bool mask of the scan's shape. No weights, no
propagation, no automatic mode.
"""

from __future__ import annotations

import numpy as np

from mois_sam2_nf.segmenters import Click, Scan, register_segmenter
from mois_sam2_nf.models.click_history import ClickHistorySegmenter
from mois_sam2_nf.models.region_growing.grow import GrowParams, RegionGrower, voxel_spacing


@register_segmenter("region_growing")
class RegionGrowingSegmenter(ClickHistorySegmenter):
    """Seeded region growing from each lesion's positive clicks, cut by its negative clicks.

    Args:
        fraction: position of the threshold between the background level (0) and the lesion level (1).
        lesion_percentile: percentile of the intensities near a click taken as the lesion level.
        initial_radius_mm: radius of the ball around a click that gives the lesion level.
        max_radius_mm: radius of the ball around a click outside which nothing is grown.
    """

    name = "region_growing"
    def __init__(
        self,
        fraction: float = GrowParams.fraction,
        lesion_percentile: float = GrowParams.lesion_percentile,
        initial_radius_mm: float = GrowParams.initial_radius_mm,
        max_radius_mm: float = GrowParams.max_radius_mm,
    ) -> None:
        super().__init__()
        self.params = GrowParams(fraction=float(fraction), lesion_percentile=float(lesion_percentile),
                                 initial_radius_mm=float(initial_radius_mm), max_radius_mm=float(max_radius_mm))
        self.grower: RegionGrower | None = None

    def start_scan(self, scan: Scan) -> None:
        """Keep the scan; the seed-region cache starts empty."""
        self.end_scan()
        self.scan = scan
        self.grower = RegionGrower(np.asarray(scan.image), voxel_spacing(scan.affine), self.params)

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        """Append ``clicks`` to the history of ``lesion_id`` and regrow it; bool ``(I, J, K)`` mask."""
        history = self.record(lesion_id, clicks)
        assert self.grower is not None  # set with the scan by start_scan()
        positives = [(c.i, c.j, c.k) for c in history if c.positive]
        negatives = [(c.i, c.j, c.k) for c in history if not c.positive]
        return self.grower.segment(positives, negatives)

    def end_scan(self) -> None:
        """Drop the scan, its cache and the click histories."""
        self.scan = None
        self.grower = None
        self.history = {}
