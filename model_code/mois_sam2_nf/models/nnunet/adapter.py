"""Evaluation adapter ``"nnunet"``: nnU-Net v2 automatic segmentation (docs/baselines.md, nnU-Net v2).

The scan array is handed to ``nnUNetPredictor.predict_single_npy_array`` in nnU-Net's axis order: the nibabel
``(i, j, k)`` array transposed to ``(k, j, i)`` with the voxel sizes reversed, which is exactly what nnU-Net's
SimpleITK reader gives for the training files. The prediction is transposed back to the original grid.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, Scan, register_segmenter
from mois_sam2_nf.models.nnunet.train import NNUNetMeta, with_project_trainers


@register_segmenter("nnunet")
class NNUNetSegmenter:
    """nnU-Net v2 baseline (automatic only).

    Args:
        checkpoint: a trained fold folder ``model_weights_finetuned/nnUNet/fold_<k>`` (nnU-Net results + ``meta.json``);
            the runner resolves and records it like the other models' checkpoint files.
        fold: project fold the evaluation expects; must equal the fold recorded in ``meta.json``.
        checkpoint_name: nnU-Net checkpoint file in the fold folder.
        device: torch device string.
        use_mirroring: test-time mirroring (on for real runs, off for the smoke weights).
        tile_step_size: sliding-window step as a fraction of the patch.
        other keywords: options of the other adapters (e.g. ``precision``) are accepted and ignored.
    """

    name = "nnunet"
    interactive = False
    automatic_capable = True
    propagates = False

    def __init__(self, checkpoint: str | os.PathLike[str], fold: int = 1,
                 checkpoint_name: str = "checkpoint_final.pth", device: str = "cpu", use_mirroring: bool = True,
                 tile_step_size: float = 0.5, **_: Any) -> None:
        import torch
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        meta = NNUNetMeta.read(checkpoint)
        if meta.fold != int(fold):
            raise InputError(f"{Path(checkpoint) / 'meta.json'}: trained for fold {meta.fold}, evaluation asks for "
                             f"fold {fold}")
        folder = meta.model_folder(checkpoint)
        weights = folder / f"fold_{meta.nnunet_fold}" / checkpoint_name
        if not weights.is_file():
            raise InputError(f"{weights}: checkpoint file not found")
        with_project_trainers(os.environ)
        torch_device = torch.device(device)
        self.predictor = nnUNetPredictor(tile_step_size=tile_step_size, use_gaussian=True,
                                         use_mirroring=use_mirroring,
                                         perform_everything_on_device=torch_device.type == "cuda",
                                         device=torch_device, allow_tqdm=False)
        self.predictor.initialize_from_trained_model_folder(str(folder), use_folds=(meta.nnunet_fold,),
                                                            checkpoint_name=checkpoint_name)
        self.meta = meta
        self._scan: Scan | None = None
        self._mask: np.ndarray | None = None

    def start_scan(self, scan: Scan) -> None:
        """Keep the scan; the network runs on the first :meth:`automatic` call."""
        self._scan, self._mask = scan, None

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        """nnU-Net takes no clicks."""
        raise InputError("model 'nnunet' is automatic only; use protocol=global_non_corrective")

    def forget_lesion(self, lesion_id: int) -> None:
        """Nothing to forget: nnU-Net keeps no click history."""

    def propagate(self) -> np.ndarray | None:
        """nnU-Net does not propagate."""
        return None

    def automatic(self) -> np.ndarray:
        """Bool ``(I, J, K)`` lesion mask of the whole scan (computed once per scan)."""
        if self._scan is None:
            raise RuntimeError("start_scan() must be called before automatic()")
        if self._mask is None:
            image = np.asarray(self._scan.image, dtype=np.float32).transpose(2, 1, 0)[None]
            voxel_sizes = np.sqrt((np.asarray(self._scan.affine)[:3, :3] ** 2).sum(axis=0))
            labels = self.predictor.predict_single_npy_array(image, {"spacing": [float(v) for v in voxel_sizes[::-1]]},
                                                             None, None, False)
            self._mask = np.ascontiguousarray(np.asarray(labels).transpose(2, 1, 0) > 0)
        return self._mask

    def end_scan(self) -> None:
        """Drop the scan and its prediction."""
        self._scan, self._mask = None, None
