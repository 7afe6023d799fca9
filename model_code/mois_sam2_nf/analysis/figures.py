"""Figures of a results folder, drawn on :class:`matplotlib.figure.Figure` objects (no pyplot state, any backend).

Every builder returns ``None`` when its input is empty so callers can skip the figure with a note. Saved as PNG by
:func:`save_png` (atomic).

Qualitative overlays (like figure 2 of the MOIS-SAM2 paper) show one canonical coronal frame per case (rows S->I,
columns R->L, i.e. the patient's right on the image's left) with true positives green, false positives blue and false
negatives red, one row per case and one column per model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from tqdm.auto import tqdm

from mois_sam2_nf.analysis.load import Results
from mois_sam2_nf.analysis.tables import HEADLINE_METRICS, natural_key
from mois_sam2_nf.atomic import atomic_path
from mois_sam2_nf.data.eval_sets import parse_eval_set
from mois_sam2_nf.data.intensity import percentile_scale
from mois_sam2_nf.data.io import load_label, load_nifti
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError

#: overlay colours (RGB in [0, 1])
TP_COLOR = (0.0, 0.8, 0.0)
FP_COLOR = (0.1, 0.4, 1.0)
FN_COLOR = (1.0, 0.0, 0.0)
OVERLAY_ALPHA = 0.6
OVERLAY_LEGEND: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("TP", TP_COLOR),
    ("FP", FP_COLOR),
    ("FN", FN_COLOR),
)

#: preferred mode for the qualitative figure when none is given
DEFAULT_OVERLAY_MODE = "lesion_wise_corrective"

#: metrics of the prompted-lesions figure (all in [0, 1])
SWEEP_METRICS: tuple[str, ...] = ("scan_dice", "f1_any", "f1_iou50", "lesion_dice_mean_detected")


def save_png(figure: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Atomically write ``figure`` as PNG; returns the path."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


def _model_colors(models: list[str]) -> dict[str, tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {model: cmap(i % 10) for i, model in enumerate(models)}


def _sorted(values: pd.Series | list) -> list:
    return sorted(pd.unique(pd.Series(values)), key=natural_key)


def domain_shift_boxplot(cases: pd.DataFrame, metric: str = "scan_dice") -> Figure | None:
    """Box plot of ``metric`` per test set, models side by side; one panel per mode (rows pooled over folds)."""
    if metric not in cases.columns:
        return None
    data = cases.assign(value=pd.to_numeric(cases[metric], errors="coerce")).dropna(subset=["value"])
    if data.empty:
        return None
    modes, models, test_sets = _sorted(data["mode"]), _sorted(data["model"]), _sorted(data["test_set"])
    colors = _model_colors(models)
    width = 0.8 / len(models)
    figure = Figure(figsize=(max(5.0, 1.4 * len(test_sets) * max(1, len(models) / 2) + 1.5), 3.6 * len(modes)))
    axes = figure.subplots(len(modes), 1, squeeze=False)[:, 0]
    for ax, mode in zip(axes, modes):
        for m, model in enumerate(models):
            for t, test_set in enumerate(test_sets):
                values = data[(data["mode"] == mode) & (data["model"] == model) & (data["test_set"] == test_set)]
                if values.empty:
                    continue
                box = ax.boxplot(
                    values["value"].to_numpy(),
                    positions=[t + (m - (len(models) - 1) / 2) * width],
                    widths=width * 0.85,
                    patch_artist=True,
                    showfliers=True,
                )
                for patch in box["boxes"]:
                    patch.set_facecolor(colors[model])
                    patch.set_alpha(0.75)
                for median in box["medians"]:
                    median.set_color("black")
        ax.set_xticks(range(len(test_sets)), test_sets)
        ax.set_xlim(-0.6, len(test_sets) - 0.4)
        ax.set_ylabel(HEADLINE_METRICS.get(metric, metric))
        ax.set_title(f"{mode}: {HEADLINE_METRICS.get(metric, metric)} per test set")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(handles=[Patch(color=colors[m], label=m) for m in models], loc="best", fontsize="small")
    figure.tight_layout()
    return figure


def prompted_lesions_figure(rows: pd.DataFrame) -> Figure | None:
    """Mean ± std of each metric against the number of prompted lesions K: one row of panels per test set, one column
    per metric (:data:`SWEEP_METRICS` first), one line per model (and mode); folds pooled.

    ``rows``: long rows from :func:`mois_sam2_nf.analysis.tables.prompted_lesion_rows`.
    """
    if rows.empty:
        return None
    metrics = [m for m in SWEEP_METRICS if m in set(rows["metric"])] or _sorted(rows["metric"])
    test_sets = _sorted(rows["test_set"])
    several_modes = rows["mode"].nunique() > 1
    labels = rows["model"] + ("  (" + rows["mode"] + ")" if several_modes else "")
    colors = _model_colors(_sorted(labels))
    figure = Figure(figsize=(3.8 * len(metrics), 3.0 * len(test_sets) + 0.6), layout="constrained")
    axes = figure.subplots(len(test_sets), len(metrics), squeeze=False)
    for row, test_set in enumerate(test_sets):
        for column, metric in enumerate(metrics):
            ax = axes[row, column]
            panel = rows[(rows["metric"] == metric) & (rows["test_set"] == test_set)]
            for label, group in panel.groupby(labels[panel.index]):
                stats = group.groupby("n_prompted")["value"].agg(mean="mean", std=lambda v: v.std(ddof=0))
                x = stats.index.to_numpy(dtype=float)
                ax.errorbar(x, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=label,
                            color=colors[label])
            ax.set_xlabel("prompted lesions K")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if metric in SWEEP_METRICS:  # all in [0, 1]: one scale for every panel
                ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{test_set}: {HEADLINE_METRICS.get(metric, metric)}", fontsize="medium")
            ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=color, marker="o", label=label) for label, color in colors.items()]
    figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize="small")
    return figure


def interaction_curves(interactions: pd.DataFrame) -> Figure | None:
    """Mean Dice after each interaction, one panel per mode, one line per model.

    Lesion-wise targets (``target_rank > 0``) use ``dice_target`` (per-lesion Dice); whole-mask targets
    (``target_rank == 0``) use ``dice_scan``. A target that stopped early keeps its last Dice for the remaining
    interactions of the mode's longest budget, so every point averages the same targets.
    """
    steps = interactions[interactions["phase"] == "interaction"].copy()
    if steps.empty:
        return None
    steps["target_rank"] = pd.to_numeric(steps["target_rank"], errors="coerce").fillna(0).astype(int)
    steps["interaction"] = pd.to_numeric(steps["interaction"], errors="coerce")
    steps["value"] = np.where(
        steps["target_rank"] == 0,
        pd.to_numeric(steps["dice_scan"], errors="coerce"),
        pd.to_numeric(steps["dice_target"], errors="coerce"),
    )
    steps = steps.dropna(subset=["interaction", "value"])
    if steps.empty:
        return None
    modes, models = _sorted(steps["mode"]), _sorted(steps["model"])
    colors = _model_colors(models)
    figure = Figure(figsize=(4.2 * len(modes), 3.4))
    axes = figure.subplots(1, len(modes), squeeze=False)[0]
    for ax, mode in zip(axes, modes):
        in_mode = steps[steps["mode"] == mode]
        budget = int(in_mode["interaction"].max())
        for model in models:
            rows = in_mode[in_mode["model"] == model]
            if rows.empty:
                continue
            curves = rows.pivot_table(
                index=["run_id", "case_id", "target_rank"], columns="interaction", values="value", aggfunc="last"
            )
            curves = curves.reindex(columns=range(1, budget + 1)).ffill(axis=1)
            mean = curves.mean(axis=0)
            ax.plot(mean.index, mean.to_numpy(), marker="o", label=model, color=colors[model])
        lesion_wise = bool((in_mode["target_rank"] > 0).any())
        ax.set_xlabel("interaction")
        ax.set_ylabel("lesion Dice" if lesion_wise else "scan Dice")
        ax.set_title(mode)
        ax.set_xticks(range(1, budget + 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    figure.tight_layout()
    return figure


@dataclass(frozen=True)
class OverlayCase:
    """One row of the qualitative figure.

    Attributes:
        title: row label (test set, case, fold, frame).
        image: ``(H, W)`` float32 in [0, 1], the chosen canonical coronal frame (rows S->I, columns R->L).
        gt: ``(H, W)`` bool ground truth on that frame.
        predictions: model -> ``(H, W)`` bool prediction on that frame, or ``None`` when it is missing.
        aspect: displayed pixel height / width (``row_mm / col_mm``).
    """

    title: str
    image: np.ndarray
    gt: np.ndarray
    predictions: dict[str, np.ndarray | None]
    aspect: float


def select_overlay_cases(cases: pd.DataFrame, per_test_set: int = 1, mode: str | None = None) -> pd.DataFrame:
    """Representative cases for the qualitative figure: columns ``mode, test_set, case_id, fold``.

    Mode: ``mode``, else :data:`DEFAULT_OVERLAY_MODE` when present, else the first mode. Per test set the lowest fold
    is used; among the cases evaluated by the most models, those whose mean scan Dice (over models) is closest to
    the test set's median are taken (ties by case id).
    """
    modes = _sorted(cases["mode"])
    if not modes:
        return pd.DataFrame(columns=["mode", "test_set", "case_id", "fold"])
    chosen_mode = mode if mode is not None else (DEFAULT_OVERLAY_MODE if DEFAULT_OVERLAY_MODE in modes else modes[0])
    rows = cases[cases["mode"] == chosen_mode].assign(dice=lambda f: pd.to_numeric(f["scan_dice"], errors="coerce"))
    picked: list[tuple[object, ...]] = []
    for test_set in _sorted(rows["test_set"]):
        in_set = rows[rows["test_set"] == test_set]
        fold = _sorted(in_set["fold"])[0]
        in_fold = in_set[in_set["fold"] == fold]
        per_case = in_fold.groupby("case_id").agg(models=("model", "nunique"), dice=("dice", "mean"))
        per_case = per_case[per_case["models"] == per_case["models"].max()]
        distance = (per_case["dice"] - per_case["dice"].median()).abs().fillna(np.inf)
        order = sorted(per_case.index, key=lambda c: (distance[c], natural_key(c)))
        picked.extend((chosen_mode, test_set, case, fold) for case in order[:per_test_set])
    return pd.DataFrame(picked, columns=["mode", "test_set", "case_id", "fold"])


def _find_nifti(folder: Path, case_id: str) -> Path | None:
    for suffix in (".nii.gz", ".nii"):
        if (folder / f"{case_id}{suffix}").is_file():
            return folder / f"{case_id}{suffix}"
    return None


def best_coronal_frame(gt_canonical: np.ndarray) -> int:
    """Index of the canonical frame with the most GT voxels (first on ties; middle frame when GT is empty)."""
    counts = (gt_canonical > 0).sum(axis=(0, 1))
    return int(np.argmax(counts)) if counts.any() else gt_canonical.shape[2] // 2


def load_overlay_case(
    results: Results, row: pd.Series, data_root: Path, models: list[str]
) -> tuple[OverlayCase | None, list[str]]:
    """Image, GT and each model's prediction on the best coronal frame of one selected case; returns notes too."""
    try:
        eval_set = parse_eval_set(row["test_set"])
        images, labels = eval_set.image_folder, eval_set.label_folder
        image_path = _find_nifti(data_root / images, row["case_id"])
        label_path = _find_nifti(data_root / labels, row["case_id"])
        if image_path is None or label_path is None:
            missing = images if image_path is None else labels
            raise InputError(f"{row['test_set']}/{row['case_id']}: not found in {data_root / missing}")
        image = load_nifti(image_path)
        label = load_label(label_path, image=image)
    except InputError as err:
        return None, [str(err)]
    notes: list[str] = []
    view = ScanView.from_affine(image.affine, image.array.shape)
    gt = view.to_canonical(label.array > 0)
    frame = best_coronal_frame(gt)
    predictions: dict[str, np.ndarray | None] = {}
    in_case = results.cases[
        (results.cases["mode"] == row["mode"])
        & (results.cases["test_set"] == row["test_set"])
        & (results.cases["case_id"] == row["case_id"])
        & (results.cases["fold"] == row["fold"])
    ]
    for model in models:
        run_ids = in_case.loc[in_case["model"] == model, "run_id"]
        predictions[model] = None
        if run_ids.empty:
            continue
        path = results.prediction_path(run_ids.iloc[0], row["case_id"])
        try:
            prediction = load_label(path, image=image)
        except InputError as err:
            notes.append(f"{model}: {err}")
            continue
        predictions[model] = view.to_canonical(prediction.array > 0)[:, :, frame]
    row_mm, col_mm, _ = view.spacing
    scaled = percentile_scale(view.to_canonical(np.asarray(image.array))[:, :, frame])
    title = f"{row['test_set']} · {row['case_id']}\nfold {row['fold']} · frame {frame}"
    return OverlayCase(title, scaled, gt[:, :, frame], predictions, row_mm / col_mm), notes


def load_overlay_cases(
    results: Results, selection: pd.DataFrame, data_root: Path | None = None
) -> tuple[list[OverlayCase], list[str]]:
    """:func:`load_overlay_case` for every selected row; ``data_root`` overrides each run's manifest ``data.root``."""
    models = _sorted(results.cases.loc[results.cases["mode"].isin(selection["mode"]), "model"])
    overlays: list[OverlayCase] = []
    notes: list[str] = []
    for _, row in tqdm(selection.iterrows(), total=len(selection), desc="overlays", unit="case"):
        root = data_root
        if root is None:
            run_ids = results.cases.loc[
                (results.cases["test_set"] == row["test_set"]) & (results.cases["case_id"] == row["case_id"]), "run_id"
            ]
            roots = [results.run(r).data_root for r in pd.unique(run_ids)]
            root = next((r for r in roots if r is not None), None)
        if root is None:
            notes.append(f"{row['test_set']}/{row['case_id']}: no data root (manifest data.root or --data-root)")
            continue
        overlay, case_notes = load_overlay_case(results, row, Path(root), models)
        notes.extend(case_notes)
        if overlay is not None:
            overlays.append(overlay)
    return overlays, notes


def overlay_rgb(image: np.ndarray, gt: np.ndarray, prediction: np.ndarray | None) -> np.ndarray:
    """``(H, W, 3)`` float RGB: grey image, TP green, FP blue, FN red (alpha-blended); GT only when no prediction."""
    rgb = np.repeat(np.clip(image, 0.0, 1.0)[..., None], 3, axis=2).astype(np.float32)
    pred = np.zeros_like(gt) if prediction is None else prediction
    for mask, color in ((gt & pred, TP_COLOR), (pred & ~gt, FP_COLOR), (gt & ~pred, FN_COLOR)):
        rgb[mask] = (1 - OVERLAY_ALPHA) * rgb[mask] + OVERLAY_ALPHA * np.asarray(color, dtype=np.float32)
    return rgb


def overlay_figure(overlays: list[OverlayCase], models: list[str]) -> Figure | None:
    """Grid of overlays: one row per case, one column per model (missing predictions say so)."""
    if not overlays or not models:
        return None
    panel_w = 2.4
    heights = [min(6.0, panel_w * o.aspect * o.image.shape[0] / o.image.shape[1]) for o in overlays]
    figure = Figure(figsize=(panel_w * len(models) + 0.6, sum(heights) + 0.9))
    axes = figure.subplots(len(overlays), len(models), squeeze=False, gridspec_kw={"height_ratios": heights})
    for r, overlay in enumerate(overlays):
        for c, model in enumerate(models):
            ax = axes[r, c]
            prediction = overlay.predictions.get(model)
            rgb = overlay_rgb(overlay.image, overlay.gt, prediction)
            ax.imshow(rgb, aspect=overlay.aspect, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if prediction is None:
                ax.text(0.5, 0.5, "no prediction", transform=ax.transAxes, ha="center", va="center", color="yellow")
            if r == 0:
                ax.set_title(model)
            if c == 0:
                ax.set_ylabel(overlay.title, fontsize="small")
    figure.legend(
        handles=[Patch(color=color, label=name) for name, color in OVERLAY_LEGEND],
        loc="lower center",
        ncol=3,
        fontsize="small",
    )
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return figure
