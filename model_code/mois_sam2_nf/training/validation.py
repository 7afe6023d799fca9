"""Per-epoch validation: Dice of the simulated interactive segmentation on fixed, un-augmented clips.

Each validation clip is run through the same clip forward as training (same prompt simulation, seeded by the clip
index so every epoch sees identical clicks) with the model in eval mode and no gradients. Reported:

- ``val_dice``: mean over (clip, object) of the Dice of the final mask (last decoder pass, logits > 0) over the
  clip's frames, against the object's GT;
- ``val_semantic_dice`` (MOIS-SAM2): mean over clips of the Dice of the semantic masks over the clip's frames
  against the union of all lesions.

Validation clips run one at a time (a batch of one).

Clips are split over DDP ranks (index ``rank::world_size``) and the sums are all-reduced.
"""

from __future__ import annotations

import numpy as np
import torch

from mois_sam2_nf.training.components import autocast
from mois_sam2_nf.training.dataset import ClipBatch, ClipDataset
from mois_sam2_nf.training.distributed import DistContext, all_reduce_sum
from mois_sam2_nf.training.forward import ClipForward


def dice(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Dice per leading index of bool tensors ``(K, ...)``; 1 where both are empty. Returns float ``(K,)``."""
    pred, gt = pred.flatten(1), gt.flatten(1)
    inter = (pred & gt).sum(1).float()
    total = (pred.sum(1) + gt.sum(1)).float()
    return torch.where(total > 0, 2.0 * inter / total.clamp(min=1.0), torch.ones_like(total))


@torch.no_grad()
def validate(
    forward: ClipForward,
    dataset: ClipDataset,
    num_clips: int,
    ctx: DistContext,
    amp_dtype: torch.dtype | None,
    seed: int,
) -> dict[str, float]:
    """Validation metrics of :mod:`this module <.validation>`; restores the model's training mode afterwards."""
    was_training = forward.training
    forward.eval()
    sums = torch.zeros(4, dtype=torch.float64)
    try:
        for index in range(ctx.rank, min(num_clips, len(dataset)), ctx.world_size):
            clip = ClipBatch.from_clips([dataset[index]]).to(ctx.device)
            with autocast(ctx.device, amp_dtype):
                output = forward(clip, np.random.default_rng([seed, index]))
            final = torch.stack([f.steps[-1].mask_logits[:, 0] > 0 for f in output.frames], dim=1)
            per_object = dice(final, clip.masks)
            sums[0] += per_object.sum().item()
            sums[1] += per_object.numel()
            if all(f.semantic is not None for f in output.frames):
                semantic = torch.stack([f.semantic.mask_logits[:, 0] > 0 for f in output.frames], dim=1)
                sums[2] += dice(semantic, clip.semantic).sum().item()
                sums[3] += 1
    finally:
        forward.train(was_training)
    sums = all_reduce_sum(sums, ctx)
    metrics = {"val_dice": float(sums[0] / max(sums[1].item(), 1.0))}
    if sums[3] > 0:
        metrics["val_semantic_dice"] = float(sums[2] / sums[3])
    return metrics
