"""Mask post-processing shared by the SAM2-family predictors, implemented natively (no sam2 ``_C`` extension).

Hole filling: background pixels of a logit map (``logit <= 0``) form 8-connected components per image; every such
component whose area is at most ``max_area`` pixels is a hole and its logits are set to ``HOLE_FILL_LOGIT`` (a small
positive score, so the hole turns into foreground while staying distinguishable from confident predictions). The result
is identical on CPU and CUDA because labelling always runs in scipy on the host.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

#: logit written into filled holes (sam2's convention)
HOLE_FILL_LOGIT: float = 0.1

#: 8-connectivity in 2-D
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def hole_mask(logits: np.ndarray, max_area: int) -> np.ndarray:
    """Bool ``(h, w)`` map of the holes of one 2-D ``(h, w)`` logit map.

    A hole is an 8-connected background area of at most ``max_area`` pixels.
    """
    labels, count = ndimage.label(logits <= 0, structure=_EIGHT_CONNECTED)
    if count == 0:
        return np.zeros(logits.shape, dtype=bool)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    small = areas <= max_area
    small[0] = False
    return small[labels]


def fill_holes(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """Fill small background holes in a batch of logit maps.

    Args:
        logits: ``(B, C, h, w)`` float tensor of mask logits (any device, any float dtype).
        max_area: largest hole area in pixels; ``<= 0`` returns ``logits`` unchanged.

    Returns:
        A tensor of the same shape, dtype and device, with hole pixels set to :data:`HOLE_FILL_LOGIT`.
    """
    if max_area <= 0:
        return logits
    host = logits.detach().float().cpu().numpy()
    holes = np.zeros(host.shape, dtype=bool)
    for b in range(host.shape[0]):
        for c in range(host.shape[1]):
            holes[b, c] = hole_mask(host[b, c], max_area)
    if not holes.any():
        return logits
    return torch.where(torch.from_numpy(holes).to(logits.device), torch.tensor(HOLE_FILL_LOGIT, dtype=logits.dtype,
                                                                               device=logits.device), logits)
