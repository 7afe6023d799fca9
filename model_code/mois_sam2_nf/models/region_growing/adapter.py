"""Evaluation adapter ``"region_growing"``: click-seeded 3-D region growing, the classical interactive peer.

Implements :class:`~mois_sam2_nf.evaluation.interface.InteractiveSegmenter`. Clicks arrive as original-grid voxel
indices ``(i, j, k)``; each :meth:`RegionGrowingSegmenter.add_clicks` appends the new clicks to the lesion's history
and regrows the lesion from all of them (:mod:`mois_sam2_nf.models.region_growing.grow`). The growing runs on the scan
as stored, with the voxel sizes of its affine, and returns a bool mask of the scan's shape. No weights, no
propagation, no automatic mode.
"""

from __future__ import annotations

import numpy as np

from mois_sam2_nf.evaluation.interface import Click, Scan, register_segmenter
from mois_sam2_nf.models.region_growing.grow import GrowParams, RegionGrower, voxel_spacing


@register_segmenter("region_growing")
class RegionGrowingSegmenter:
    """Seeded region growing from each lesion's positive clicks, cut by its negative clicks.

    Args:
        fraction: position of the threshold between the background level (0) and the lesion level (1).
        lesion_percentile: percentile of the intensities near a click taken as the lesion level.
        initial_radius_mm: radius of the ball around a click that gives the lesion level.
        max_radius_mm: radius of the ball around a click outside which nothing is grown.
    """

    name = "region_growing"
    interactive = True
    automatic_capable = False
    propagates = False

    def __init__(
        self,
        fraction: float = GrowParams.fraction,
        lesion_percentile: float = GrowParams.lesion_percentile,
        initial_radius_mm: float = GrowParams.initial_radius_mm,
        max_radius_mm: float = GrowParams.max_radius_mm,
    ) -> None:
        self.params = GrowParams(fraction=float(fraction), lesion_percentile=float(lesion_percentile),
                                 initial_radius_mm=float(initial_radius_mm), max_radius_mm=float(max_radius_mm))
        self.scan: Scan | None = None
        self.grower: RegionGrower | None = None
        self.history: dict[int, list[Click]] = {}

    def start_scan(self, scan: Scan) -> None:
        """Keep the scan; the seed-region cache starts empty."""
        self.end_scan()
        self.scan = scan
        self.grower = RegionGrower(np.asarray(scan.image), voxel_spacing(scan.affine), self.params)

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        """Append ``clicks`` to the history of ``lesion_id`` and regrow it; bool ``(I, J, K)`` mask."""
        scan, grower = self._require_scan()
        for click in clicks:
            scan.check_click(click)
        history = self.history.setdefault(lesion_id, [])
        history.extend(Click(*click) for click in clicks)
        positives = [(c.i, c.j, c.k) for c in history if c.positive]
        negatives = [(c.i, c.j, c.k) for c in history if not c.positive]
        return grower.segment(positives, negatives)

    def forget_lesion(self, lesion_id: int) -> None:
        """Drop the click history of ``lesion_id`` (the scan's seed-region cache is kept)."""
        self.history.pop(lesion_id, None)

    def propagate(self) -> np.ndarray | None:
        """Region growing does not propagate to unprompted lesions."""
        return None

    def automatic(self) -> np.ndarray | None:
        """Region growing needs clicks."""
        return None

    def end_scan(self) -> None:
        """Drop the scan, its cache and the click histories."""
        self.scan = None
        self.grower = None
        self.history = {}

    def _require_scan(self) -> tuple[Scan, RegionGrower]:
        if self.scan is None or self.grower is None:
            raise RuntimeError("region_growing: start_scan() must be called before clicks")
        return self.scan, self.grower
