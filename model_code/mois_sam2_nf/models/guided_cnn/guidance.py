"""Clicks -> guidance channels on the working grid ``(rows, cols, frames)``.

Channel 0 holds the positive (lesion) clicks, channel 1 the negative (background) clicks.

- :func:`ball_guidance` (SW-FastEdit, docs/baselines.md): a one-hot voxel per click, MONAI
  ``GaussianFilter(sigma=1)``, min-max scaling to [0, 1] and a threshold at 0.1: binary balls of radius about 3 voxels.
- :func:`expdt_guidance` (DINs, docs/baselines.md): ``exp(-sum_a (x_a - c_a)^2 / (2 sigma_a^2))`` per click,
  combined per channel by max and scaled by ``gamma``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.networks.layers import GaussianFilter

Voxel = tuple[int, int, int]


def ball_guidance(shape: Sequence[int], positives: Sequence[Voxel], negatives: Sequence[Voxel],
                  sigma: float = 1.0, threshold: float = 0.1) -> torch.Tensor:
    """``(2, R, C, F)`` float32 binary guidance: balls around the positive / negative working-grid voxels.

    A channel without clicks is all zeros. ``shape`` is the padded working shape ``(R, C, F)``.
    """
    channels = torch.zeros((2, *shape), dtype=torch.float32)
    for channel, voxels in enumerate((positives, negatives)):
        for voxel in voxels:
            channels[(channel, *voxel)] = 1.0
    smoothed = GaussianFilter(spatial_dims=3, sigma=sigma)(channels[:, None])[:, 0]
    peak = smoothed.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None, None]
    return ((smoothed / peak) > threshold).float()


def expdt_guidance(shape: Sequence[int], positives: Sequence[Voxel], negatives: Sequence[Voxel],
                   sigma: Sequence[float] = (5.0, 5.0, 1.0), gamma: float = 1.0) -> torch.Tensor:
    """``(2, R, C, F)`` float32 exponential-distance guidance.

    ``sigma`` is per axis, in voxels ``(rows, cols, frames)``.

    Each click is evaluated within 6 sigma of its voxel (beyond that the value is below 2e-8 and left at 0).
    """
    channels = torch.zeros((2, *shape), dtype=torch.float32)
    for channel, voxels in enumerate((positives, negatives)):
        for voxel in voxels:
            window = []
            for centre, size, s in zip(voxel, shape, sigma):
                reach = int(np.ceil(6 * s))
                start, stop = max(0, centre - reach), min(size, centre + reach + 1)
                offsets = torch.arange(start, stop, dtype=torch.float32) - centre
                window.append((slice(start, stop), torch.exp(-(offsets**2) / (2 * s * s))))
            (rows, g_r), (cols, g_c), (frames, g_f) = window
            bump = g_r[:, None, None] * g_c[None, :, None] * g_f[None, None, :]
            region = channels[channel, rows, cols, frames]
            channels[channel, rows, cols, frames] = torch.maximum(region, bump)
    return channels * gamma
