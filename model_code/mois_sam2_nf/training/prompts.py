"""SAM2-style click simulation for training clips.

Coordinates follow SAM2's prompt encoder: points are ``(x, y) = (col, row)`` in pixels of the ``S × S`` model input,
float32, shape ``(N, P, 2)``; labels are int32 ``(N, P)`` with 1 = positive, 0 = negative. Masks are bool ``(N, S, S)``
indexed ``[object, row, col]``. Every random choice draws from an explicit :class:`numpy.random.Generator`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PromptPlan:
    """Which frames of a clip get clicks.

    Attributes:
        init_cond_frames: frames with one initial click per object, decoded without memory (sorted, includes 0).
        correction_frames: frames that receive corrective clicks (a superset of ``init_cond_frames``); after
            correction they are stored as conditioning frames in the memory bank.
    """

    init_cond_frames: tuple[int, ...]
    correction_frames: tuple[int, ...]

    def processing_order(self, num_frames: int) -> list[int]:
        """Initial conditioning frames first, then every other frame in ascending order."""
        return list(self.init_cond_frames) + [t for t in range(num_frames) if t not in self.init_cond_frames]


@dataclass(frozen=True)
class PromptSettings:
    """Click-simulation settings (docs/method.md, Prompt simulation).

    Attributes:
        num_init_cond_frames: most initial conditioning frames (frame 0 always is one).
        random_init_cond_frames: draw the count uniformly from 1..num_init_cond_frames.
        num_correction_frames: most frames that get corrective clicks (never fewer than the initial ones).
        random_correction_frames: draw that count uniformly from the initial count..num_correction_frames.
        num_correction_points: corrective clicks per corrected frame.
        prob_sample_from_gt: probability that a corrective click ignores the prediction and is drawn from the GT.
    """

    num_init_cond_frames: int = 2
    random_init_cond_frames: bool = True
    num_correction_frames: int = 2
    random_correction_frames: bool = True
    num_correction_points: int = 7
    prob_sample_from_gt: float = 0.1


def plan_prompts(num_frames: int, settings: PromptSettings, rng: np.random.Generator) -> PromptPlan:
    """Draw the initial conditioning frames and the corrected frames of a clip of ``num_frames`` frames."""
    if num_frames < 1:
        raise ValueError(f"a clip needs at least one frame, got {num_frames}")
    most_init = max(1, min(settings.num_init_cond_frames, num_frames))
    n_init = int(rng.integers(1, most_init + 1)) if settings.random_init_cond_frames else most_init
    others = np.arange(1, num_frames)
    init = [0] + sorted(int(t) for t in rng.choice(others, size=n_init - 1, replace=False))
    most_corr = max(n_init, min(settings.num_correction_frames, num_frames))
    n_corr = int(rng.integers(n_init, most_corr + 1)) if settings.random_correction_frames else most_corr
    rest = np.array([t for t in range(num_frames) if t not in init], dtype=np.int64)
    extra = [int(t) for t in rng.choice(rest, size=n_corr - n_init, replace=False)] if n_corr > n_init else []
    return PromptPlan(init_cond_frames=tuple(init), correction_frames=tuple(sorted(init + extra)))


def sample_error_clicks(
    gt: torch.Tensor, pred: torch.Tensor | None, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One click per object, uniform over the error region of ``pred`` against ``gt``.

    A pixel missed by the prediction (in ``gt``, not in ``pred``) gives a positive click, a false-positive pixel a
    negative one. ``pred=None`` means "nothing predicted yet", so the click falls inside the GT. Where there is no error
    (or an empty GT with no prediction) the click falls uniformly anywhere and is labelled by the GT at that pixel.

    Args:
        gt: bool ``(N, S, S)`` target masks.
        pred: bool ``(N, S, S)`` current predictions or ``None``.
        rng: random source.
    Returns:
        ``points`` float32 ``(N, 1, 2)`` as ``(x, y)`` pixel coordinates and ``labels`` int32 ``(N, 1)``, on
        ``gt.device``.
    """
    gt_np = gt.detach().bool().cpu().numpy()
    pred_np = np.zeros_like(gt_np) if pred is None else pred.detach().bool().cpu().numpy()
    points = np.zeros((gt_np.shape[0], 1, 2), dtype=np.float32)
    labels = np.zeros((gt_np.shape[0], 1), dtype=np.int32)
    for n, (g, p) in enumerate(zip(gt_np, pred_np)):
        rows, cols = np.nonzero(g ^ p)
        if rows.size == 0:
            rows, cols = np.divmod(np.arange(g.size), g.shape[1])
        pick = int(rng.integers(rows.size))
        row, col = int(rows[pick]), int(cols[pick])
        points[n, 0] = (col, row)
        labels[n, 0] = int(g[row, col])
    return torch.from_numpy(points).to(gt.device), torch.from_numpy(labels).to(gt.device)


def append_clicks(
    prompts: dict[str, torch.Tensor] | None, points: torch.Tensor, labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """SAM2 point-input dict (``point_coords`` ``(N, P, 2)``, ``point_labels`` ``(N, P)``) with the clicks appended."""
    if prompts is None:
        return {"point_coords": points, "point_labels": labels}
    return {
        "point_coords": torch.cat([prompts["point_coords"], points], dim=1),
        "point_labels": torch.cat([prompts["point_labels"], labels], dim=1),
    }


def correction_source(
    pred_logits: torch.Tensor, settings: PromptSettings, rng: np.random.Generator
) -> torch.Tensor | None:
    """The mask a corrective click is drawn against: ``pred_logits > 0``, or ``None`` (from the GT) with
    probability ``settings.prob_sample_from_gt``. ``pred_logits`` is ``(N, 1, S, S)``; the result is ``(N, S, S)``."""
    if rng.random() < settings.prob_sample_from_gt:
        return None
    return pred_logits[:, 0] > 0
