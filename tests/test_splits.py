"""Patient-level folds: the section-4 algorithm, invariants, determinism, files and readers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from raw_cohort_helpers import CASES, leaked_test_patient, make_raw_cohort

from mois_sam2_nf.data.splits import create_folds, make_folds, read_case_list, read_folds, write_folds
from mois_sam2_nf.errors import InputError


def cohort_map(n_patients: int, seed: int) -> dict[str, str]:
    """A cohort of 1-3 scans per patient with reference-style names."""
    rng = np.random.default_rng(seed)
    mapping = {}
    for p in range(n_patients):
        for visit in range(1, int(rng.integers(1, 4)) + 1):
            mapping[f"{visit}_20{10 + visit}_P_{1000 + p}_T2"] = str(1000 + p)
    return mapping


@pytest.mark.parametrize("n_patients,n_folds", [(42, 5), (10, 5), (7, 3)])
def test_fold_invariants(n_patients: int, n_folds: int) -> None:
    mapping = cohort_map(n_patients, seed=n_patients)
    folds = make_folds(mapping, n_folds, seed=42)
    assert [f.index for f in folds] == list(range(1, n_folds + 1))
    all_cases = sorted(mapping)
    val_union = [c for f in folds for c in f.val]
    assert sorted(val_union) == all_cases and len(val_union) == len(set(val_union))  # partition
    for fold in folds:
        assert list(fold.train) == sorted(fold.train) and list(fold.val) == sorted(fold.val)
        assert sorted(fold.train + fold.val) == all_cases
        assert not {mapping[c] for c in fold.train} & {mapping[c] for c in fold.val}  # patient-disjoint
    per_patient = max(list(mapping.values()).count(p) for p in set(mapping.values()))
    sizes = [len(f.val) for f in folds]
    assert max(sizes) - min(sizes) <= per_patient


def test_folds_are_deterministic_and_seeded() -> None:
    mapping = cohort_map(42, seed=0)
    assert make_folds(mapping) == make_folds(dict(reversed(list(mapping.items()))))
    assert make_folds(mapping, seed=42) != make_folds(mapping, seed=7)


def test_greedy_assignment_follows_the_seeded_permutation() -> None:
    # one scan per patient and as many patients as folds: fold k receives the k-th permuted patient
    mapping = {f"case_{p}": p for p in ["b", "a", "e", "c", "d"]}
    permuted = np.random.default_rng(42).permutation(np.array(sorted(mapping.values()), dtype=object))
    folds = make_folds(mapping, 5, seed=42)
    assert [mapping[f.val[0]] for f in folds] == list(permuted)
    # ties go to the lowest fold: 3 single-scan patients in 2 folds -> fold 1 gets the 1st and 3rd permuted patient
    mapping = {"x1": "x", "y1": "y", "z1": "z"}
    permuted = list(np.random.default_rng(0).permutation(np.array(["x", "y", "z"], dtype=object)))
    folds = make_folds(mapping, 2, seed=0)
    assert folds[0].val == tuple(sorted(f"{p}1" for p in (permuted[0], permuted[2])))
    assert folds[1].val == (f"{permuted[1]}1",)


def test_too_few_patients_or_folds_rejected() -> None:
    with pytest.raises(InputError, match="only 2 training patient"):
        make_folds({"a": "1", "b": "2"}, 5)
    with pytest.raises(InputError, match="at least 2"):
        make_folds({"a": "1", "b": "2"}, 1)


def test_files_and_readers(tmp_path: Path) -> None:
    mapping = cohort_map(12, seed=1)
    folds = make_folds(mapping, 4)
    write_folds(folds, tmp_path)
    text = (tmp_path / "fold_2" / "val_set.txt").read_text()
    assert text.endswith("\n") and text.splitlines() == list(folds[1].val)
    assert read_folds(tmp_path) == folds
    (tmp_path / "fold_2" / "val_set.txt").write_text(text.rstrip("\n"))  # no final newline
    assert read_case_list(tmp_path / "fold_2" / "val_set.txt") == list(folds[1].val)
    write_folds(make_folds(mapping, 3), tmp_path)  # fewer folds: stale fold_4 removed
    assert len(read_folds(tmp_path)) == 3 and not (tmp_path / "fold_4").exists()
    shutil.rmtree(tmp_path / "fold_2")
    with pytest.raises(InputError, match="without gaps"):
        read_folds(tmp_path)


def test_create_folds_from_a_raw_root(tmp_path: Path) -> None:
    raw = make_raw_cohort(tmp_path / "raw")
    folds = create_folds(raw, tmp_path / "splits", n_folds=5, seed=42)
    train_cases = sorted(c for s, c, _ in CASES if s == "imagesTr")
    assert sorted(c for f in folds for c in f.val) == train_cases
    assert read_folds(tmp_path / "splits") == folds
    (raw / "patients.csv").unlink()
    with pytest.raises(InputError, match="patients.csv"):
        create_folds(raw, tmp_path / "other")
    assert not (tmp_path / "other").exists()
    assert create_folds(raw, tmp_path / "regex", patient_regex=r"_P_(\d+)_") == folds


def test_create_folds_rejects_test_patients_in_training(tmp_path: Path) -> None:
    raw = make_raw_cohort(tmp_path / "raw")
    leaked_test_patient(raw)
    with pytest.raises(InputError, match="also occurs in imagesTr"):
        create_folds(raw, tmp_path / "splits")
    assert not (tmp_path / "splits").exists()
