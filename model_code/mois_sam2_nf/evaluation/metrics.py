"""Final lesion-wise metrics of one case (docs/evaluation_protocol.md, Final metrics) and interaction-curve summaries.

Every function takes masks on the **original grid** (``(I, J, K)`` arrays as nibabel loads them) and voxel spacing
``(i_mm, j_mm, k_mm)`` (``data.io.Volume.zooms``, from the affine). Components are labelled with cc3d; per-lesion
quantities are computed from sparse foreground-voxel lists and one table of (GT lesion, predicted lesion) overlap
counts, so the cost grows with the number of foreground voxels, not with ``lesions x volume``.

Conventions:

* Volumes are reported in ml (``voxels * voxel_volume_mm3 / 1000``).
* Lesions are 26-connected components of the size-filtered masks, numbered by decreasing voxel count (ties: first
  voxel in C raster order of the original array), i.e. ``gt_lesion_id`` = id of
  :func:`mois_sam2_nf.data.instances.size_ordered_components` applied to the filtered GT.
* Ratios whose denominator is 0 are 0 (precision, recall, F1); Dice of two empty masks is 1.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cc3d
import numpy as np

from mois_sam2_nf.data.instances import size_ordered_components
from mois_sam2_nf.data.masks import bounding_box, foreground
from mois_sam2_nf.errors import InputError

#: relative slack that keeps ``floor`` of an exact quotient exact under float rounding (0.3 ml / 0.1 mm^3 = 3000)
_FLOOR_SLACK = 1e-9
_CONNECTIVITIES = (6, 18, 26)
#: the 3-D connectivities of :data:`_CONNECTIVITIES` (checked at run time: configs arrive as plain ints)
Connectivity3D = Literal[6, 18, 26]


@dataclass(frozen=True)
class MetricConfig:
    """Parameters of the final metrics.

    Attributes:
        min_volume_ml: components smaller than this volume are removed from GT and prediction (0 disables).
        filter_connectivity: connectivity of the components seen by the size filter (6, 18 or 26).
        fp_fn_connectivity: connectivity of the components behind FP/FN volume (autoPET uses 18).
        nsd: compute the normalised surface Dice (``nsd_2mm``); ``None`` in the results when false.
        nsd_tolerance_mm: NSD tolerance in mm.
    """

    min_volume_ml: float = 2.0
    filter_connectivity: Connectivity3D = 6
    fp_fn_connectivity: Connectivity3D = 26
    nsd: bool = False
    nsd_tolerance_mm: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_volume_ml) and self.min_volume_ml >= 0):
            raise InputError(f"metrics.min_volume_ml must be a finite number >= 0, got {self.min_volume_ml!r}")
        for name in ("filter_connectivity", "fp_fn_connectivity"):
            if getattr(self, name) not in _CONNECTIVITIES:
                raise InputError(f"metrics.{name} must be one of {_CONNECTIVITIES}, got {getattr(self, name)!r}")
        if not (math.isfinite(self.nsd_tolerance_mm) and self.nsd_tolerance_mm >= 0):
            raise InputError(f"metrics.nsd_tolerance_mm must be a finite number >= 0, got {self.nsd_tolerance_mm!r}")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice ``2|a & b| / (|a| + |b|)`` of two same-shape masks (non-zero = foreground); 1.0 if both are empty."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise InputError(f"dice: mask shapes differ: {a.shape} vs {b.shape}")
    total = np.count_nonzero(a) + np.count_nonzero(b)
    if total == 0:
        return 1.0
    return 2.0 * np.count_nonzero(a & b) / total


def min_voxels(min_volume_ml: float, voxel_volume_mm3: float) -> int:
    """Size-filter threshold ``floor(min_volume_ml * 1000 / voxel_volume_mm3)`` in voxels.

    A relative slack of 1e-9 absorbs float rounding, so quotients that are integers on paper stay exact
    (``0.3 ml`` at ``0.1 mm^3`` gives 3000, not 2999).
    """
    if not (math.isfinite(voxel_volume_mm3) and voxel_volume_mm3 > 0):
        raise InputError(f"voxel volume must be a finite number > 0 mm^3, got {voxel_volume_mm3!r}")
    if not (math.isfinite(min_volume_ml) and min_volume_ml >= 0):
        raise InputError(f"min_volume_ml must be a finite number >= 0, got {min_volume_ml!r}")
    quotient = min_volume_ml * 1000.0 / voxel_volume_mm3
    return int(math.floor(quotient * (1.0 + _FLOOR_SLACK)))


def _filter_components(mask: np.ndarray, n_min: int, connectivity: Connectivity3D) -> np.ndarray:
    """C-contiguous bool copy of ``mask`` without the ``connectivity``-components of fewer than ``n_min`` voxels."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    if n_min <= 1 or not mask.any():
        return mask.copy()
    labels = cc3d.connected_components(mask, connectivity=connectivity)
    fg = foreground(mask)
    ids = labels.reshape(-1)[fg]
    keep = np.bincount(ids) >= n_min
    out = np.zeros(mask.shape, dtype=bool)
    out.reshape(-1)[fg[keep[ids]]] = True
    return out


def size_filter(mask: np.ndarray, voxel_volume_mm3: float, min_volume_ml: float,
                connectivity: Connectivity3D) -> np.ndarray:
    """Remove the connected components of ``mask`` with fewer than :func:`min_voxels` voxels.

    Args:
        mask: 3-D array, non-zero = foreground (any axis order; connectivity is isotropic in index space).
        voxel_volume_mm3: volume of one voxel (product of the voxel spacing).
        min_volume_ml: minimum kept component volume; 0 keeps everything.
        connectivity: 6, 18 or 26.

    Returns:
        bool array of the shape of ``mask``.
    """
    if connectivity not in _CONNECTIVITIES:
        raise InputError(f"size filter connectivity must be one of {_CONNECTIVITIES}, got {connectivity!r}")
    return _filter_components(mask, min_voxels(min_volume_ml, voxel_volume_mm3), connectivity)


@dataclass(frozen=True)
class _Lesions:
    """Size-ordered connected components of a C-contiguous bool mask, described sparsely.

    Attributes:
        fg: ``(m,)`` int64 flat indices of the foreground voxels (C order, ascending).
        ids: ``(m,)`` int64 size-ordered lesion id (1 = largest) of each foreground voxel.
        sizes: ``(n,)`` int64 voxel count of lesions ``1..n``.
    """

    fg: np.ndarray
    ids: np.ndarray
    sizes: np.ndarray

    @property
    def n(self) -> int:
        return len(self.sizes)


def _lesions(mask: np.ndarray, connectivity: Connectivity3D) -> _Lesions:
    """The components of ``mask`` (C-contiguous bool) numbered by
    :func:`~mois_sam2_nf.data.instances.size_ordered_components`, described sparsely."""
    labels, sizes = size_ordered_components(mask, connectivity=connectivity)
    fg = foreground(mask)
    return _Lesions(fg, labels.reshape(-1)[fg].astype(np.int64), sizes)


def _overlapping(lesions: _Lesions, other: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: which lesions share at least one voxel with the C-contiguous bool mask ``other``."""
    hit = np.zeros(lesions.n + 1, dtype=bool)
    hit[lesions.ids[other.reshape(-1)[lesions.fg]]] = True
    return hit[1:]


def _bounding_boxes(lesions: _Lesions, shape: tuple[int, ...]) -> np.ndarray:
    """``(n, 3, 2)`` int64 inclusive ``[min, max]`` voxel index per axis of every lesion."""
    coords = np.stack(np.unravel_index(lesions.fg, shape), axis=1)
    order = np.argsort(lesions.ids, kind="stable")
    starts = np.concatenate(([0], np.cumsum(lesions.sizes)[:-1]))
    sorted_coords = coords[order]
    lows = np.minimum.reduceat(sorted_coords, starts, axis=0)
    highs = np.maximum.reduceat(sorted_coords, starts, axis=0)
    return np.stack((lows, highs), axis=2)


def _pair_table(gt: _Lesions, pred: _Lesions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlap counts of every intersecting (GT lesion, predicted lesion) pair of two labellings of one grid.

    Both foreground index lists are sorted, so the shared voxels are found by binary search (no full-size map).

    Returns:
        ``(g, p, inter)``: int64 arrays of the same length; pairs sorted by ``(g, p)``.
    """
    at = np.searchsorted(gt.fg, pred.fg)
    inside = at < gt.fg.size
    shared = np.zeros(pred.fg.size, dtype=bool)
    shared[inside] = gt.fg[at[inside]] == pred.fg[inside]
    codes = gt.ids[at[shared]] * (pred.n + 1) + pred.ids[shared]
    values, inter = np.unique(codes, return_counts=True)
    return values // (pred.n + 1), values % (pred.n + 1), inter.astype(np.int64)


def _greedy_iou_matching(g: np.ndarray, p: np.ndarray, inter: np.ndarray, gt_sizes: np.ndarray,
                         pred_sizes: np.ndarray) -> np.ndarray:
    """One-to-one matching of pairs with IoU >= 0.5, greedy by descending IoU (ties: lower GT id, lower pred id).

    Returns:
        ``(k, 2)`` int64 matched ``(gt_id, pred_id)`` pairs.
    """
    union = gt_sizes[g - 1] + pred_sizes[p - 1] - inter
    candidate = 2 * inter >= union
    g, p, iou = g[candidate], p[candidate], inter[candidate] / union[candidate]
    used_g: set[int] = set()
    used_p: set[int] = set()
    matches: list[tuple[int, int]] = []
    for index in np.lexsort((p, g, -iou)):
        gi, pi = int(g[index]), int(p[index])
        if gi not in used_g and pi not in used_p:
            used_g.add(gi)
            used_p.add(pi)
            matches.append((gi, pi))
    return np.asarray(matches, dtype=np.int64).reshape(-1, 2)


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else 0.0


def _detection(tp: int, fp: int, fn: int, rule: str) -> dict[str, float | int]:
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {f"tp_{rule}": tp, f"fp_{rule}": fp, f"fn_{rule}": fn, f"precision_{rule}": precision,
            f"recall_{rule}": recall, f"f1_{rule}": f1}


def surface_dice(gt: np.ndarray, pred: np.ndarray, spacing_mm: tuple[float, float, float],
                 tolerance_mm: float) -> float:
    """Normalised surface Dice (MONAI ``compute_surface_dice``) on the union bounding box plus a 2-voxel margin.

    Args:
        gt, pred: bool ``(I, J, K)`` masks.
        spacing_mm: voxel size along ``(i, j, k)``.
        tolerance_mm: boundary tolerance.

    Returns:
        NSD in [0, 1]; 1.0 when both masks are empty (MONAI would return NaN), 0.0 when exactly one is.
    """
    import torch
    from monai.metrics import compute_surface_dice

    box = bounding_box(gt | pred, margin=2)
    if box is None:
        return 1.0
    tensors = [torch.from_numpy(np.ascontiguousarray(m[box]))[None, None] for m in (pred, gt)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
        value = compute_surface_dice(tensors[0], tensors[1], class_thresholds=[float(tolerance_mm)],
                                     include_background=True, spacing=[float(s) for s in spacing_mm])
    return float(value.reshape(-1)[0])


def _prompt_ranks(gt: _Lesions, prompt_ranks: np.ndarray) -> np.ndarray:
    """``(n,)`` int64 smallest prompt rank found on each GT lesion (0 = not prompted)."""
    ranks = prompt_ranks.reshape(-1)[gt.fg].astype(np.int64)
    prompted = ranks > 0
    best = np.zeros(gt.n + 1, dtype=np.int64)
    ids, ranks = gt.ids[prompted], ranks[prompted]
    order = np.lexsort((ranks, ids))
    first = np.unique(ids[order], return_index=True)[1]
    best[ids[order][first]] = ranks[order][first]
    return best[1:]


def _check_inputs(gt: np.ndarray, pred: np.ndarray, spacing_mm: Sequence[float],
                  prompt_ranks: np.ndarray | None) -> None:
    if gt.ndim != 3 or gt.shape != pred.shape:
        raise InputError(f"metrics need two 3-D masks of one shape, got GT {gt.shape} and prediction {pred.shape}")
    if prompt_ranks is not None and prompt_ranks.shape != gt.shape:
        raise InputError(f"prompt rank map shape {prompt_ranks.shape} != mask shape {gt.shape}")
    if len(spacing_mm) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing_mm):
        raise InputError(f"voxel spacing must be three finite numbers > 0 mm, got {tuple(spacing_mm)}")


def case_metrics(gt: np.ndarray, pred: np.ndarray, spacing_mm: tuple[float, float, float], config: MetricConfig,
                 prompt_ranks: np.ndarray | None = None) -> tuple[dict[str, float | int | None], list[dict]]:
    """All final metrics of one case (docs/evaluation_protocol.md, Final metrics) on the size-filtered masks.

    Args:
        gt, pred: ``(I, J, K)`` masks on the original grid (non-zero = foreground).
        spacing_mm: voxel spacing ``(i_mm, j_mm, k_mm)`` (``data.io.Volume.zooms``).
        config: metric parameters.
        prompt_ranks: optional int ``(I, J, K)`` map holding rank ``r >= 1`` on the voxels of prompted target ``r``
            and 0 elsewhere; a GT lesion's ``prompt_rank`` is the smallest rank on its voxels.

    Returns:
        ``(case, lesions)``: ``case`` maps the metric columns of ``case_metrics.csv`` to values (``nsd_2mm`` is
        ``None`` unless ``config.nsd``; lesion-Dice means are ``None`` over an empty set); ``lesions`` holds one dict
        per filtered GT lesion in id order with ``gt_lesion_id, volume_ml, prompted, prompt_rank`` (``None`` if not
        prompted) ``, detected_any, matched_iou50, iou_best, lesion_dice_bbox``.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    _check_inputs(gt, pred, spacing_mm, prompt_ranks)
    gt = gt if gt.dtype == bool else gt != 0
    pred = pred if pred.dtype == bool else pred != 0
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    n_min = min_voxels(config.min_volume_ml, voxel_ml * 1000.0)

    box = bounding_box(gt | pred) or tuple(slice(0, 0) for _ in gt.shape)
    gt_f = _filter_components(gt[box], n_min, config.filter_connectivity)
    pred_f = _filter_components(pred[box], n_min, config.filter_connectivity)
    shape = gt_f.shape

    gt_les = _lesions(gt_f, 26)
    pred_les = _lesions(pred_f, 26)
    g, p, inter = _pair_table(gt_les, pred_les)

    detected = _overlapping(gt_les, pred_f)
    pred_hits = _overlapping(pred_les, gt_f)
    matches = _greedy_iou_matching(g, p, inter, gt_les.sizes, pred_les.sizes)
    matched = np.zeros(gt_les.n, dtype=bool)
    matched[matches[:, 0] - 1] = True

    iou_best = np.zeros(gt_les.n + 1)
    if len(g):
        np.maximum.at(iou_best, g, inter / (gt_les.sizes[g - 1] + pred_les.sizes[p - 1] - inter))
    iou_best = iou_best[1:]

    gt_inter = np.bincount(g, weights=inter, minlength=gt_les.n + 1)[1:]
    lesion_dice = np.zeros(gt_les.n)
    if gt_les.n:
        for index, ((r0, r1), (c0, c1), (f0, f1)) in enumerate(_bounding_boxes(gt_les, shape)):
            pred_in_box = np.count_nonzero(pred_f[r0:r1 + 1, c0:c1 + 1, f0:f1 + 1])
            lesion_dice[index] = 2.0 * gt_inter[index] / (gt_les.sizes[index] + pred_in_box)

    if config.fp_fn_connectivity == 26:
        fn_sizes, fn_hit, fp_sizes, fp_hit = gt_les.sizes, detected, pred_les.sizes, pred_hits
    else:
        gt_alt, pred_alt = _lesions(gt_f, config.fp_fn_connectivity), _lesions(pred_f, config.fp_fn_connectivity)
        fn_sizes, fn_hit = gt_alt.sizes, _overlapping(gt_alt, pred_f)
        fp_sizes, fp_hit = pred_alt.sizes, _overlapping(pred_alt, gt_f)

    n_gt_vox, n_pred_vox, n_inter = gt_les.fg.size, pred_les.fg.size, int(inter.sum())
    tp_any = int(detected.sum())
    positive = lesion_dice[lesion_dice > 0]
    case: dict[str, float | int | None] = {
        "min_volume_ml": float(config.min_volume_ml),
        "n_gt_lesions": gt_les.n,
        "n_pred_lesions": pred_les.n,
        "scan_dice": 2.0 * n_inter / (n_gt_vox + n_pred_vox) if n_gt_vox + n_pred_vox else 1.0,
        **_detection(tp_any, int(pred_les.n - pred_hits.sum()), gt_les.n - tp_any, "any"),
        **_detection(len(matches), pred_les.n - len(matches), gt_les.n - len(matches), "iou50"),
        "lesion_dice_mean_detected": float(positive.mean()) if positive.size else None,
        "lesion_dice_mean_all": float(lesion_dice.mean()) if gt_les.n else None,
        "fp_volume_ml": float(fp_sizes[~fp_hit].sum()) * voxel_ml,
        "fn_volume_ml": float(fn_sizes[~fn_hit].sum()) * voxel_ml,
        "gt_volume_ml": n_gt_vox * voxel_ml,
        "pred_volume_ml": n_pred_vox * voxel_ml,
        "nsd_2mm": surface_dice(gt_f, pred_f, spacing_mm, config.nsd_tolerance_mm) if config.nsd else None,
    }

    ranks = (_prompt_ranks(gt_les, np.ascontiguousarray(prompt_ranks[box])) if prompt_ranks is not None
             else np.zeros(gt_les.n, dtype=np.int64))
    lesions = [
        {
            "gt_lesion_id": index + 1,
            "volume_ml": float(gt_les.sizes[index]) * voxel_ml,
            "prompted": bool(ranks[index] > 0),
            "prompt_rank": int(ranks[index]) if ranks[index] > 0 else None,
            "detected_any": bool(detected[index]),
            "matched_iou50": bool(matched[index]),
            "iou_best": float(iou_best[index]),
            "lesion_dice_bbox": float(lesion_dice[index]),
        }
        for index in range(gt_les.n)
    ]
    return case, lesions


def noc(dice_curve: Sequence[float], threshold: float, budget: int) -> int:
    """Number of clicks (interactions) to reach ``threshold``: the first 1-based interaction ``t <= budget`` with
    ``dice_curve[t - 1] >= threshold``, else ``budget``."""
    reached = np.flatnonzero(np.asarray(dice_curve[:budget], dtype=np.float64) >= threshold)
    return int(reached[0]) + 1 if reached.size else int(budget)
