"""The data sub-commands end to end: --help, check-data, slice, split, export-nnunet, preview, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from raw_cohort_helpers import BAD_INPUTS, CASES, corrupt_image, make_raw_cohort, shape_mismatch

from mois_sam2_nf.cli.main import main
from mois_sam2_nf.data.splits import read_folds

DATA_COMMANDS = ["check-data", "slice", "split", "export-nnunet", "preview"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_raw_cohort(tmp_path_factory.mktemp("cli") / "raw", seed=2)


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_help_of_each_sub_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"mois-sam2-nf {command}" in out and "--patient-regex" in out


def test_check_data_ok_summary(cohort: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-data", str(cohort)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("OK:")
    assert f"{len(CASES)} scans" in lines[0] and f"{len({p for _, _, p in CASES})} patients" in lines[0]


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_listed_by_check_data_and_rejected_by_slice(
    cohort: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = Path(shutil.copytree(cohort, tmp_path / "raw"))
    mutate, words = BAD_INPUTS[name]
    named = mutate(raw)
    assert main(["check-data", str(raw)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [line for line in captured.out.splitlines() if str(named) in line]
    assert words in captured.out and "1 problem" in captured.err
    out = tmp_path / "processed"
    assert main(["slice", "--raw", str(raw), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(named) in err[0] and words in err[0]
    assert not out.exists()


@pytest.mark.parametrize("command", ["split", "export-nnunet", "preview"])
def test_other_commands_reject_bad_input_without_output(
    cohort: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = Path(shutil.copytree(cohort, tmp_path / "raw"))
    (raw / "patients.csv").unlink()
    out = tmp_path / "out"
    assert main([command, "--raw", str(raw), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "patients.csv: file not found" in err[0]
    assert not out.exists()


def test_voxel_problems_stop_export_and_preview(cohort: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    raw = Path(shutil.copytree(cohort, tmp_path / "raw"))
    corrupt_image(raw)
    shape_mismatch(raw)  # the label of the corrupt image: reported once, as the image is unreadable
    for command in ("export-nnunet", "preview"):
        assert main([command, "--raw", str(raw), "--out", str(tmp_path / command)]) == 1
        assert "not a readable NIfTI" in capsys.readouterr().err
        assert not (tmp_path / command).exists()


def test_commands_write_their_outputs(cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["slice", "--raw", str(cohort), "--out", str(tmp_path / "processed"), "--quality", "80",
                 "--sets", "imagesTs_2"]) == 0
    assert "imagesTs_2: 2 sliced" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == ["imagesTs_2", "labelsTs_2_instance"]

    assert main(["split", "--raw", str(cohort), "--out", str(tmp_path / "splits"), "--folds", "3",
                 "--seed", "1"]) == 0
    assert capsys.readouterr().out.count("fold_") == 3 and len(read_folds(tmp_path / "splits")) == 3

    assert main(["export-nnunet", "--raw", str(cohort), "--out", str(tmp_path / "nn"), "--dataset-id", "5"]) == 1
    assert "reserved" in capsys.readouterr().err
    assert main(["export-nnunet", "--raw", str(cohort), "--out", str(tmp_path / "nn"), "--dataset-id", "42",
                 "--splits", str(tmp_path / "splits")]) == 0
    assert (tmp_path / "nn" / "Dataset042_NF1WBMRI" / "splits_final.json").is_file()

    assert main(["preview", "--raw", str(cohort), "--out", str(tmp_path / "previews"), "--sets", "imagesTs_1"]) == 0
    printed = capsys.readouterr().out
    assert "imagesTs_1" in printed and "lesions" in printed and "imagesTr" not in printed
    assert (tmp_path / "previews" / "imagesTs_1.png").is_file()


def test_reference_named_scripts_forward_to_the_package(cohort: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    scripts = Path(__file__).resolve().parent.parent / "data_scripts"
    out = tmp_path / "splits"
    done = subprocess.run([sys.executable, str(scripts / "split_into_train_val_sets.py"), "--raw", str(cohort),
                           "--out", str(out), "--folds", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(read_folds(out)) == 2
