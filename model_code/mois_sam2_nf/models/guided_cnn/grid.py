"""The working grid of the CNN baselines (docs/baselines.md, DINs and SW-FastEdit).

A scan goes to the canonical view (rows S->I, cols R->L, frames P->A), is resampled to the model's spacing when one is
set (MONAI ``Spacing``: trilinear for images, nearest for labels), z-scored over its non-zero voxels (MONAI
``NormalizeIntensity(nonzero=True)``) and zero-padded at the far end of each axis to a multiple of the network's
divisor. Predictions come back the other way: crop the padding, resample the foreground probability trilinearly to
the canonical native grid, threshold at 0.5, invert the canonical view exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import NormalizeIntensity, Spacing

from mois_sam2_nf.data.view import ScanView, triple

Spacing3 = tuple[float, float, float]


def _resample(array: np.ndarray, native: Spacing3, target: Spacing3, mode: str) -> np.ndarray:
    """Canonical ``(R, C, F)`` array from ``native`` to ``target`` spacing with MONAI ``Spacing``."""
    tensor = MetaTensor(torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)[None], affine=torch.diag(
        torch.tensor([*native, 1.0], dtype=torch.float64)))
    resampled = Spacing(pixdim=target, mode=mode, padding_mode="border" if mode != "nearest" else "zeros")(tensor)
    return np.asarray(resampled[0])


@dataclass(frozen=True)
class WorkingVolume:
    """One scan on the working grid.

    Attributes:
        image: ``(1, R, C, F)`` float32 tensor, z-scored and padded (``R, C, F`` multiples of the divisor).
        shape: ``(r, c, f)`` working shape before padding.
        native_shape: canonical native ``(H, W, F)``.
        scale: working voxels per native voxel along ``(rows, cols, frames)``.
        view: the scan's canonical view.
        spacing: the working voxel size if the scan was resampled, ``None`` on the native grid.
    """

    image: torch.Tensor
    shape: tuple[int, int, int]
    native_shape: tuple[int, int, int]
    scale: tuple[float, float, float]
    view: ScanView
    spacing: Spacing3 | None

    def voxel(self, ijk: Sequence[int]) -> tuple[int, int, int]:
        """Original voxel ``(i, j, k)`` -> working voxel ``(r, c, f)`` (nearest, clipped to the unpadded grid)."""
        canonical = np.asarray(self.view.ijk_to_canonical(tuple(int(v) for v in ijk)), dtype=float)
        working = np.rint((canonical + 0.5) * np.asarray(self.scale) - 0.5).astype(int)
        return triple(int(v) for v in np.clip(working, 0, np.asarray(self.shape) - 1))

    def to_original(self, probability: torch.Tensor) -> np.ndarray:
        """``(R, C, F)`` padded working-grid foreground probability -> original ``(I, J, K)`` bool mask (>= 0.5)."""
        r, c, f = self.shape
        cropped = probability[:r, :c, :f].float()
        if self.shape != self.native_shape:
            cropped = F.interpolate(cropped[None, None], size=self.native_shape, mode="trilinear",
                                    align_corners=False)[0, 0]
        canonical = (cropped >= 0.5).cpu().numpy()
        return np.ascontiguousarray(self.view.from_canonical(canonical)).astype(bool)


def working_volume(image: np.ndarray, view: ScanView, spacing: Sequence[float] | None,
                   divisor: Sequence[int]) -> WorkingVolume:
    """Put an original-grid ``(I, J, K)`` image on the working grid.

    Args:
        image: the scan array as stored.
        view: its canonical view.
        spacing: working voxel size ``(row, col, frame)`` in mm; ``None`` keeps the native grid.
        divisor: pad rows, cols, frames to multiples of these.
    """
    canonical = view.to_canonical(np.asarray(image, dtype=np.float32))
    native_shape = triple(int(s) for s in canonical.shape)
    target = None if spacing is None or tuple(spacing) == tuple(view.spacing) else triple(float(v) for v in spacing)
    if target is not None:
        canonical = _resample(canonical, view.spacing, target, "bilinear")
    normalised = NormalizeIntensity(nonzero=True)(torch.as_tensor(np.ascontiguousarray(canonical))[None])
    shape = triple(int(s) for s in canonical.shape)
    padded_shape = [int(np.ceil(s / d) * d) for s, d in zip(shape, divisor)]
    padded = torch.zeros((1, *padded_shape), dtype=torch.float32)
    padded[:, : shape[0], : shape[1], : shape[2]] = torch.as_tensor(normalised, dtype=torch.float32)
    scale = triple(s / n for s, n in zip(shape, native_shape))
    return WorkingVolume(padded, shape, native_shape, scale, view, target)


def working_label(label: np.ndarray, volume: WorkingVolume) -> torch.Tensor:
    """Binary ``(1, R, C, F)`` float label on ``volume``'s padded working grid (nearest resampling)."""
    canonical = volume.view.to_canonical(np.asarray(label) > 0).astype(np.float32)
    if volume.spacing is not None:
        canonical = _resample(canonical, volume.view.spacing, volume.spacing, "nearest")
    out = torch.zeros_like(volume.image)
    r, c, f = volume.shape
    out[0, :r, :c, :f] = torch.as_tensor(np.ascontiguousarray(canonical[:r, :c, :f]))
    return out
