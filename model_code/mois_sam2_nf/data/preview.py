"""Previews of a raw cohort: one coronal maximum-intensity-projection sheet per scan set and a summary table.

Each sheet ``<out>/<set>.png`` shows every scan of the set side by side: the canonical view (rows S->I, cols R->L),
percentile-scaled, projected by its maximum over the frame (P->A) axis, with the outline of the projected lesion mask
in colour. ``<out>/summary.csv`` holds one row per set (scans, patients, lesions) and ``<out>/scans.csv`` one row per
scan. Lesions are 26-connected components of ``label > 0``, as everywhere in the project.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from mois_sam2_nf.atomic import atomic_path
from mois_sam2_nf.data.instances import size_ordered_components
from mois_sam2_nf.data.intensity import percentile_scale
from mois_sam2_nf.data.io import load_label, load_nifti
from mois_sam2_nf.data.layout import ScanSet, load_patient_map, require_valid_layout, select_sets
from mois_sam2_nf.data.view import ScanView

OUTLINE_COLOUR = "#ff3b30"
SUMMARY_COLUMNS = ["set", "scans", "patients", "lesions", "lesions_per_scan_median", "lesion_volume_ml"]


@dataclass(frozen=True)
class ScanPreview:
    """One scan's projection and counts.

    Attributes:
        case_id / set_name / patient_id: identity.
        mip: ``(H, W)`` float32 in [0, 1], maximum over frames of the scaled canonical image.
        lesion_mip: ``(H, W)`` bool, any lesion voxel along the frame axis.
        spacing: canonical ``(row_mm, col_mm, frame_mm)``.
        lesions: number of 26-connected lesion components.
        lesion_volume_ml: total lesion volume.
    """

    case_id: str
    set_name: str
    patient_id: str
    mip: np.ndarray
    lesion_mip: np.ndarray
    spacing: tuple[float, float, float]
    lesions: int
    lesion_volume_ml: float


def scan_preview(case_image: Path, case_label: Path, set_name: str, case_id: str, patient_id: str) -> ScanPreview:
    """Project one scan (see :class:`ScanPreview`)."""
    image = load_nifti(case_image)
    label = load_label(case_label, image=image)
    view = ScanView.from_affine(image.affine, image.array.shape)
    canonical = percentile_scale(view.to_canonical(image.array))
    lesion = view.to_canonical(label.array) > 0
    _, sizes = size_ordered_components(lesion, connectivity=26)
    voxel_ml = float(np.prod(view.spacing)) / 1000.0
    return ScanPreview(
        case_id=case_id,
        set_name=set_name,
        patient_id=patient_id,
        mip=canonical.max(axis=2),
        lesion_mip=lesion.any(axis=2),
        spacing=view.spacing,
        lesions=int(len(sizes)),
        lesion_volume_ml=float(sizes.sum()) * voxel_ml,
    )


def render_sheet(previews: list[ScanPreview], title: str, path: str | os.PathLike[str]) -> Path:
    """Draw the projections side by side (physical aspect ratio, lesion outlines) and save a PNG atomically."""
    height_mm = max(p.mip.shape[0] * p.spacing[0] for p in previews)
    widths = [p.mip.shape[1] * p.spacing[1] for p in previews]
    panel_h = 6.0
    fig_w = max(3.0, sum(panel_h * w / height_mm for w in widths) + 0.3 * len(previews))
    fig = Figure(figsize=(fig_w, panel_h + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(previews), squeeze=False, gridspec_kw={"width_ratios": widths})
    for ax, prev in zip(axes[0], previews):
        ax.imshow(prev.mip, cmap="gray", vmin=0.0, vmax=1.0, aspect=prev.spacing[0] / prev.spacing[1],
                  interpolation="antialiased")
        if prev.lesion_mip.any():
            ax.contour(prev.lesion_mip.astype(np.float32), levels=[0.5], colors=OUTLINE_COLOUR, linewidths=0.6)
        ax.set_title(f"{prev.case_id}\n{prev.lesions} lesions", fontsize=7)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def summary_table(previews: list[ScanPreview], set_order: list[str]) -> pd.DataFrame:
    """One row per set in ``set_order``: scans, patients, lesions, median lesions per scan, lesion volume (ml)."""
    rows = []
    for name in set_order:
        members = [p for p in previews if p.set_name == name]
        lesions = [p.lesions for p in members]
        rows.append({
            "set": name,
            "scans": len(members),
            "patients": len({p.patient_id for p in members}),
            "lesions": int(sum(lesions)),
            "lesions_per_scan_median": float(np.median(lesions)) if lesions else 0.0,
            "lesion_volume_ml": round(float(sum(p.lesion_volume_ml for p in members)), 1),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _sheet_title(scan_set: ScanSet, previews: list[ScanPreview]) -> str:
    patients = len({p.patient_id for p in previews})
    lesions = sum(p.lesions for p in previews)
    return f"{scan_set.name}: {len(previews)} scans, {patients} patients, {lesions} lesions (coronal MIP)"


def make_previews(
    raw_root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    sets: list[str] | None = None,
    patient_regex: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Write one sheet per set plus ``summary.csv`` / ``scans.csv``; return the summary.

    Names and patients are validated first; each scan is validated as it is read, and every scan is projected
    before the first file is written, so bad input raises one :class:`InputError` and writes nothing.
    """
    chosen = select_sets(raw_root, sets)
    require_valid_layout(raw_root, patient_regex=patient_regex, sets=[s.name for s in chosen], read_voxels=False)
    patients = load_patient_map(raw_root, patient_regex, [c.case_id for s in chosen for c in s.cases])
    out_dir = Path(out_dir)
    cases = [c for s in chosen for c in s.cases]
    previews = [
        scan_preview(c.image, c.label, c.set_name, c.case_id, patients[c.case_id])
        for c in tqdm(cases, desc="previews", unit="scan", disable=None if progress else True)
    ]
    for scan_set in chosen:
        members = [p for p in previews if p.set_name == scan_set.name]
        render_sheet(members, _sheet_title(scan_set, members), out_dir / f"{scan_set.name}.png")
    scans = pd.DataFrame([
        {"set": p.set_name, "case_id": p.case_id, "patient_id": p.patient_id, "lesions": p.lesions,
         "lesion_volume_ml": round(p.lesion_volume_ml, 2)}
        for p in previews
    ])
    summary = summary_table(previews, [s.name for s in chosen])
    with atomic_path(out_dir / "scans.csv") as tmp:
        scans.to_csv(tmp, index=False)
    with atomic_path(out_dir / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    return summary
