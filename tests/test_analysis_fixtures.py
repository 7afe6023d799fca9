"""Fabricated result folders in the exact format of docs/evaluation_protocol.md (Result files), for the analysis tests.

:func:`build_results` writes ``<root>/<run_id>/{manifest.json, interactions.csv, case_metrics.csv,
lesion_metrics.csv, predictions/<case>.nii.gz}`` (sweep runs of the models in ``sweep_metrics`` also
``sweep_metrics.csv``) plus a raw data folder with ``imagesTs_<k>/`` and
``labelsTs_<k>_instance/``. Metric values follow simple formulas (see :func:`case_dice`) so tests can state the
expected aggregates independently of the analysis code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

INTERACTION_COLUMNS = [
    "run_id", "model", "mode", "test_set", "fold", "case_id", "patient_id", "step", "phase", "target_rank",
    "target_label", "target_volume_ml", "interaction", "new_pos", "new_neg", "n_pos_total", "n_neg_total",
    "click_strategy", "dice_target", "dice_scan", "elapsed_s", "peak_mem_mb",
]  # fmt: skip
CASE_COLUMNS = [
    "run_id", "model", "mode", "test_set", "fold", "case_id", "patient_id",
    "min_volume_ml", "n_gt_lesions", "n_pred_lesions", "n_prompted", "n_interactions", "n_clicks",
    "max_slice_fraction", "prompted_lesion_dice",
    "scan_dice", "scan_dice_before_propagation",
    "tp_any", "fp_any", "fn_any", "precision_any", "recall_any", "f1_any",
    "tp_iou50", "fp_iou50", "fn_iou50", "precision_iou50", "recall_iou50", "f1_iou50",
    "lesion_dice_mean_detected", "lesion_dice_mean_all", "fp_volume_ml", "fn_volume_ml", "gt_volume_ml",
    "pred_volume_ml", "nsd_2mm", "noc_80", "noc_85", "runtime_s", "prediction_file",
]  # fmt: skip
LESION_COLUMNS = [
    "run_id", "case_id", "gt_lesion_id", "volume_ml", "prompted", "prompt_rank", "detected_any", "matched_iou50",
    "iou_best", "lesion_dice_bbox",
]  # fmt: skip
SWEEP_COLUMNS = [
    "run_id", "model", "mode", "test_set", "fold", "case_id", "patient_id", "n_prompted",
    "scan_dice", "f1_any", "f1_iou50", "lesion_dice_mean_detected", "fp_volume_ml", "fn_volume_ml",
]  # fmt: skip
#: offsets of the fabricated sweep metrics (see :func:`sweep_metric`)
SWEEP_METRIC_OFFSET = {"scan_dice": 0.0, "f1_any": 0.2, "f1_iou50": 0.1, "lesion_dice_mean_detected": 0.3,
                       "fp_volume_ml": 1.0, "fn_volume_ml": 2.0}  # fmt: skip

SHAPE = (10, 14, 6)
#: i -> L, j -> A, k -> S with spacing 2 x 3 x 5 mm: canonical rows are -k, columns i, frames j
AFFINE = np.array([[-2.0, 0, 0, 20], [0, 3.0, 0, -40], [0, 0, 5.0, 10], [0, 0, 0, 1]])
MODEL_OFFSET = {"mois_sam2": 0.2, "sam2": 0.0, "dins": 0.1}
BUDGET = 3
SWEEP_MODE = "prompted_lesion_sweep"


@dataclass(frozen=True)
class Fabricated:
    """Paths of a fabricated results folder and its raw data folder."""

    results: Path
    data: Path


def case_dice(model: str, test_set: int, case_index: int, fold: int) -> float:
    """Scan Dice written for a case: a model offset plus distinct per-case values (so paired differences differ)."""
    return round(0.3 + MODEL_OFFSET[model] + 0.05 * case_index * (1 + MODEL_OFFSET[model]) + 0.01 * test_set
                 + 0.002 * fold, 6)  # fmt: skip


def case_label(case_index: int) -> np.ndarray:
    """``SHAPE`` int label with two lesions; lesion 1 lies on ``k = 1 + case_index % 3`` (and the slice above)."""
    label = np.zeros(SHAPE, dtype=np.uint8)
    k = 1 + case_index % 3
    label[2:6, 3:8, k] = 1
    label[2:4, 3:5, k + 1] = 1
    label[7:9, 10:12, 2:4] = 2
    return label


def _prediction(label: np.ndarray) -> np.ndarray:
    """GT minus lesion 2 (FN) plus a detached blob (FP), uint8."""
    pred = (label == 1).astype(np.uint8)
    pred[0:2, 0:2, 0:2] = 1
    return pred


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, AFFINE), str(path))


def _case_row(run_id: str, model: str, mode: str, ts: int, fold: int, case: str, idx: int, n_prompted: int) -> dict:
    dice = case_dice(model, ts, idx, fold)
    row = {c: "" for c in CASE_COLUMNS}
    row.update(
        run_id=run_id, model=model, mode=mode, test_set=ts, fold=fold, case_id=case, patient_id=f"P{idx:03d}",
        min_volume_ml=2.0, n_gt_lesions=3, n_pred_lesions=2, n_prompted=n_prompted, n_interactions=BUDGET * n_prompted,
        n_clicks=4, max_slice_fraction=0.01, prompted_lesion_dice=0.8, scan_dice=dice,
        scan_dice_before_propagation=round(dice - 0.05, 6),
        tp_any=2, fp_any=1, fn_any=1,
        precision_any=2 / 3, recall_any=2 / 3, f1_any=round(dice + 0.1, 6), tp_iou50=1, fp_iou50=1, fn_iou50=2,
        precision_iou50=0.5, recall_iou50=1 / 3, f1_iou50=round(dice - 0.1, 6),
        lesion_dice_mean_detected=round(dice + 0.05, 6), lesion_dice_mean_all=round(dice, 6),
        fp_volume_ml=1.0 + idx, fn_volume_ml=2.0 * idx, gt_volume_ml=10.0, pred_volume_ml=9.0, runtime_s=1.5,
        prediction_file=f"predictions/{case}.nii.gz",
    )  # fmt: skip
    return row


def _interaction_rows(base: dict, global_mode: bool, dice: float) -> list[dict]:
    """Lesion-wise: target 1 uses the full budget, target 2 stops after one interaction; then one propagation."""
    rows = []
    targets = [(0, BUDGET)] if global_mode else [(1, BUDGET), (2, 1)]
    step = 0
    for rank, n in targets:
        for t in range(1, n + 1):
            step += 1
            value = round(dice * t / BUDGET, 6) if rank != 2 else 1.0
            rows.append({**base, "step": step, "phase": "interaction", "target_rank": rank, "target_label": rank,
                         "target_volume_ml": 3.0, "interaction": t, "new_pos": "1 2 3", "new_neg": "",
                         "n_pos_total": t, "n_neg_total": 0, "click_strategy": "patch_dt",
                         "dice_target": value, "dice_scan": round(value * 0.9, 6), "elapsed_s": 0.1,
                         "peak_mem_mb": 10.0})  # fmt: skip
    if not global_mode:
        step += 1
        rows.append({**base, "step": step, "phase": "propagation", "target_rank": 0, "target_label": 0,
                     "target_volume_ml": "", "interaction": 0, "new_pos": "", "new_neg": "", "n_pos_total": 0,
                     "n_neg_total": 0, "click_strategy": "patch_dt", "dice_target": "", "dice_scan": dice,
                     "elapsed_s": 0.2, "peak_mem_mb": 10.0})  # fmt: skip
    return rows


def sweep_dice(case_index: int, k: int, propagated: bool) -> float:
    """``dice_scan`` logged after target ``k`` of a sweep case (``+0.05`` on the propagation row)."""
    return round(0.1 * k + 0.01 * case_index + (0.05 if propagated else 0.0), 6)


def sweep_targets(case_index: int) -> int:
    """Targets of a sweep case: case 0 has 2 lesions, the others 3."""
    return 2 if case_index == 0 else 3


def sweep_metric(metric: str, case_index: int, k: int, fold: int) -> float:
    """Value of ``metric`` in ``sweep_metrics.csv`` after ``k`` prompted lesions of a sweep case."""
    return round(SWEEP_METRIC_OFFSET[metric] + 0.1 * k + 0.01 * case_index + 0.001 * fold, 6)


def _sweep_metric_rows(base: dict, case_index: int, fold: int) -> list[dict]:
    """One ``sweep_metrics.csv`` row per prompted lesion ``k = 1 .. sweep_targets(case_index)``."""
    return [{**base, "n_prompted": k, **{m: sweep_metric(m, case_index, k, fold) for m in SWEEP_METRIC_OFFSET}}
            for k in range(1, sweep_targets(case_index) + 1)]  # fmt: skip


def _sweep_rows(base: dict, case_index: int, propagates: bool) -> list[dict]:
    """One interaction per target; a propagating model logs a propagation row after every target."""
    rows = []
    for k in range(1, sweep_targets(case_index) + 1):
        value = sweep_dice(case_index, k, False)
        rows.append({**base, "phase": "interaction", "target_rank": k, "target_label": k, "interaction": 1,
                     "dice_target": 0.9, "dice_scan": value})  # fmt: skip
        if propagates:
            rows.append({**base, "phase": "propagation", "target_rank": 0, "target_label": 0, "interaction": 0,
                         "dice_target": "", "dice_scan": sweep_dice(case_index, k, True)})  # fmt: skip
    return [{**row, "step": n} for n, row in enumerate(rows, start=1)]


def _write_run(
    root: Path, data: Path | None, model: str, mode: str, ts: int, fold: int, n_cases: int, n_prompted: int,
    config_hash: str, predictions: bool, sweep_metrics: bool = False,
) -> Path:  # fmt: skip
    run_id = f"{model}__{mode}__ts{ts}__fold{fold}__{config_hash}"
    run = root / run_id
    run.mkdir(parents=True)
    cases, interactions, lesions, sweep = [], [], [], []
    for idx in range(n_cases):
        case = f"case_{ts}{idx:02d}"
        row = _case_row(run_id, model, mode, ts, fold, case, idx, n_prompted)
        cases.append(row)
        base = {k: row[k] for k in ("run_id", "model", "mode", "test_set", "fold", "case_id", "patient_id")}
        if mode == SWEEP_MODE:
            interactions += _sweep_rows(base, idx, propagates=model == "mois_sam2")
            sweep += _sweep_metric_rows(base, idx, fold) if sweep_metrics else []
        else:
            interactions += _interaction_rows(base, mode.startswith("global"), row["scan_dice"])
        for lesion in (1, 2):
            lesions.append({"run_id": run_id, "case_id": case, "gt_lesion_id": lesion, "volume_ml": 3.0,
                            "prompted": lesion <= n_prompted, "prompt_rank": lesion, "detected_any": lesion == 1,
                            "matched_iou50": lesion == 1, "iou_best": 0.7 if lesion == 1 else 0.0,
                            "lesion_dice_bbox": 0.8 if lesion == 1 else 0.0})  # fmt: skip
        if predictions:
            _save(run / "predictions" / f"{case}.nii.gz", _prediction(case_label(idx)))
    pd.DataFrame(cases, columns=CASE_COLUMNS).to_csv(run / "case_metrics.csv", index=False)
    pd.DataFrame(interactions, columns=INTERACTION_COLUMNS).to_csv(run / "interactions.csv", index=False)
    pd.DataFrame(lesions, columns=LESION_COLUMNS).to_csv(run / "lesion_metrics.csv", index=False)
    if sweep_metrics:
        pd.DataFrame(sweep, columns=SWEEP_COLUMNS).to_csv(run / "sweep_metrics.csv", index=False)
    manifest = {
        "run_id": run_id, "created_utc": "2025-01-01T00:00:00Z", "command": "fabricated", "seed": 0,
        "data": {"root": str(data) if data is not None else None, "test_set": ts, "fold": fold,
                 "case_ids": [c["case_id"] for c in cases]},
        "n_cases_done": n_cases,
    }  # fmt: skip
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run


def build_results(
    tmp: Path,
    models: tuple[str, ...] = ("mois_sam2", "sam2"),
    modes: tuple[str, ...] = ("lesion_wise_corrective",),
    test_sets: tuple[int, ...] = (1, 2),
    folds: tuple[int, ...] = (1,),
    n_cases: int = 3,
    sweep: bool = False,
    predictions: bool = True,
    record_data_root: bool = True,
    sweep_metrics: tuple[str, ...] = ("mois_sam2",),
) -> Fabricated:
    """Write a results folder (one run per model, mode, test set and fold) and its raw data folder under ``tmp``.

    ``sweep`` adds one run of mode ``prompted_lesion_sweep`` per model, test set and fold (:func:`_sweep_rows`;
    only ``mois_sam2`` propagates); the sweep runs of the models in ``sweep_metrics`` also write
    ``sweep_metrics.csv`` (:func:`sweep_metric`), the others only their interactions (as runs of older versions).
    """
    results, data = tmp / "results", tmp / "raw"
    for ts in test_sets:
        for idx in range(n_cases):
            label = case_label(idx)
            image = (np.arange(label.size, dtype=np.float32).reshape(SHAPE) % 7 + 1) * (1 + 3 * (label > 0))
            _save(data / f"imagesTs_{ts}" / f"case_{ts}{idx:02d}.nii.gz", image)
            _save(data / f"labelsTs_{ts}_instance" / f"case_{ts}{idx:02d}.nii.gz", label)
    recorded = data if record_data_root else None
    for model in models:
        for ts in test_sets:
            for fold in folds:
                for mode in modes:
                    _write_run(results, recorded, model, mode, ts, fold, n_cases, 2, "abcd1234", predictions)
                if sweep:
                    _write_run(results, recorded, model, SWEEP_MODE, ts, fold, n_cases, 3, "5eeb5eeb", False,
                               sweep_metrics=model in sweep_metrics)
    return Fabricated(results=results, data=data)


def test_fabricated_runs_have_the_spec_columns_and_layout(tmp_path: Path) -> None:
    fab = build_results(tmp_path, test_sets=(3,), n_cases=2)
    run = fab.results / "sam2__lesion_wise_corrective__ts3__fold1__abcd1234"
    assert list(pd.read_csv(run / "case_metrics.csv").columns) == CASE_COLUMNS
    assert list(pd.read_csv(run / "interactions.csv").columns) == INTERACTION_COLUMNS
    assert list(pd.read_csv(run / "lesion_metrics.csv").columns) == LESION_COLUMNS
    assert sorted(p.name for p in (run / "predictions").iterdir()) == ["case_300.nii.gz", "case_301.nii.gz"]
    assert (fab.data / "imagesTs_3" / "case_301.nii.gz").is_file()
