"""Final metrics (docs/evaluation_protocol.md) cross-checked against MONAI, panoptica and brute force."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from monai.metrics import compute_dice, compute_surface_dice
from panoptica import ConnectedComponentsInstanceApproximator, InputType, NaiveThresholdMatching, Panoptica_Evaluator
from panoptica.metrics import Metric
from panoptica.utils.citation_reminder import disable_citation_reminder

from mois_sam2_nf.data.instances import size_ordered_components
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.metrics import MetricConfig, case_metrics, dice, min_voxels, noc, size_filter

torch.set_num_threads(1)
disable_citation_reminder()

SHAPE = (64, 64, 16)
N_CASES = 24
STRUCT = {6: ndi.generate_binary_structure(3, 1), 18: ndi.generate_binary_structure(3, 2),
          26: ndi.generate_binary_structure(3, 3)}


def _ellipsoid(rng: np.random.Generator, big: bool) -> np.ndarray:
    """A random axis-aligned ellipsoid mask of :data:`SHAPE` (semi-axes in voxels)."""
    axes = rng.uniform(2.5, 7.0, 3) if big else rng.uniform(0.6, 1.6, 3)
    axes[2] = axes[2] / 2.5
    center = rng.uniform([8, 8, 3], [56, 56, 13])
    grid = np.ogrid[0:SHAPE[0], 0:SHAPE[1], 0:SHAPE[2]]
    return sum(((g - c) / max(a, 0.6)) ** 2 for g, c, a in zip(grid, center, axes)) <= 1.0


def _add_apart(mask: np.ndarray, blob: np.ndarray) -> bool:
    """OR ``blob`` into ``mask`` if it stays >= 2 voxels away from every existing component; returns success."""
    if not blob.any() or (ndi.binary_dilation(blob, STRUCT[26], iterations=2) & mask).any():
        return False
    mask |= blob
    return True


def _shifted(blob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Imperfect copy of ``blob``: shifted by up to 2 voxels in-plane, then possibly eroded or dilated."""
    shift = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)), int(rng.integers(-1, 2)))
    moved = np.roll(blob, shift, axis=(0, 1, 2))
    change = rng.integers(0, 3)
    if change == 1:
        return ndi.binary_erosion(moved, STRUCT[6]) | (moved & (rng.random(SHAPE) < 0.2))
    if change == 2:
        return ndi.binary_dilation(moved, STRUCT[6])
    return moved


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """``(gt, pred, spacing)``: ellipsoid blobs kept >= 2 voxels apart within each mask, anisotropic spacing."""
    rng = np.random.default_rng(seed)
    gt = np.zeros(SHAPE, dtype=bool)
    pred = np.zeros(SHAPE, dtype=bool)
    gt_blobs = []
    for _ in range(int(rng.integers(4, 9))):
        blob = _ellipsoid(rng, big=rng.random() < 0.8)
        if _add_apart(gt, blob):
            gt_blobs.append(blob)
    for blob in gt_blobs:
        kind = rng.random()
        if kind < 0.2:
            continue
        _add_apart(pred, blob.copy() if kind < 0.35 else _shifted(blob, rng))
    for _ in range(int(rng.integers(0, 4))):
        _add_apart(pred, _ellipsoid(rng, big=rng.random() < 0.6))
    spacing = (float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.5, 1.0)), float(rng.uniform(2.0, 5.0)))
    return gt, pred, spacing


def _filtered_reference(mask: np.ndarray, n_min: int, connectivity: int) -> np.ndarray:
    """Brute-force size filter: scipy labelling and one pass per component."""
    labels, n = ndi.label(mask, STRUCT[connectivity])
    out = np.zeros_like(mask)
    for index in range(1, n + 1):
        component = labels == index
        if component.sum() >= n_min:
            out |= component
    return out


def _components(mask: np.ndarray, connectivity: int = 26) -> list[np.ndarray]:
    labels, n = ndi.label(mask, STRUCT[connectivity])
    return [labels == index for index in range(1, n + 1)]


def _case_config(seed: int) -> MetricConfig:
    return MetricConfig(min_volume_ml=0.04, filter_connectivity=(6, 26)[seed % 2],
                        fp_fn_connectivity=(26, 18)[seed % 3 == 0], nsd=True)


@pytest.fixture(scope="module")
def cases() -> list[tuple[np.ndarray, np.ndarray, tuple[float, float, float], MetricConfig, dict, list[dict]]]:
    out = []
    for seed in range(N_CASES):
        gt, pred, spacing = random_case(seed)
        config = _case_config(seed)
        case, lesions = case_metrics(gt, pred, spacing, config)
        out.append((gt, pred, spacing, config, case, lesions))
    return out


def _filtered(gt, pred, spacing, config):
    n_min = min_voxels(config.min_volume_ml, float(np.prod(spacing)))
    return (_filtered_reference(gt, n_min, config.filter_connectivity),
            _filtered_reference(pred, n_min, config.filter_connectivity))


def test_random_cases_are_nontrivial(cases) -> None:
    """The generator must exercise filtering, misses, false positives, partial matches and IoU < 0.5 pairs."""
    removed = missed = false_pos = partial = 0
    for gt, pred, spacing, config, case, lesions in cases:
        gt_f, pred_f = _filtered(gt, pred, spacing, config)
        removed += int(gt_f.sum() < gt.sum()) + int(pred_f.sum() < pred.sum())
        missed += case["fn_any"]
        false_pos += case["fp_any"]
        partial += sum(les["detected_any"] and not les["matched_iou50"] for les in lesions)
    assert min(removed, missed, false_pos, partial) > 0


def test_scan_dice_matches_monai(cases) -> None:
    for gt, pred, spacing, config, case, _ in cases:
        gt_f, pred_f = _filtered(gt, pred, spacing, config)
        reference = compute_dice(torch.from_numpy(pred_f)[None, None].float(),
                                 torch.from_numpy(gt_f)[None, None].float(), include_background=True)
        assert case["scan_dice"] == pytest.approx(float(reference), abs=1e-6)
        assert case["gt_volume_ml"] == pytest.approx(gt_f.sum() * np.prod(spacing) / 1000, rel=1e-12)
        assert case["pred_volume_ml"] == pytest.approx(pred_f.sum() * np.prod(spacing) / 1000, rel=1e-12)


def test_iou50_detection_matches_panoptica(cases) -> None:
    evaluator = Panoptica_Evaluator(
        expected_input=InputType.SEMANTIC,
        instance_approximator=ConnectedComponentsInstanceApproximator(),
        instance_matcher=NaiveThresholdMatching(matching_metric=Metric.IOU, matching_threshold=0.5),
        instance_metrics=[Metric.DSC, Metric.IOU],
        global_metrics=[Metric.DSC],
    )
    for gt, pred, spacing, config, case, _ in cases:
        gt_f, pred_f = _filtered(gt, pred, spacing, config)
        result = next(iter(evaluator.evaluate(pred_f.astype(np.uint8), gt_f.astype(np.uint8),
                                              voxelspacing=spacing).values()))
        assert (case["tp_iou50"], case["fp_iou50"], case["fn_iou50"]) == (result.tp, result.fp, result.fn)
        assert (case["n_gt_lesions"], case["n_pred_lesions"]) == (result.n_ref_instances,
                                                                  result.n_pred_instances)
        assert case["precision_iou50"] == pytest.approx(result.tp / max(result.tp + result.fp, 1), abs=1e-12)
        assert case["recall_iou50"] == pytest.approx(result.tp / max(result.tp + result.fn, 1), abs=1e-12)


def test_nsd_matches_monai_on_full_volume(cases) -> None:
    for gt, pred, spacing, config, case, _ in cases:
        gt_f, pred_f = _filtered(gt, pred, spacing, config)
        reference = compute_surface_dice(torch.from_numpy(pred_f)[None, None], torch.from_numpy(gt_f)[None, None],
                                         class_thresholds=[2.0], include_background=True, spacing=list(spacing))
        assert case["nsd_2mm"] == pytest.approx(float(reference), abs=1e-6)


def test_lesion_metrics_match_brute_force(cases) -> None:
    voxel_checks = 0
    for gt, pred, spacing, config, case, lesions in cases:
        gt_f, pred_f = _filtered(gt, pred, spacing, config)
        ml = float(np.prod(spacing)) / 1000
        ordered, sizes = size_ordered_components(gt_f)
        pred_comps = _components(pred_f)
        gt_comps = [ordered == index for index in range(1, len(sizes) + 1)]
        assert [les["gt_lesion_id"] for les in lesions] == list(range(1, len(gt_comps) + 1))
        tp = 0
        for comp, les in zip(gt_comps, lesions):
            box = ndi.find_objects(comp.astype(np.int32))[0]
            expected_dice = 2 * (comp & pred_f).sum() / (comp.sum() + pred_f[box].sum())
            ious = [(comp & p).sum() / (comp | p).sum() for p in pred_comps]
            assert les["volume_ml"] == pytest.approx(comp.sum() * ml, rel=1e-12)
            assert les["detected_any"] == bool((comp & pred_f).any())
            assert les["lesion_dice_bbox"] == pytest.approx(expected_dice, abs=1e-12)
            assert les["iou_best"] == pytest.approx(max(ious, default=0.0), abs=1e-12)
            assert les["matched_iou50"] == (max(ious, default=0.0) >= 0.5)
            assert les["prompted"] is False and les["prompt_rank"] is None
            tp += les["detected_any"]
            voxel_checks += 1
        fp = sum(not (p & gt_f).any() for p in pred_comps)
        assert (case["tp_any"], case["fn_any"], case["fp_any"]) == (tp, len(gt_comps) - tp, fp)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / len(gt_comps) if gt_comps else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert (case["precision_any"], case["recall_any"]) == pytest.approx((precision, recall), abs=1e-12)
        assert case["f1_any"] == pytest.approx(f1, abs=1e-12)
        dices = np.array([les["lesion_dice_bbox"] for les in lesions])
        assert case["lesion_dice_mean_all"] == pytest.approx(dices.mean(), abs=1e-12)
        assert case["lesion_dice_mean_detected"] == pytest.approx(dices[dices > 0].mean(), abs=1e-12)
        fp_fn = config.fp_fn_connectivity
        fp_volume = sum(p.sum() for p in _components(pred_f, fp_fn) if not (p & gt_f).any()) * ml
        fn_volume = sum(g.sum() for g in _components(gt_f, fp_fn) if not (g & pred_f).any()) * ml
        assert case["fp_volume_ml"] == pytest.approx(fp_volume, abs=1e-12)
        assert case["fn_volume_ml"] == pytest.approx(fn_volume, abs=1e-12)
    assert voxel_checks >= 3 * N_CASES


def test_size_filter_matches_brute_force_for_both_connectivities() -> None:
    rng = np.random.default_rng(7)
    mask = ndi.binary_opening(rng.random((40, 40, 10)) < 0.35)
    for connectivity in (6, 18, 26):
        for min_ml in (0.0, 0.005, 0.02):
            n_min = min_voxels(min_ml, 0.5)
            expected = _filtered_reference(mask, n_min, connectivity)
            np.testing.assert_array_equal(size_filter(mask, 0.5, min_ml, connectivity), expected)


def test_min_voxels_floor_and_boundary() -> None:
    assert min_voxels(2.0, 0.625 * 0.625 * 7.8) == 656
    assert min_voxels(0.3, 0.1) == 3000
    assert min_voxels(0.0, 3.0) == 0
    for ml, v in ((2.0, 2.0), (2.0, 3.0), (0.01, 2.0), (1.5, 0.75)):
        assert min_voxels(ml, v) == math.floor(Fraction(str(ml)) * 1000 / Fraction(str(v)))
    # at the boundary a component of exactly n_min voxels stays, one voxel less goes
    mask = np.zeros((12, 12, 4), dtype=bool)
    mask[0, 0:5, 0] = True          # 5 voxels
    mask[5, 0:4, 0] = True          # 4 voxels
    kept = size_filter(mask, voxel_volume_mm3=2.0, min_volume_ml=0.01, connectivity=6)
    assert min_voxels(0.01, 2.0) == 5
    assert kept[0, 0:5, 0].all() and not kept[5].any()
    with pytest.raises(InputError):
        min_voxels(2.0, 0.0)


def _hand_case() -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((10, 10, 10), dtype=bool)
    pred = np.zeros_like(gt)
    gt[0:2, 0:2, 0:2] = True          # lesion A, 8 voxels
    gt[5:8, 5:8, 5] = True            # lesion B, 9 voxels
    gt[9, 0, 9] = True                # 1 voxel, filtered out
    pred[0:2, 0:2, 0:3] = True        # covers A + 4 extra: IoU 8/12
    pred[5:8, 5:8, 7:9] = True        # 18 voxels touching nothing: FP
    pred[0, 9, 0] = True              # filtered out
    return gt, pred


def test_hand_computed_case() -> None:
    gt, pred = _hand_case()
    ranks = np.zeros(gt.shape, dtype=np.int16)
    ranks[gt] = 0
    ranks[0:2, 0:2, 0] = 2
    ranks[0, 0, 1] = 1                # A carries ranks 1 and 2 -> 1
    ranks[9, 0, 9] = 3                # only on a filtered-out lesion
    case, lesions = case_metrics(gt, pred, (1.0, 1.0, 2.0), MetricConfig(min_volume_ml=0.01), prompt_ranks=ranks)
    assert case["n_gt_lesions"] == 2 and case["n_pred_lesions"] == 2
    assert case["scan_dice"] == pytest.approx(16 / 47)
    assert (case["tp_any"], case["fp_any"], case["fn_any"]) == (1, 1, 1)
    assert (case["precision_any"], case["recall_any"], case["f1_any"]) == pytest.approx((0.5, 0.5, 0.5))
    assert (case["tp_iou50"], case["fp_iou50"], case["fn_iou50"]) == (1, 1, 1)
    assert case["lesion_dice_mean_detected"] == pytest.approx(1.0)
    assert case["lesion_dice_mean_all"] == pytest.approx(0.5)
    assert case["fp_volume_ml"] == pytest.approx(0.036)
    assert case["fn_volume_ml"] == pytest.approx(0.018)
    assert case["gt_volume_ml"] == pytest.approx(0.034)
    assert case["pred_volume_ml"] == pytest.approx(0.060)
    assert case["nsd_2mm"] is None
    b, a = lesions                    # B (9 voxels) is lesion 1, A (8 voxels) lesion 2
    assert (b["gt_lesion_id"], b["detected_any"], b["matched_iou50"], b["iou_best"]) == (1, False, False, 0.0)
    assert (b["prompted"], b["prompt_rank"], b["lesion_dice_bbox"]) == (False, None, 0.0)
    assert (a["gt_lesion_id"], a["detected_any"], a["matched_iou50"]) == (2, True, True)
    assert a["iou_best"] == pytest.approx(8 / 12)
    assert (a["prompted"], a["prompt_rank"], a["lesion_dice_bbox"]) == (True, 1, 1.0)
    assert a["volume_ml"] == pytest.approx(0.016)


def test_bbox_lesion_dice_counts_every_predicted_voxel_in_the_box() -> None:
    gt = np.zeros((6, 6, 3), dtype=bool)
    gt[0:3, 0, 1] = True
    gt[0, 0:3, 1] = True              # L shape: 5 voxels, box 3x3x1
    pred = np.zeros_like(gt)
    pred[0:3, 0:3, 1] = True          # full square: 9 voxels
    case, (lesion,) = case_metrics(gt, pred, (1.0, 1.0, 1.0), MetricConfig(min_volume_ml=0.0))
    assert lesion["lesion_dice_bbox"] == pytest.approx(10 / 14)
    assert lesion["iou_best"] == pytest.approx(5 / 9)
    assert case["scan_dice"] == pytest.approx(10 / 14)


def test_greedy_iou_matching_is_one_to_one_and_tie_breaks_by_id() -> None:
    gt = np.zeros((12, 4, 1), dtype=bool)
    gt[0:2, 0, 0] = True              # lesion 1: 2 voxels (ties by raster order -> first)
    gt[4:6, 0, 0] = True              # lesion 2: 2 voxels
    pred = np.zeros_like(gt)
    pred[0:6, 0, 0] = True            # one 6-voxel prediction covering both: IoU 1/3 each -> no match
    case, lesions = case_metrics(gt, pred, (1.0, 1.0, 1.0), MetricConfig(min_volume_ml=0.0))
    assert (case["tp_iou50"], case["fp_iou50"], case["fn_iou50"]) == (0, 1, 2)
    assert (case["tp_any"], case["fp_any"], case["fn_any"]) == (2, 0, 0)
    pred[:] = False
    pred[0:4, 0, 0] = True            # IoU 2/4 = 0.5 with lesion 1 only (threshold is inclusive)
    case, lesions = case_metrics(gt, pred, (1.0, 1.0, 1.0), MetricConfig(min_volume_ml=0.0))
    assert (case["tp_iou50"], case["fp_iou50"], case["fn_iou50"]) == (1, 0, 1)
    assert [les["matched_iou50"] for les in lesions] == [True, False]


def test_empty_masks_and_bad_input() -> None:
    empty = np.zeros((5, 5, 5), dtype=bool)
    case, lesions = case_metrics(empty, empty, (1.0, 1.0, 1.0), MetricConfig(nsd=True))
    assert lesions == []
    assert case["scan_dice"] == 1.0 and case["nsd_2mm"] == 1.0 and case["f1_any"] == 0.0
    assert case["lesion_dice_mean_all"] is None and case["lesion_dice_mean_detected"] is None
    assert dice(empty, empty) == 1.0
    full = np.ones_like(empty)
    assert dice(full, empty) == 0.0
    with pytest.raises(InputError, match="shape"):
        case_metrics(empty, np.zeros((5, 5, 4), dtype=bool), (1.0, 1.0, 1.0), MetricConfig())
    with pytest.raises(InputError, match="spacing"):
        case_metrics(empty, empty, (1.0, 0.0, 1.0), MetricConfig())
    with pytest.raises(InputError, match="filter_connectivity"):
        MetricConfig(filter_connectivity=8)


def test_metrics_do_not_depend_on_call_order(cases) -> None:
    gt0, pred0, spacing0, config0, case0, lesions0 = cases[0]
    gt1, pred1, spacing1, config1, case1, lesions1 = cases[1]
    again1 = case_metrics(gt1, pred1, spacing1, config1)
    again0 = case_metrics(gt0, pred0, spacing0, config0)
    assert again0 == (case0, lesions0) and again1 == (case1, lesions1)


def test_dice_and_noc() -> None:
    a = np.zeros((4, 4, 4), dtype=bool)
    b = np.zeros_like(a)
    a[0, 0:2, 0] = True
    b[0, 1:4, 0] = True
    assert dice(a, b) == pytest.approx(2 / 5)
    assert noc([0.5, 0.79, 0.8, 0.95], threshold=0.8, budget=60) == 3
    assert noc([0.5, 0.6], threshold=0.8, budget=60) == 60
    assert noc([0.5, 0.6, 0.9], threshold=0.85, budget=2) == 2
    assert noc([0.9], threshold=0.85, budget=3) == 1
