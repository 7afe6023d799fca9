"""Synthetic cohort files: determinism across workers and seeds, resume, refusal of foreign folders, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mois_sam2_nf.cli.main import main
from mois_sam2_nf.data.io import load_nifti, save_nifti
from mois_sam2_nf.data.synthetic import PRESETS, generate_cohort, plan_cohort
from mois_sam2_nf.data.synthetic.cohort import generate_patient
from mois_sam2_nf.errors import InputError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_workers_give_byte_identical_files(tiny_cohort: Path, tmp_path: Path) -> None:
    out = generate_cohort("tiny", tmp_path / "raw", seed=0, workers=2, progress=False)
    reference = _files(tiny_cohort)
    assert len(reference) == 2 * 16 + 2
    assert _files(out) == reference


def test_different_seed_gives_different_scans(tiny_cohort: Path, tmp_path: Path) -> None:
    plan = next(p for p in plan_cohort(PRESETS["tiny"], 1) if p.set.name == "ts1")
    records, patient = generate_patient("tiny", 1, plan, tmp_path)
    assert patient["patient_id"] == 2000 and records[0]["generator_seed"] == 1
    other = load_nifti(tmp_path / "imagesTs_1" / f"{records[0]['case_id']}.nii.gz").array
    seed0 = [load_nifti(p).array for p in sorted((tiny_cohort / "imagesTs_1").iterdir())]
    assert all(a.shape == other.shape and not np.array_equal(a, other) for a in seed0)


def test_rerun_is_a_no_op_and_resumes_missing_scans(tiny_cohort: Path, tmp_path: Path) -> None:
    copy = tmp_path / "raw"
    shutil.copytree(tiny_cohort, copy)
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    assert main(["synth", "--preset", "tiny", "--out", str(copy), "--seed", "0"]) == 0
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == before
    missing = sorted((copy / "imagesTr").iterdir())[0]
    missing.unlink()
    generate_cohort("tiny", copy, seed=0, progress=False)
    assert _files(copy) == _files(tiny_cohort)


def test_refuses_other_seed_or_foreign_data(tiny_cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "raw"
    shutil.copytree(tiny_cohort, copy)
    assert main(["synth", "--preset", "tiny", "--out", str(copy), "--seed", "7"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "seed 7" in err and len(err.splitlines()) == 1
    with pytest.raises(InputError, match="preset 'demo'"):
        generate_cohort("demo", copy, seed=0)
    foreign = tmp_path / "foreign"
    save_nifti(foreign / "imagesTr" / "case.nii.gz", np.zeros((2, 2, 2), np.int16), np.eye(4))
    with pytest.raises(InputError, match="no synthetic_manifest.json"):
        generate_cohort("tiny", foreign, seed=0)
    with pytest.raises(InputError, match="unknown preset"):
        generate_cohort("huge", tmp_path / "x")
