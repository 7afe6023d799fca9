"""Evaluation adapter ``"vista3d"``: VISTA3D's point branch (interactive) and class branch (automatic).

The scan goes onto the working grid once per scan (:func:`~mois_sam2_nf.models.guided_cnn.grid.working_volume`:
canonical view, optional resampling, z-score over non-zero voxels); clicks ``(i, j, k)`` become working voxels
``(r, c, f)`` and the foreground probability goes back to a bool ``(I, J, K)`` mask on the original grid.

The network input is the working volume with :data:`LEAD` zero voxels added before the first row, column and frame
(clicks shifted by the same amount, logits cropped before they go back): MONAI's point inferer drops a click that lies
on the first voxel of its window, which would silently ignore every click on the scan's first row, column or frame.

Interactive: each lesion is its own object with its own clicks. Its first interaction starts from no previous
prediction; each later interaction sends all the lesion's clicks with the logits of its previous interaction. Only
the logits of the lesion segmented last are kept: a lesion resumed after another one is replayed interaction by
interaction from its click history, so its mask does not depend on what was clicked in between.

Automatic (:meth:`VISTA3DSegmenter.automatic`): the class head over the whole scan, computed once per scan.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mois_sam2_nf.data.view import triple
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, Scan, register_segmenter
from mois_sam2_nf.models.click_history import ClickHistorySegmenter
from mois_sam2_nf.models.guided_cnn.grid import WorkingVolume, working_volume
from mois_sam2_nf.models.guided_cnn.training import read_meta
from mois_sam2_nf.models.vista3d.config import load_config
from mois_sam2_nf.models.vista3d.inference import (
    WindowEmbeddingCache,
    automatic_logits,
    foreground_probability,
    point_logits,
)
from mois_sam2_nf.models.vista3d.network import build_network, load_bundle_weights

#: zero voxels added before the first row, column and frame of the network input
LEAD = 1


@register_segmenter("vista3d")
class VISTA3DSegmenter(ClickHistorySegmenter):
    """VISTA3D (interactive: each lesion from its own clicks; automatic: the class head).

    Args:
        config: ``vista3d``, ``vista3d_smoke`` or a YAML path.
        checkpoint: ``model.pt`` written by ``train-vista3d`` (``{"model": state_dict}``) with its ``meta.json``
            beside it; ``None`` = random weights (tests only) unless ``bundle_weights`` is given.
        bundle_weights: MONAI VISTA3D bundle (folder or its ``models/model.pt``) for zero-shot runs without
            fine-tuning; exclusive with ``checkpoint``.
        fold: project fold the evaluation expects (checked against ``meta.json``).
        device: torch device string.
        other keywords: options of the other adapters (e.g. ``precision``) are accepted and ignored.
    """

    name = "vista3d"
    automatic_capable = True

    def __init__(self, config: str = "vista3d", checkpoint: str | os.PathLike[str] | None = None,
                 bundle_weights: str | os.PathLike[str] | None = None, fold: int = 1, device: str = "cpu",
                 **_: Any) -> None:
        super().__init__()
        self.config = load_config(config)
        self.device = torch.device(device)
        network = build_network(self.config.network)
        if checkpoint is not None and bundle_weights is not None:
            raise InputError("model 'vista3d': give either checkpoint or bundle_weights, not both")
        if checkpoint is not None:
            path = Path(checkpoint)
            if not path.is_file():
                raise InputError(f"{path}: checkpoint file not found")
            read_meta(path, self.config, int(fold))
            try:
                network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
            except Exception as err:  # torch raises several types for a file that is not such a checkpoint
                raise InputError(f"{path}: not a VISTA3D checkpoint for this config "
                                 f"({str(err).splitlines()[0]})") from None
        elif bundle_weights is not None:
            load_bundle_weights(network, bundle_weights)
        self.network = network.to(self.device).eval()
        self.predictor = WindowEmbeddingCache(self.network, self.config.inference.embedding_cache)
        self.volume: WorkingVolume | None = None
        self.image: torch.Tensor | None = None
        self.interaction_ends: dict[int, list[int]] = {}
        self.last: tuple[int, torch.Tensor] | None = None
        self.auto_mask: np.ndarray | None = None

    def start_scan(self, scan: Scan) -> None:
        """Put the scan on the working grid; the embedding cache, histories and masks start empty."""
        self.end_scan()
        grid = self.config.grid
        self.volume = working_volume(scan.image, scan.view, grid.spacing, grid.divisor)
        self.image = F.pad(self.volume.image, (LEAD, 0) * 3)[None].to(self.device)
        self.scan = scan

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        """Add ``clicks`` as one interaction of ``lesion_id`` and segment it; bool ``(I, J, K)`` mask.

        An empty ``clicks`` list returns the lesion's current mask (empty for a lesion without clicks).
        """
        history = self.record(lesion_id, clicks)
        ends = self.interaction_ends.setdefault(lesion_id, [])
        if clicks:
            ends.append(len(history))
        if not ends:
            assert self.scan is not None  # record() refuses clicks before start_scan()
            return np.zeros(self.scan.shape, dtype=bool)
        if self.last is not None and self.last[0] == lesion_id:
            previous, replay = self.last[1], ends[-1:] if clicks else []
        else:
            previous, replay = None, ends
        for end in replay:
            previous = self._interaction(history[:end], previous)
        assert previous is not None
        self.last = (lesion_id, previous)
        return self._to_original(previous)

    def _interaction(self, clicks: list[Click], previous: torch.Tensor | None) -> torch.Tensor:
        """``(1, 1, R, C, F)`` logits of one object from its ``clicks`` and previous logits."""
        assert self.volume is not None and self.image is not None
        positives = [self._voxel(c) for c in clicks if c.positive]
        negatives = [self._voxel(c) for c in clicks if not c.positive]
        with torch.no_grad():
            return point_logits(self.predictor, self.image, positives, negatives, previous, self.config.inference)

    def _voxel(self, click: Click) -> tuple[int, int, int]:
        """Original ``(i, j, k)`` -> voxel of the network input (working voxel + :data:`LEAD`)."""
        assert self.volume is not None
        return triple(v + LEAD for v in self.volume.voxel(click[:3]))

    def _to_original(self, logits: torch.Tensor) -> np.ndarray:
        """``(1, 1, R+LEAD, C+LEAD, F+LEAD)`` logits of the network input -> bool ``(I, J, K)`` mask."""
        assert self.volume is not None
        return self.volume.to_original(foreground_probability(logits[..., LEAD:, LEAD:, LEAD:]))

    def forget_lesion(self, lesion_id: int) -> None:
        """Drop the clicks and logits of ``lesion_id``."""
        super().forget_lesion(lesion_id)
        self.interaction_ends.pop(lesion_id, None)
        if self.last is not None and self.last[0] == lesion_id:
            self.last = None

    def automatic(self) -> np.ndarray:
        """Bool ``(I, J, K)`` NF mask of the class head over the whole scan (computed once per scan)."""
        if self.volume is None or self.image is None:
            raise RuntimeError("start_scan() must be called before automatic()")
        if self.auto_mask is None:
            with torch.no_grad():
                logits = automatic_logits(self.network, self.image, self.config.inference)
            self.auto_mask = self._to_original(logits)
        return self.auto_mask

    def end_scan(self) -> None:
        """Drop the working volume, embeddings, click histories and masks."""
        self.predictor.clear()
        self.volume = self.image = self.scan = self.last = self.auto_mask = None
        self.history, self.interaction_ends = {}, {}
