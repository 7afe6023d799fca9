"""Helpers of the baseline tests: the first ts1 scan of the tiny cohort, a click on its first lesion voxel, one run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mois_sam2_nf.data.io import load_label, load_nifti
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.evaluation import runner
from mois_sam2_nf.segmenters import Click, Scan


def first_ts1_scan(cohort: Path) -> tuple[Scan, Click]:
    """The first ts1 scan of a raw cohort and a positive click on the first voxel of its label."""
    path = sorted((cohort / "imagesTs_1").glob("*.nii.gz"))[0]
    image = load_nifti(path)
    label = load_label(cohort / "labelsTs_1_instance" / path.name, image=image).array
    scan = Scan(path.name.removesuffix(".nii.gz"), image.array, image.affine,
                ScanView.from_affine(image.affine, image.array.shape))
    i, j, k = (int(v) for v in np.argwhere(label > 0)[0])
    return scan, Click(i, j, k, True)


def evaluate_one_case(cohort: Path, results: Path, case_id: str, *overrides: str) -> list[str]:
    """Run the evaluation on ``case_id`` of ts1 with Hydra ``overrides``; returns the lines of interactions.csv."""
    result = runner.evaluate([f"data.root={cohort}", f"results_dir={results}", "data.splits_dir=none",
                              "progress=false", f"data.cases=[{case_id}]", *overrides])
    return (result.run_dir / "interactions.csv").read_text().splitlines()
