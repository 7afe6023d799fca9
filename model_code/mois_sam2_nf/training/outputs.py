"""Typed containers passed from the training forward (:mod:`.forward`) to the losses (:mod:`.objective`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class StepOutput:
    """One decoder pass (an initial prediction or one corrective click) for ``N`` objects.

    Attributes:
        multimask_logits: ``(N, M, S, S)`` float logits at image resolution ``S`` (``M`` = 3 for multimask, else 1).
        ious: ``(N, M)`` IoU-head predictions.
        object_score_logits: ``(N, 1)`` object-presence logits.
        mask_logits: ``(N, 1, S, S)`` the selected mask (highest predicted IoU), used for metrics.
    """

    multimask_logits: torch.Tensor
    ious: torch.Tensor
    object_score_logits: torch.Tensor
    mask_logits: torch.Tensor


@dataclass
class FrameOutput:
    """Everything predicted on one frame of a clip.

    Attributes:
        frame: index of the frame inside the clip.
        steps: the decoder passes in order (first = before any corrective click).
        semantic: MOIS-SAM2 only: the exemplar-based semantic predictions of the frame, one per clip of the batch
            (``N = B``), else ``None``.
    """

    frame: int
    steps: list[StepOutput] = field(default_factory=list)
    semantic: StepOutput | None = None
