"""Simulated user: corrective clicks from a target and the current prediction.

Described in docs/evaluation_protocol.md, Click simulation.

Inputs and outputs live on the **original grid** (``(I, J, K)`` bool masks, clicks as ``(i, j, k)`` voxel indices);
the simulator itself works on the canonical coronal view ``(rows S->I, cols R->L, frames P->A)`` of
:class:`~mois_sam2_nf.data.view.ScanView`, because patches and raster-order tie-breaks are defined along its axes.

Strategies:

``patch_dt`` (default, reference-like with fix (a))
    The canonical grid is tiled with non-overlapping patches (edge patches truncated). Per patch and channel
    (background ``(~P, ~T)``, lesion ``(P, T)``) the Dice loss ``1 - (2|P_c & T_c| + eps) / (|P_c| + |T_c| + eps)``
    is computed from sparse per-patch voxel counts; the worst patch per channel is the argmax (first in raster
    order on ties). A positive click is drawn from the false negatives of the lesion channel's worst patch, a negative
    click from the false positives of the background channel's worst patch, each with probability proportional to
    ``exp(min(d, dt_clip)) - 1`` where ``d`` is the Euclidean distance transform of the error inside the patch.

``center``
    One deterministic click at the distance-transform maximum of the largest 26-connected error component
    (:func:`mois_sam2_nf.data.corrective_click.center_click`, also the training click of the guided-CNN baselines).

Randomness: every draw uses :func:`click_rng`, seeded by ``(seed, crc32(case_id), target_rank, interaction,
channel)`` -- independent of model, fold, task order and worker count.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from mois_sam2_nf.data.corrective_click import center_click
from mois_sam2_nf.data.masks import bounding_box, distance_transform, foreground
from mois_sam2_nf.data.view import ScanView, triple
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click

#: smoothing of the per-patch Dice loss
DICE_EPS = 1e-5
STRATEGIES = ("patch_dt", "center")
FALLBACKS = ("none", "center")
POSITIVE, NEGATIVE = 0, 1


@dataclass(frozen=True)
class ClickConfig:
    """Click simulation parameters.

    Attributes:
        strategy: ``"patch_dt"`` or ``"center"``.
        patch_size: patch size in canonical voxels ``(rows, cols, frames)``.
        patch_size_mm: patch extent in mm ``(rows, cols, frames)``; when set it overrides ``patch_size`` (rounded to
            whole voxels of the scan's canonical spacing, at least 1).
        dt_clip: upper clip of the distance in the weight ``exp(min(d, dt_clip)) - 1``; ``None`` uses ``exp(d) - 1``
            (computed stably as ``exp(d - d_max) - exp(-d_max)``).
        fallback: ``"none"`` or ``"center"`` (a ``center`` click when ``patch_dt`` yields no click but errors exist).
        center_use_spacing: ``center`` measures distances in mm instead of voxels.
    """

    strategy: str = "patch_dt"
    patch_size: tuple[int, int, int] = (512, 512, 16)
    patch_size_mm: tuple[float, float, float] | None = None
    dt_clip: float | None = 88 / 800**3
    fallback: str = "none"
    center_use_spacing: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InputError(f"click.strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.fallback not in FALLBACKS:
            raise InputError(f"click.fallback must be one of {FALLBACKS}, got {self.fallback!r}")
        if len(self.patch_size) != 3 or not all(int(s) == s and s >= 1 for s in self.patch_size):
            raise InputError(f"click.patch_size must be three integers >= 1, got {self.patch_size!r}")
        if self.patch_size_mm is not None and (
                len(self.patch_size_mm) != 3 or not all(math.isfinite(s) and s > 0 for s in self.patch_size_mm)):
            raise InputError(f"click.patch_size_mm must be three numbers > 0 mm or null, got {self.patch_size_mm!r}")
        if self.dt_clip is not None and not (math.isfinite(self.dt_clip) and self.dt_clip > 0):
            raise InputError(f"click.dt_clip must be a number > 0 or null, got {self.dt_clip!r}")

    def patch_voxels(self, spacing: tuple[float, float, float]) -> tuple[int, int, int]:
        """Patch size in canonical voxels for a scan of canonical ``spacing`` ``(row_mm, col_mm, frame_mm)``."""
        if self.patch_size_mm is None:
            return triple(int(s) for s in self.patch_size)
        return triple(max(1, round(mm / sp)) for mm, sp in zip(self.patch_size_mm, spacing))


def click_rng(seed: int, case_id: str, target_rank: int, interaction: int, channel: int) -> np.random.Generator:
    """Generator of one click draw: ``default_rng(SeedSequence([seed, crc32(case_id), target_rank, interaction,
    channel]))``; ``channel`` is 0 for the positive and 1 for the negative click. All integers must be >= 0."""
    words = (seed, zlib.crc32(case_id.encode("utf-8")), target_rank, interaction, channel)
    if any(int(w) != w or w < 0 for w in words):
        raise InputError(f"click seed words must be integers >= 0, got seed={seed}, target_rank={target_rank}, "
                         f"interaction={interaction}, channel={channel}")
    return np.random.default_rng(np.random.SeedSequence([int(w) for w in words]))


def _patch_grid(shape: tuple[int, int, int], patch: tuple[int, int, int]) -> tuple[int, int, int]:
    """Number of (truncated) patches along each canonical axis."""
    return triple(-(-s // p) for s, p in zip(shape, patch))


def _patch_counts(flat: np.ndarray, view: ScanView, patch: tuple[int, int, int],
                  grid: tuple[int, int, int]) -> np.ndarray:
    """Per-patch voxel count of the original-grid voxels ``flat`` (int64 array of shape ``grid``).

    Each original axis gets a small lookup table ``index -> canonical patch index * grid stride``, so a voxel's
    patch is the sum of three table look-ups.
    """
    ijk = np.unravel_index(flat, view.original_shape)
    strides = (grid[1] * grid[2], grid[2], 1)
    linear = np.zeros(flat.size, dtype=np.int64)
    for axis, (new_axis, flip) in enumerate(view.transform):
        a, n = int(new_axis), view.original_shape[axis]
        canonical = np.arange(n) if flip > 0 else np.arange(n - 1, -1, -1)
        linear += (canonical // patch[a] * strides[a])[ijk[axis]]
    return np.bincount(linear, minlength=int(np.prod(grid))).reshape(grid)


def _patch_sizes(shape: tuple[int, int, int], patch: tuple[int, int, int]) -> np.ndarray:
    """Voxel count of every (truncated) patch, shape = patch grid."""
    lengths = [np.minimum(p, s - np.arange(0, s, p)) for s, p in zip(shape, patch)]
    return lengths[0][:, None, None] * lengths[1][None, :, None] * lengths[2][None, None, :]


def patch_dice_losses(target: np.ndarray, prediction: np.ndarray, view: ScanView,
                      patch: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-patch Dice loss of the lesion and background channels (docs/evaluation_protocol.md, patch_dt steps 1-2).

    Counts come from the sparse foreground of both masks, so the cost grows with the number of foreground voxels.

    Args:
        target, prediction: bool ``(I, J, K)`` masks on the original grid.
        view: canonical view of that grid.
        patch: patch size in canonical voxels.

    Returns:
        ``(lesion_loss, background_loss)``: float64 arrays over the canonical patch grid ``(rows, cols, frames)``.
    """
    shape = view.canonical_shape
    grid = _patch_grid(shape, patch)
    fg_t, fg_p = foreground(target), foreground(prediction)
    at = np.minimum(np.searchsorted(fg_t, fg_p), max(fg_t.size - 1, 0))
    both = fg_p[fg_t[at] == fg_p] if fg_t.size else fg_p[:0]
    n_t, n_p, n_both = (_patch_counts(flat, view, patch, grid) for flat in (fg_t, fg_p, both))
    n_all = _patch_sizes(shape, patch)
    lesion = 1.0 - (2.0 * n_both + DICE_EPS) / (n_p + n_t + DICE_EPS)
    background = 1.0 - (2.0 * (n_all - n_p - n_t + n_both) + DICE_EPS) / (2.0 * n_all - n_p - n_t + DICE_EPS)
    return lesion, background


def sample_error_voxel(error: np.ndarray, dt_clip: float | None, rng: np.random.Generator) -> tuple[int, int, int]:
    """Draw one voxel of the non-empty bool ``error`` crop with probability ``(exp(min(d, dt_clip)) - 1) / sum``.

    ``d`` is the Euclidean distance (voxel units) to the nearest non-error voxel of the crop (the crop border is not
    a boundary). Every error voxel has ``d >= 1``, so ``dt_clip <= 1`` -- the reference value included -- means
    uniform weights and no distance transform is computed; a crop without any non-error voxel also has uniform
    weights. Candidates are taken in C raster order of the crop; one ``rng.random()`` is consumed.
    """
    box = bounding_box(error, margin=1)
    if box is None:
        raise ValueError("sample_error_voxel needs a non-empty error crop")
    crop = np.ascontiguousarray(error[box])
    candidates = foreground(crop)
    if dt_clip is not None and dt_clip <= 1.0:
        weights = np.ones(candidates.size)
    else:
        d = distance_transform(crop).reshape(-1)[candidates].astype(np.float64)
        if not np.isfinite(d).all():
            weights = np.ones_like(d)
        elif dt_clip is None:
            weights = np.exp(d - d.max()) - np.exp(-d.max())
        else:
            weights = np.expm1(np.minimum(d, dt_clip))
    cumulative = np.cumsum(weights)
    pick = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), candidates.size - 1)
    local = np.unravel_index(candidates[pick], crop.shape)
    return triple(int(b.start + x) for b, x in zip(box, local))


def _as_bool(mask: np.ndarray) -> np.ndarray:
    """``mask`` as a bool array (no copy when it already is one)."""
    mask = np.asarray(mask)
    return mask if mask.dtype == bool else mask != 0


def _patch_dt_clicks(target: np.ndarray, prediction: np.ndarray, view: ScanView, config: ClickConfig,
                     rngs: tuple[np.random.Generator, np.random.Generator]) -> list[tuple[tuple[int, int, int], bool]]:
    """``patch_dt`` clicks as ``((i, j, k), positive)``: at most one positive, then at most one negative."""
    patch = config.patch_voxels(view.spacing)
    losses = patch_dice_losses(target, prediction, view, patch)
    target_c = view.to_canonical(target)
    prediction_c = view.to_canonical(prediction)
    clicks: list[tuple[tuple[int, int, int], bool]] = []
    for channel, loss in ((POSITIVE, losses[0]), (NEGATIVE, losses[1])):
        cell = np.unravel_index(int(np.argmax(loss)), loss.shape)
        window = tuple(slice(c * p, (c + 1) * p) for c, p in zip(cell, patch))
        t, p = target_c[window], prediction_c[window]
        error = (t & ~p) if channel == POSITIVE else (p & ~t)
        if error.any():
            local = sample_error_voxel(error, config.dt_clip, rngs[channel])
            rcf = tuple(w.start + x for w, x in zip(window, local))
            clicks.append((triple(int(x) for x in view.canonical_to_ijk(rcf)), channel == POSITIVE))
    return clicks


def simulate_clicks(target: np.ndarray, prediction: np.ndarray, view: ScanView, config: ClickConfig, *,
                    seed: int, case_id: str, target_rank: int, interaction: int) -> list[Click]:
    """New clicks of one interaction for ``target`` given the current ``prediction``.

    Args:
        target: bool ``(I, J, K)`` target mask on the original grid (one lesion, or all GT in global modes).
        prediction: bool ``(I, J, K)`` current prediction for this target on the original grid.
        view: canonical view of the grid.
        config: click parameters.
        seed, case_id, target_rank, interaction: seeding words of :func:`click_rng` (``target_rank`` 0 for the
            whole-mask target, ``interaction`` 1-based).

    Returns:
        ``patch_dt``: at most one positive click, then at most one negative click; ``center`` (or the ``center``
        fallback): at most one click. Clicks are :class:`Click` with original-grid ``(i, j, k)``. Empty when there is
        nothing to correct.
    """
    target, prediction = _as_bool(target), _as_bool(prediction)
    if target.shape != view.original_shape or prediction.shape != view.original_shape:
        raise InputError(f"click simulation: target {target.shape} and prediction {prediction.shape} must have the "
                         f"scan shape {view.original_shape}")
    found: list[tuple[tuple[int, int, int], bool]] = []
    if config.strategy == "patch_dt":
        rngs = (click_rng(seed, case_id, target_rank, interaction, POSITIVE),
                click_rng(seed, case_id, target_rank, interaction, NEGATIVE))
        found = _patch_dt_clicks(target, prediction, view, config, rngs)
    if config.strategy == "center" or (not found and config.fallback == "center"):
        center = center_click(target, prediction, view, config.center_use_spacing)
        found = [center] if center is not None else []
    return [Click(i, j, k, positive) for (i, j, k), positive in found]
