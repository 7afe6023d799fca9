"""The evaluation-adapter behaviour shared by the click-guided CNN baselines (docs/baselines.md, Shared rules).

Each lesion is segmented from its own clicks only (empty guidance and no previous prediction at its first click; the
runner ORs the lesion masks). The scan goes onto the working grid once per scan; a subclass turns the lesion's
working-grid clicks into the foreground probability (:meth:`GuidedCNNSegmenter.foreground_probability`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from mois_sam2_nf.segmenters import Click, Scan
from mois_sam2_nf.models.click_history import ClickHistorySegmenter
from mois_sam2_nf.models.guided_cnn.config import GuidedCNNConfig
from mois_sam2_nf.models.guided_cnn.grid import WorkingVolume, working_volume

Voxel = tuple[int, int, int]


class GuidedCNNSegmenter(ClickHistorySegmenter, ABC):
    """Interactive adapter base: working volume, per-lesion click histories, masks on the original grid.

    Args:
        config: the model config (its ``grid`` section places the scan on the working grid).
    """

    def __init__(self, config: GuidedCNNConfig) -> None:
        super().__init__()
        self.config = config
        self.volume: WorkingVolume | None = None

    @abstractmethod
    def foreground_probability(self, volume: WorkingVolume, positives: list[Voxel],
                               negatives: list[Voxel]) -> torch.Tensor:
        """``(R, C, F)`` foreground probability on ``volume``'s padded working grid for one lesion's clicks."""

    def start_scan(self, scan: Scan) -> None:
        """Put the scan on the working grid (once per scan)."""
        grid = self.config.grid
        self.volume = working_volume(scan.image, scan.view, grid.spacing, grid.divisor)
        self.scan, self.history = scan, {}

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        """Add clicks to ``lesion_id``'s history and segment it from that history alone; bool ``(I, J, K)`` mask."""
        history = self.record(lesion_id, clicks)
        assert self.volume is not None  # set with the scan by start_scan()
        positives = [self.volume.voxel(c[:3]) for c in history if c.positive]
        negatives = [self.volume.voxel(c[:3]) for c in history if not c.positive]
        with torch.no_grad():
            probability = self.foreground_probability(self.volume, positives, negatives)
        return self.volume.to_original(probability)

    def end_scan(self) -> None:
        """Drop the working volume and the click histories."""
        self.volume, self.scan, self.history = None, None, {}
