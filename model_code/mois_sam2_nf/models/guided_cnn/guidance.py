"""Clicks -> guidance channels on the working grid.

SW-FastEdit's encoding (baselines spec section 5): a one-hot voxel per click in its channel, MONAI
``GaussianFilter(sigma=1)``, min-max scaling to [0, 1] and a threshold at 0.1, i.e. binary balls of radius about 3
voxels. Channel 0 holds the positive (lesion) clicks, channel 1 the negative (background) clicks.
"""

from __future__ import annotations

from collections.abc import Sequence

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
