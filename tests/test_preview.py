"""Cohort previews: one coronal MIP sheet per set, lesion outlines, and the scans/patients/lesions tables."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi
from PIL import Image
from raw_cohort_helpers import CASES, label_dir, make_raw_cohort, negative_label

from mois_sam2_nf.data.preview import make_previews, scan_preview
from mois_sam2_nf.errors import InputError


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_raw_cohort(tmp_path_factory.mktemp("preview") / "raw", seed=11)


def count_lesions(set_name: str, case: str, root: Path) -> tuple[int, float]:
    """26-connected lesion count and volume (ml), computed with scipy only."""
    lab = nib.load(str(root / label_dir(set_name) / f"{case}.nii.gz"))
    mask = np.asanyarray(lab.dataobj) > 0
    _, n = ndi.label(mask, structure=np.ones((3, 3, 3)))
    return n, mask.sum() * float(np.prod(lab.header.get_zooms()[:3])) / 1000.0


def test_sheets_and_tables(cohort: Path, tmp_path: Path) -> None:
    summary = make_previews(cohort, tmp_path, progress=False)
    sets = ["imagesTr", "imagesTs_1", "imagesTs_2"]
    assert list(summary["set"]) == sets
    for name in sets:
        with Image.open(tmp_path / f"{name}.png") as im:
            assert im.format == "PNG" and im.width > 200 and im.height > 200
        members = [(c, p) for s, c, p in CASES if s == name]
        row = summary[summary["set"] == name].iloc[0]
        counts = [count_lesions(name, c, cohort) for c, _ in members]
        assert row["scans"] == len(members)
        assert row["patients"] == len({p for _, p in members})
        assert row["lesions"] == sum(n for n, _ in counts)
        assert row["lesion_volume_ml"] == pytest.approx(sum(v for _, v in counts), abs=0.06)
    assert pd.read_csv(tmp_path / "summary.csv").equals(summary)
    scans = pd.read_csv(tmp_path / "scans.csv", dtype={"patient_id": str})
    assert len(scans) == len(CASES) and set(scans["patient_id"]) == {p for _, _, p in CASES}


def test_projection_is_over_the_anterior_posterior_axis(cohort: Path) -> None:
    set_name, case, patient = CASES[0]  # stored ("L", "P", "S"): A-P is the second array axis
    image = cohort / set_name / f"{case}.nii.gz"
    label = cohort / label_dir(set_name) / f"{case}.nii.gz"
    prev = scan_preview(image, label, set_name, case, patient)
    raw_label = np.asanyarray(nib.load(str(label)).dataobj) > 0
    raw_image = np.asanyarray(nib.load(str(image)).dataobj)
    # canonical rows S->I (flip k), cols R->L (i as stored, since i points to L)
    assert np.array_equal(prev.lesion_mip, raw_label.any(axis=1).T[::-1])
    assert np.array_equal(prev.mip > 0, (raw_image > 0).any(axis=1).T[::-1])
    assert prev.mip.dtype == np.float32 and 0.0 <= prev.mip.min() and prev.mip.max() <= 1.0


def test_bad_input_rejected_before_writing(cohort: Path, tmp_path: Path) -> None:
    import shutil

    raw = Path(shutil.copytree(cohort, tmp_path / "raw"))
    negative_label(raw)
    with pytest.raises(InputError, match=">= 0"):
        make_previews(raw, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_tiny_cohort_counts_match_the_generator(tiny_cohort: Path, tmp_path: Path) -> None:
    make_previews(tiny_cohort, tmp_path, sets=["imagesTs_3"], progress=False)
    scans = pd.read_csv(tmp_path / "scans.csv", dtype={"patient_id": str})
    truth = pd.read_csv(tiny_cohort / "patients.csv", dtype={"patient_id": str})
    merged = scans.merge(truth, on="case_id", suffixes=("", "_csv"))
    assert len(merged) == 2 and (merged["lesions"] == merged["n_lesions"]).all()
    assert (merged["patient_id"] == merged["patient_id_csv"]).all()
