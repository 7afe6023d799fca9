"""The clip loss: instance terms over frames and decoder passes, plus the MOIS-SAM2 semantic terms.

``loss_all_steps=True`` (default) supervises every decoder pass of each frame, so the single-mask output that SAM2
uses once a frame holds more than ``multimask_max_pt_num`` clicks is trained too; ``False`` (the reference's setting)
supervises only the first pass (before any corrective click). The instance loss is normalised by the number of objects
(averaged over DDP ranks by the caller); the semantic loss (one prediction per clip and frame) by the number of clips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mois_sam2_nf.training.dataset import ClipBatch
from mois_sam2_nf.training.forward import ClipForward, ClipOutput
from mois_sam2_nf.training.losses import MaskLossWeights, mask_loss_terms, weighted_total
from mois_sam2_nf.training.outputs import StepOutput

TERMS = ("focal", "dice", "iou", "object_score")


@dataclass(frozen=True)
class ObjectiveSettings:
    """Weights of the instance and semantic losses and the step selection."""

    instance: MaskLossWeights = field(default_factory=MaskLossWeights)
    semantic: MaskLossWeights = field(
        default_factory=lambda: MaskLossWeights(focal=20.0, dice=1.0, iou=1.0, object_score=1.0, gate_by_presence=False)
    )
    semantic_weight: float = 1.0
    loss_all_steps: bool = True


def _accumulate(into: dict[str, torch.Tensor], prefix: str, terms: dict[str, torch.Tensor]) -> None:
    for name, value in terms.items():
        key = f"{prefix}_{name}"
        into[key] = into[key] + value if key in into else value


def clip_loss(
    output: ClipOutput, clip: ClipBatch, settings: ObjectiveSettings, num_objects: float
) -> dict[str, torch.Tensor]:
    """Loss of one clip.

    Args:
        output: the forward's per-frame outputs.
        clip: the clips (``masks`` ``(N, T, S, S)`` and ``semantic`` ``(B, T, S, S)`` targets).
        settings: weights and step selection.
        num_objects: instance-loss normaliser (objects per clip, averaged over ranks).
    Returns:
        dict of scalar tensors: ``loss`` (what to back-propagate), ``instance``, ``semantic`` (0 without semantic
        outputs) and the unweighted terms ``instance_<term>`` / ``semantic_<term>``.
    """
    terms: dict[str, torch.Tensor] = {}
    instance = clip.images.new_zeros(())
    semantic = clip.images.new_zeros(())
    for frame_output in output.frames:
        steps: list[StepOutput] = frame_output.steps if settings.loss_all_steps else frame_output.steps[:1]
        target = clip.masks[:, frame_output.frame]
        for step in steps:
            step_terms = mask_loss_terms(
                step.multimask_logits, step.ious, step.object_score_logits, target, settings.instance, num_objects
            )
            instance = instance + weighted_total(step_terms, settings.instance)
            _accumulate(terms, "instance", step_terms)
        if frame_output.semantic is not None:
            sem = frame_output.semantic
            sem_terms = mask_loss_terms(
                sem.multimask_logits, sem.ious, sem.object_score_logits,
                clip.semantic[:, frame_output.frame], settings.semantic, float(clip.num_clips),
            )
            semantic = semantic + weighted_total(sem_terms, settings.semantic)
            _accumulate(terms, "semantic", sem_terms)
    terms.update(loss=instance + settings.semantic_weight * semantic, instance=instance, semantic=semantic)
    return terms


class TrainingStep(torch.nn.Module):
    """Clip forward + loss as one module: the unit that DDP wraps.

    DDP (with ``find_unused_parameters``) looks for parameters in the autograd graph of the *returned* tensors, so
    only the loss terms are returned: decoder passes that the loss does not supervise (``loss_all_steps=False``)
    must not appear in the output, or DDP would wait for gradients that never come.
    """

    def __init__(self, clip_forward: ClipForward, settings: ObjectiveSettings) -> None:
        super().__init__()
        self.clip_forward = clip_forward
        self.settings = settings

    def forward(
        self, clip: ClipBatch, rng: np.random.Generator, num_objects: float
    ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """``(clip_loss terms, forward extras)`` of one batch of clips."""
        output = self.clip_forward(clip, rng)
        return clip_loss(output, clip, self.settings, num_objects), output.extras
