"""Raw layout discovery, the case -> patient map and check_raw_layout's listing of every problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from raw_cohort_helpers import BAD_INPUTS, CASES, corrupt_image, make_raw_cohort, missing_patient, shape_mismatch

from mois_sam2_nf.data.layout import (
    check_raw_layout,
    discover_sets,
    label_dir_name,
    load_patient_map,
    read_patients_csv,
    require_valid_layout,
    select_sets,
)
from mois_sam2_nf.errors import InputError


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_raw_cohort(tmp_path_factory.mktemp("layout") / "raw")


@pytest.fixture()
def cohort_copy(cohort: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(cohort, tmp_path / "raw"))


def test_label_dir_names() -> None:
    assert label_dir_name("imagesTr") == "labelsTr_instance"
    assert label_dir_name("imagesTs_3") == "labelsTs_3_instance"
    assert label_dir_name("imagesTs") == "labelsTs_instance"
    with pytest.raises(ValueError):
        label_dir_name("labelsTr")


def test_discover_sets_pairs_cases_and_orders_sets(cohort: Path, tmp_path: Path) -> None:
    sets = discover_sets(cohort)
    assert [s.name for s in sets] == ["imagesTr", "imagesTs_1", "imagesTs_2"]
    expected = sorted(c for s, c, _ in CASES if s == "imagesTr")
    assert sets[0].case_ids == expected and not sets[0].is_test and sets[1].is_test
    for case in sets[0].cases:
        assert case.label == cohort / "labelsTr_instance" / case.image.name
    # test sets sort numerically (10 after 2), plain .nii files count as cases
    (tmp_path / "imagesTs_10").mkdir()
    (tmp_path / "imagesTs_2").mkdir()
    shutil.copy(next((cohort / "imagesTr").iterdir()), tmp_path / "imagesTs_10" / "x.nii")
    assert [s.name for s in discover_sets(tmp_path)] == ["imagesTs_2", "imagesTs_10"]
    assert discover_sets(tmp_path)[1].case_ids == ["x"]


def test_select_sets_rejects_unknown_names(cohort: Path) -> None:
    assert [s.name for s in select_sets(cohort, ["imagesTs_2"])] == ["imagesTs_2"]
    with pytest.raises(InputError, match="imagesTs_9"):
        select_sets(cohort, ["imagesTs_9"])


def test_valid_cohort_has_no_problems(cohort: Path) -> None:
    assert check_raw_layout(cohort, progress=False) == []
    require_valid_layout(cohort, progress=False)


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_every_bad_input_is_listed_with_its_file(cohort_copy: Path, name: str) -> None:
    mutate, words = BAD_INPUTS[name]
    named = mutate(cohort_copy)
    problems = check_raw_layout(cohort_copy, progress=False)
    assert len(problems) == 1, problems
    assert str(named) in problems[0] and words in problems[0]
    assert "\n" not in problems[0]
    with pytest.raises(InputError, match=words.replace(">", ".")):
        require_valid_layout(cohort_copy, progress=False)


def test_all_problems_are_listed_at_once(cohort_copy: Path) -> None:
    corrupt_image(cohort_copy)
    shape_mismatch_path = shape_mismatch(cohort_copy)
    missing_patient(cohort_copy)
    orphan = cohort_copy / "labelsTs_1_instance" / "orphan.nii.gz"
    shutil.copy(shape_mismatch_path, orphan)
    problems = check_raw_layout(cohort_copy, progress=False)
    # corrupt image (label then compared with nothing), missing patient row, orphan label
    assert len(problems) == 3, problems
    assert any("not a readable NIfTI" in p for p in problems)
    assert any("missing from" in p for p in problems)
    assert any(str(orphan) in p and "no image" in p for p in problems)
    with pytest.raises(InputError, match="and 2 more problem"):
        require_valid_layout(cohort_copy, progress=False)


def test_names_only_check_skips_voxel_problems(cohort_copy: Path) -> None:
    corrupt_image(cohort_copy)
    assert check_raw_layout(cohort_copy, read_voxels=False) == []
    skip = {("imagesTr", "1_2018_P_102_T2")}
    assert check_raw_layout(cohort_copy, skip_voxels=skip, progress=False) == []
    assert check_raw_layout(cohort_copy, sets=["imagesTs_1"], progress=False) == []


def test_missing_root_and_empty_root(tmp_path: Path) -> None:
    assert "not found" in check_raw_layout(tmp_path / "nope")[0]
    assert "no scan sets" in check_raw_layout(tmp_path)[0]


def test_patients_csv_required_and_validated(cohort_copy: Path) -> None:
    csv = cohort_copy / "patients.csv"
    mapping = load_patient_map(cohort_copy)
    assert mapping == {c: p for _, c, p in CASES}
    table = pd.read_csv(csv, dtype=str)
    table.drop(columns=["patient_id"]).to_csv(csv, index=False)
    with pytest.raises(InputError, match="missing required column.*patient_id"):
        read_patients_csv(csv)
    pd.concat([table, table.iloc[:1]]).to_csv(csv, index=False)
    with pytest.raises(InputError, match="more than once"):
        read_patients_csv(csv)
    csv.unlink()
    problems = check_raw_layout(cohort_copy, progress=False)
    assert len(problems) == 1 and "patients.csv: file not found" in problems[0] and "--patient-regex" in problems[0]


def test_patient_regex_replaces_the_csv(cohort_copy: Path) -> None:
    (cohort_copy / "patients.csv").unlink()
    regex = r"_P_(\d+)_"
    assert check_raw_layout(cohort_copy, patient_regex=regex, progress=False) == []
    assert load_patient_map(cohort_copy, regex) == {c: p for _, c, p in CASES}
    problems = check_raw_layout(cohort_copy, patient_regex=r"_Q_(\d+)_", read_voxels=False)
    assert len(problems) == len(CASES) and all("does not match --patient-regex" in p for p in problems)
    with pytest.raises(InputError, match="invalid regular expression"):
        load_patient_map(cohort_copy, "(")


def test_generated_tiny_cohort_is_valid(tiny_cohort: Path, tmp_path: Path) -> None:
    assert check_raw_layout(tiny_cohort, progress=False) == []
    assert [s.name for s in discover_sets(tiny_cohort)] == ["imagesTr"] + [f"imagesTs_{k}" for k in range(1, 5)]
    # a name mismatch (label renamed) is rejected, naming both files
    raw = Path(shutil.copytree(tiny_cohort, tmp_path / "raw"))
    label = sorted((raw / "labelsTs_1_instance").iterdir())[0]
    label.rename(label.with_name("renamed.nii.gz"))
    problems = check_raw_layout(raw, read_voxels=False)
    assert len(problems) == 2 and "label file missing" in problems[0] and "renamed.nii.gz" in problems[1]
