"""Evaluation adapter ``"sw_fastedit"``: SW-FastEdit on whole scans (docs/baselines.md, SW-FastEdit).

Every interaction runs a MONAI sliding-window inference over the whole working volume with the lesion's click balls
as guidance (:class:`~mois_sam2_nf.models.guided_cnn.adapter.GuidedCNNSegmenter` does the rest).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from monai.inferers import sliding_window_inference

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import register_segmenter
from mois_sam2_nf.models.guided_cnn.adapter import GuidedCNNSegmenter, Voxel
from mois_sam2_nf.models.guided_cnn.grid import WorkingVolume
from mois_sam2_nf.models.guided_cnn.guidance import ball_guidance
from mois_sam2_nf.models.guided_cnn.training import read_meta
from mois_sam2_nf.models.sw_fastedit.config import SWFastEditConfig, load_config
from mois_sam2_nf.models.sw_fastedit.network import build_network


@register_segmenter("sw_fastedit")
class SWFastEditSegmenter(GuidedCNNSegmenter):
    """SW-FastEdit (interactive; each lesion from its own clicks).

    Args:
        config: ``sw_fastedit``, ``sw_fastedit_smoke`` or a YAML path.
        checkpoint: ``{"model": state_dict}`` file with its ``meta.json`` beside it; ``None`` = random weights
            (tests only; no meta check).
        fold: project fold the evaluation expects (checked against ``meta.json``).
        device: torch device string.
        other keywords: options of the other adapters (e.g. ``precision``) are accepted and ignored.
    """

    name = "sw_fastedit"
    config: SWFastEditConfig

    def __init__(self, config: str = "sw_fastedit", checkpoint: str | os.PathLike[str] | None = None, fold: int = 1,
                 device: str = "cpu", **_: Any) -> None:
        super().__init__(load_config(config))
        self.device = torch.device(device)
        self.network = build_network(self.config.network.filters).to(self.device).eval()
        if checkpoint is not None:
            path = Path(checkpoint)
            if not path.is_file():
                raise InputError(f"{path}: checkpoint file not found")
            read_meta(path, self.config, int(fold))
            state = torch.load(path, map_location=self.device, weights_only=True)
            try:
                self.network.load_state_dict(state["model"])
            except (KeyError, RuntimeError) as err:
                raise InputError(f"{path}: not an SW-FastEdit checkpoint for this config "
                                 f"({str(err).splitlines()[0]})") from None

    def foreground_probability(self, volume: WorkingVolume, positives: list[Voxel],
                               negatives: list[Voxel]) -> torch.Tensor:
        """Sliding-window softmax foreground over image + click balls, ``(R, C, F)``."""
        guidance = ball_guidance(tuple(volume.image.shape[1:]), positives, negatives)
        inputs = torch.cat([volume.image, guidance])[None].to(self.device)
        inference = self.config.inference
        logits = sliding_window_inference(inputs, roi_size=inference.roi, sw_batch_size=inference.sw_batch,
                                          predictor=self.network, overlap=inference.overlap, mode="gaussian")
        if not isinstance(logits, torch.Tensor):  # one tensor in, one tensor out
            raise TypeError(f"sliding-window inference returned {type(logits).__name__}, expected a tensor")
        return torch.softmax(logits, dim=1)[0, 1]
