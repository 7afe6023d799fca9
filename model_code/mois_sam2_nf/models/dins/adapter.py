"""Evaluation adapter ``"dins"``: DINs through ONNX Runtime on whole scans (docs/baselines.md, DINs).

Every interaction runs a MONAI sliding-window inference in DINs' layout ``(D, H, W)`` = (frames, rows, cols) on the
image and the lesion's ExpDT guidance, ONNX Runtime doing the forward passes
(:class:`~mois_sam2_nf.models.guided_cnn.adapter.GuidedCNNSegmenter` does the rest).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from monai.inferers import sliding_window_inference

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import register_segmenter
from mois_sam2_nf.models.dins.config import DINsConfig, load_config
from mois_sam2_nf.models.dins.network import DINsNet
from mois_sam2_nf.models.dins.onnx_io import onnx_logits, onnx_session
from mois_sam2_nf.models.dins.train import from_dins, to_dins
from mois_sam2_nf.models.guided_cnn.adapter import GuidedCNNSegmenter, Voxel
from mois_sam2_nf.models.guided_cnn.grid import WorkingVolume
from mois_sam2_nf.models.guided_cnn.guidance import expdt_guidance
from mois_sam2_nf.models.guided_cnn.training import read_meta


@register_segmenter("dins")
class DINsSegmenter(GuidedCNNSegmenter):
    """DINs (interactive; each lesion from its own clicks).

    Args:
        config: ``dins``, ``dins_smoke`` or a YAML path.
        checkpoint: ``checkpoint.onnx`` with its ``meta.json`` beside it; ``None`` = a random PyTorch network (tests).
        fold: project fold the evaluation expects (checked against ``meta.json``).
        other keywords: options of the other adapters (e.g. ``device``, ``precision``) are accepted and ignored;
            ONNX Runtime picks CUDA when available.
    """

    name = "dins"
    config: DINsConfig

    def __init__(self, config: str = "dins", checkpoint: str | os.PathLike[str] | None = None, fold: int = 1,
                 **_: Any) -> None:
        super().__init__(load_config(config))
        if checkpoint is None:
            network = DINsNet(self.config.network.base_channels, self.config.network.max_channels).eval()
            self._forward = lambda x: network(x[:, :1], x[:, 1:])
        else:
            path = Path(checkpoint)
            if path.suffix != ".onnx":
                raise InputError(f"{path}: DINs checkpoints are ONNX files (checkpoint.onnx)")
            session = onnx_session(path)
            read_meta(path, self.config, int(fold))
            self._forward = lambda x: onnx_logits(session, x)

    def foreground_probability(self, volume: WorkingVolume, positives: list[Voxel],
                               negatives: list[Voxel]) -> torch.Tensor:
        """Sliding-window softmax foreground over image + ExpDT guidance, back in working order ``(R, C, F)``."""
        guidance, inference = self.config.guidance, self.config.inference
        guide = expdt_guidance(tuple(volume.image.shape[1:]), positives, negatives, guidance.sigma, guidance.gamma)
        inputs = to_dins(torch.cat([volume.image, guide])[None])
        rows, cols, frames = inference.roi
        logits = sliding_window_inference(inputs, roi_size=(frames, rows, cols), sw_batch_size=inference.sw_batch,
                                          predictor=self._forward, overlap=inference.overlap, mode="gaussian")
        if not isinstance(logits, torch.Tensor):  # one tensor in, one tensor out
            raise TypeError(f"sliding-window inference returned {type(logits).__name__}, expected a tensor")
        return from_dins(torch.softmax(logits, dim=1))[0, 1]
