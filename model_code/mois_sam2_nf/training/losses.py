"""Training losses of SAM2 / MOIS-SAM2: focal, dice, IoU-L1 and object-score terms.

All mask tensors are logits or {0, 1} targets of shape ``(N, M, H, W)``: ``N`` objects, ``M`` candidate masks per
object (3 for a multimask head, else 1), spatial axes ``(row, col)``. Per-object terms are summed over objects and
divided by ``num_objects`` (the number of supervised objects, averaged over DDP ranks by the caller), so a clip with
more objects does not weigh more in the gradient.

For a multimask prediction only the candidate with the lowest ``w_focal·focal + w_dice·dice`` is supervised by the
focal and dice terms; the IoU head is supervised on every candidate (mean over candidates) or only on that one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def sigmoid_focal(logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Element-wise sigmoid focal loss (Lin et al. 2017); ``alpha < 0`` disables the class weighting.

    Args:
        logits: float tensor of any shape.
        targets: same shape, values in {0, 1}.
    Returns:
        Tensor of the input shape (no reduction). With ``alpha < 0`` and ``gamma == 0`` this is plain BCE.
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    prob = torch.sigmoid(logits)
    prob_true_class = torch.where(targets > 0.5, prob, 1.0 - prob)
    loss = bce * (1.0 - prob_true_class).pow(gamma)
    if alpha >= 0:
        loss = loss * torch.where(targets > 0.5, alpha, 1.0 - alpha)
    return loss


def soft_dice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss ``1 - (2|p·g| + 1) / (|p| + |g| + 1)`` with ``p = sigmoid(logits)``, per leading index.

    Args:
        logits, targets: ``(N, M, H, W)``.
    Returns:
        ``(N, M)`` float tensor.
    """
    prob = torch.sigmoid(logits).flatten(2)
    gt = targets.flatten(2)
    return 1.0 - (2.0 * (prob * gt).sum(-1) + 1.0) / (prob.sum(-1) + gt.sum(-1) + 1.0)


def iou_l1(logits: torch.Tensor, targets: torch.Tensor, predicted_iou: torch.Tensor) -> torch.Tensor:
    """``|predicted IoU - IoU(logits > 0, targets > 0)|`` per mask (the measured IoU carries no gradient).

    Args:
        logits, targets: ``(N, M, H, W)``; predicted_iou: ``(N, M)``.
    Returns:
        ``(N, M)`` float tensor. An empty prediction of an empty target has IoU 0 (union clamped to 1).
    """
    pred = (logits > 0).flatten(2)
    gt = (targets > 0.5).flatten(2)
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float().clamp(min=1.0)
    return (predicted_iou.float() - inter / union).abs()


@dataclass(frozen=True)
class MaskLossWeights:
    """Weights and focal parameters of one mask loss (instance or semantic)."""

    focal: float = 20.0
    dice: float = 1.0
    iou: float = 1.0
    object_score: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    object_score_alpha: float = -1.0
    object_score_gamma: float = 0.0
    supervise_all_iou: bool = True
    gate_by_presence: bool = True


def mask_loss_terms(
    mask_logits: torch.Tensor,
    predicted_iou: torch.Tensor,
    object_score_logits: torch.Tensor | None,
    targets: torch.Tensor,
    weights: MaskLossWeights,
    num_objects: float,
) -> dict[str, torch.Tensor]:
    """Unweighted loss terms of one prediction step.

    Args:
        mask_logits: ``(N, M, H, W)`` float logits at target resolution.
        predicted_iou: ``(N, M)`` IoU-head output.
        object_score_logits: ``(N, 1)`` logits or ``None`` (term is then 0).
        targets: ``(N, H, W)`` bool/float ground truth per object.
        weights: focal parameters, candidate selection and gating (when ``gate_by_presence`` the mask terms of an
            object absent from ``targets`` are zeroed, as in SAM2).
        num_objects: normaliser (>= 1).
    Returns:
        dict with scalar tensors ``focal``, ``dice``, ``iou``, ``object_score``.
    """
    gt = targets.float().unsqueeze(1).expand_as(mask_logits)
    focal = sigmoid_focal(mask_logits.float(), gt, weights.focal_alpha, weights.focal_gamma).flatten(2).mean(-1)
    dice = soft_dice(mask_logits.float(), gt)
    iou = iou_l1(mask_logits, gt, predicted_iou)
    if mask_logits.shape[1] > 1:
        best = torch.argmin(focal * weights.focal + dice * weights.dice, dim=1, keepdim=True)
        iou = iou.mean(1, keepdim=True) if weights.supervise_all_iou else iou.gather(1, best)
        focal, dice = focal.gather(1, best), dice.gather(1, best)
    present = gt[:, 0].flatten(1).amax(-1, keepdim=True)
    gate = present if weights.gate_by_presence else torch.ones_like(present)
    if object_score_logits is None:
        object_score = mask_logits.new_zeros(())
    else:
        object_score = sigmoid_focal(
            object_score_logits.float(), present, weights.object_score_alpha, weights.object_score_gamma
        ).sum()
    return {
        "focal": (focal * gate).sum() / num_objects,
        "dice": (dice * gate).sum() / num_objects,
        "iou": (iou * gate).sum() / num_objects,
        "object_score": object_score / num_objects,
    }


def weighted_total(terms: dict[str, torch.Tensor], weights: MaskLossWeights) -> torch.Tensor:
    """``w_focal·focal + w_dice·dice + w_iou·iou + w_obj·object_score`` (a scalar tensor)."""
    return (
        weights.focal * terms["focal"]
        + weights.dice * terms["dice"]
        + weights.iou * terms["iou"]
        + weights.object_score * terms["object_score"]
    )
