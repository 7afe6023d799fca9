"""Synthetic cohort (docs/synthetic_data.md) on the session's `tiny` cohort (seed 0, one worker)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mois_sam2_nf.data.instances import size_ordered_components
from mois_sam2_nf.data.io import load_label, load_nifti
from mois_sam2_nf.data.synthetic import PRESETS, SyntheticPatient, plan_cohort
from mois_sam2_nf.data.synthetic.anatomy import DISTRACTORS, TISSUES
from mois_sam2_nf.data.view import ScanView

TINY = PRESETS["tiny"]
SET_DIRS = {s.name: (s.images_dir, s.labels_dir) for s in TINY.sets}
#: tiny composition (docs/synthetic_data.md, Sets and sites): set -> (scans, patients)
COMPOSITION = {"train": (8, 6), "ts1": (2, 2), "ts2": (2, 2), "ts3": (2, 1), "ts4": (2, 2)}
FIRST_ID = {"train": 1000, "ts1": 2000, "ts2": 3000, "ts3": 4000, "ts4": 5000}


def _rows(cohort: Path) -> list[dict]:
    with open(cohort / "patients.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _manifest(cohort: Path) -> dict:
    return json.loads((cohort / "synthetic_manifest.json").read_text(encoding="utf-8"))


def _scan_paths(cohort: Path, row: dict) -> tuple[Path, Path]:
    images, labels = SET_DIRS[row["set"]]
    return cohort / images / f"{row['case_id']}.nii.gz", cohort / labels / f"{row['case_id']}.nii.gz"


def _render(set_name: str, seed: int = 0) -> list:
    """In-memory scans (with tissue maps) of every patient of a tiny set."""
    plans = [p for p in plan_cohort(TINY, seed) if p.set.name == set_name]
    return [scan for plan in plans for scan in SyntheticPatient(TINY, seed, plan).scans()]


def test_geometry_dtype_axis_codes_per_set(tiny_cohort: Path) -> None:
    for row in _rows(tiny_cohort):
        image_path, label_path = _scan_paths(tiny_cohort, row)
        image = load_nifti(image_path)
        label = load_label(label_path, image=image)
        site_b = row["set"] == "ts4"
        geometry = TINY.geometries["site_b" if site_b else "main"]
        view = ScanView.from_affine(image.affine, image.array.shape)
        assert view.axcodes == (("R", "A", "S") if site_b else ("L", "P", "S"))
        assert image.array.dtype == (np.float32 if site_b else np.int16)
        assert label.array.dtype == np.uint16
        assert view.canonical_shape == geometry.shape
        assert np.allclose(view.spacing, geometry.spacing, atol=1e-4)
        assert np.array_equal(view.from_canonical(view.to_canonical(image.array)), image.array)
        assert image.array.min() >= 0 and image.array.max() > 0
        assert b"preset=tiny" in nib.load(image_path).header["descrip"].tobytes()


def test_patients_csv_sets_ids_and_follow_ups(tiny_cohort: Path) -> None:
    rows = _rows(tiny_cohort)
    assert list(rows[0])[:2] == ["case_id", "patient_id"]
    patients_of: dict[str, set[str]] = {}
    for name, (n_scans, n_patients) in COMPOSITION.items():
        subset = [r for r in rows if r["set"] == name]
        ids = {int(r["patient_id"]) for r in subset}
        assert len(subset) == n_scans and len(ids) == n_patients
        assert ids == set(range(FIRST_ID[name], FIRST_ID[name] + n_patients))
        files = sorted(p.name for p in (tiny_cohort / SET_DIRS[name][0]).iterdir())
        assert files == sorted(f"{r['case_id']}.nii.gz" for r in subset)
        patients_of[name] = {r["patient_id"] for r in subset}
        suffix = "_T2_STIR" if name == "ts4" else "_T2"
        for r in subset:
            assert re.fullmatch(rf"{r['visit']}_{r['study_year']}_P_{r['patient_id']}{suffix}", r["case_id"])
    names = list(patients_of)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not patients_of[a] & patients_of[b], (a, b)
    for pid in {r["patient_id"] for r in rows}:
        visits = sorted((int(r["visit"]), int(r["study_year"])) for r in rows if r["patient_id"] == pid)
        assert [v for v, _ in visits] == list(range(1, len(visits) + 1))
        assert all(y1 > y0 for (_, y0), (_, y1) in zip(visits, visits[1:]))


def test_lesion_counts_burden_and_size_order(tiny_cohort: Path) -> None:
    manifest = _manifest(tiny_cohort)
    for row in _rows(tiny_cohort):
        image_path, label_path = _scan_paths(tiny_cohort, row)
        label = load_label(label_path)
        view = ScanView.from_affine(label.affine, label.array.shape)
        canonical = view.to_canonical(label.array)
        expected, sizes = size_ordered_components(canonical > 0)
        assert np.array_equal(canonical, expected)
        low, high = TINY.lesion_counts[row["burden"]]
        assert low <= len(sizes) <= high and len(sizes) == int(row["n_lesions"])
        voxel_ml = float(np.prod(view.spacing)) / 1000.0
        assert sizes[0] * voxel_ml >= 3.0
        assert manifest["scans"][row["case_id"]]["n_lesions"] == len(sizes)
        if row["set"] == "ts3":
            assert row["burden"] == "low"


def test_follow_up_visits_keep_lesion_objects(tiny_cohort: Path) -> None:
    manifest = _manifest(tiny_cohort)
    scans = list(manifest["scans"].values())
    follow_ups = 0
    for scan in scans:
        if scan["visit"] == 1:
            continue
        previous = next(s for s in scans if s["patient_id"] == scan["patient_id"] and s["visit"] == scan["visit"] - 1)
        before = {o["id"]: o["scale"] for o in previous["lesion_objects"]}
        now = {o["id"]: o["scale"] for o in scan["lesion_objects"]}
        assert set(before) <= set(now)
        assert scan["acquisition"] != previous["acquisition"]
        follow_ups += 1
    assert follow_ups == 3


def test_in_memory_render_equals_files(tiny_cohort: Path) -> None:
    for scan in _render("ts3"):
        image = load_nifti(tiny_cohort / "imagesTs_3" / f"{scan.case_id}.nii.gz")
        label = load_nifti(tiny_cohort / "labelsTs_3_instance" / f"{scan.case_id}.nii.gz")
        assert np.array_equal(image.array, scan.image) and np.array_equal(label.array, scan.label)
        assert np.allclose(image.affine, scan.affine)


def test_distractors_are_bright_and_never_labelled() -> None:
    distractor_ids = [TISSUES[name] for name in DISTRACTORS]
    for scan in _render("train")[:4]:
        view = ScanView.from_affine(scan.affine, scan.image.shape)
        image = view.to_canonical(scan.image).astype(np.float64)
        label = view.to_canonical(scan.label)
        tissue = scan.tissue
        assert not label[np.isin(tissue, distractor_ids)].any()
        muscle = image[tissue == TISSUES["muscle"]].mean()
        for name in ("bladder", "csf"):
            assert image[tissue == TISSUES[name]].mean() > 3 * muscle, (scan.case_id, name)
        assert image[label > 0].mean() > 2 * muscle
        assert image[tissue == TISSUES["fat"]].mean() < 0.7 * muscle


def _measured_snr(scan) -> float:
    """Muscle mean / noise sigma, sigma from air voxels inside station coverage (Rayleigh: E[x^2] = 2 sigma^2)."""
    view = ScanView.from_affine(scan.affine, scan.image.shape)
    image = view.to_canonical(scan.image).astype(np.float64)
    covered = image.max(axis=(1, 2)) > 0
    air = (scan.tissue == TISSUES["air"]) & covered[:, None, None]
    sigma = np.sqrt((image[air] ** 2).mean() / 2.0)
    return float(image[scan.tissue == TISSUES["muscle"]].mean() / sigma)


def test_field_strength_shift_lowers_snr() -> None:
    ts1 = np.median([_measured_snr(s) for s in _render("ts1")])
    ts2 = np.median([_measured_snr(s) for s in _render("ts2")])
    assert ts2 / ts1 < 0.7


@pytest.mark.parametrize("name", ["tiny", "demo", "full"])
def test_preset_tables(name: str) -> None:
    preset = PRESETS[name]
    totals = {"tiny": (16, 13), "demo": (28, 21), "full": (120, 85)}[name]
    plans = plan_cohort(preset, 0)
    assert (sum(p.n_visits for p in plans), len(plans)) == totals
    for geometry in preset.geometries.values():
        assert np.allclose(geometry.fov_mm[:2], (1812.5, 500.0))
