"""The resumable runner: result layout, exact CSV columns, hand-computed metrics, resumption, shards, errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from evaluation_cases import AFFINE, COHORT, VOXEL_ML, lesion_mask, make_cohort, write_case
from mois_sam2_nf.cli.main import main
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation import runner
from mois_sam2_nf.evaluation.metrics import dice
from mois_sam2_nf.evaluation.oracle import OracleSegmenter
from mois_sam2_nf.evaluation.results import (
    CASE_METRIC_COLUMNS,
    INTERACTION_COLUMNS,
    LESION_COLUMNS,
    SUMMARY_COLUMNS,
    SWEEP_COLUMNS,
    SWEEP_METRICS,
)

CASES = sorted(COHORT)
TIMING = ["elapsed_s", "peak_mem_mb", "runtime_s"]


@pytest.fixture()
def cohort(tmp_path: Path) -> Path:
    return make_cohort(tmp_path / "raw")


def overrides(root: Path, results: Path, *extra: str) -> list[str]:
    return [f"data.root={root}", f"results_dir={results}", "data.splits_dir=none", "progress=false", *extra]


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"case_id": str, "patient_id": str, "new_pos": str, "new_neg": str})


def header(path: Path) -> tuple[str, ...]:
    with open(path, newline="") as handle:
        return tuple(next(csv.reader(handle)))


def test_oracle_run_layout_columns_and_exact_metrics(cohort: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    result = runner.evaluate(overrides(cohort, results, "model=oracle", "protocol.num_lesions=2",
                                       "metrics.min_volume_ml=0"))
    run_dir = result.run_dir
    assert result.run_id.startswith("oracle__lesion_wise_corrective__ts1__fold1__")
    assert len(result.run_id.split("__")[-1]) == 8
    assert result.computed == CASES and result.n_cases_done == 3
    for name, columns in (("interactions.csv", INTERACTION_COLUMNS), ("case_metrics.csv", CASE_METRIC_COLUMNS),
                          ("lesion_metrics.csv", LESION_COLUMNS)):
        assert header(run_dir / name) == columns
    assert header(results / "summary.csv") == SUMMARY_COLUMNS
    for case in CASES:
        assert {p.name for p in (run_dir / "cases" / case).iterdir()} == {"interactions.csv", "lesions.csv",
                                                                       "metrics.csv"}
    metrics = read(run_dir / "case_metrics.csv").set_index("case_id")
    lesions = read(run_dir / "lesion_metrics.csv")
    prompted = lesions[lesions["prompted"] == 1]
    assert (prompted["lesion_dice_bbox"] == 1.0).all() and set(prompted["prompt_rank"]) == {1.0, 2.0}
    for case, indices in COHORT.items():
        row = metrics.loc[case]
        n_prompted = min(2, len(indices))
        assert row["n_prompted"] == n_prompted and row["n_gt_lesions"] == len(indices)
        assert row["recall_any"] == pytest.approx(n_prompted / len(indices))
        assert row["scan_dice"] == pytest.approx(dice(lesion_mask(indices[:2]), lesion_mask(indices)))
        assert row["fp_any"] == 0 and np.isnan(row["noc_80"]) and np.isnan(row["nsd_2mm"])
        assert row["prediction_file"] == f"predictions/{case}.nii.gz"
        saved = nib.load(run_dir / row["prediction_file"])
        assert saved.get_data_dtype() == np.uint8 and np.array_equal(saved.affine, AFFINE)
        np.testing.assert_array_equal(np.asarray(saved.dataobj), lesion_mask(indices[:2]).astype(np.uint8))
    interactions = read(run_dir / "interactions.csv")
    assert interactions.groupby("case_id")["step"].apply(list).to_dict() == {c: [1, 2] for c in CASES}
    assert (interactions["patient_id"] == interactions["case_id"].str.split("_").str[3]).all()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["n_cases_done"] == 3 and manifest["seed"] == 0 and manifest["data"]["case_ids"] == CASES
    assert manifest["config"]["protocol"]["num_lesions"] == 2 and "git_commit" in manifest
    assert manifest["versions"]["numpy"] == np.__version__ and manifest["checkpoint"] == {"path": None, "sha256": None}
    summary = read(results / "summary.csv").set_index("metric")
    scan = metrics["scan_dice"].to_numpy()
    assert summary.loc["scan_dice", "mean"] == pytest.approx(scan.mean())
    assert summary.loc["scan_dice", "std"] == pytest.approx(scan.std(ddof=0)) and summary.loc["scan_dice", "n"] == 3


def test_imperfect_oracle_metrics_equal_hand_computed_values(cohort: Path, tmp_path: Path) -> None:
    args = ["model=imperfect_oracle", "protocol=lesion_wise_non_corrective", "data.cases=[1_2020_P_2001_T2]"]
    exact = runner.evaluate(overrides(cohort, tmp_path / "a", *args, "metrics.min_volume_ml=0"))
    row = read(exact.run_dir / "case_metrics.csv").iloc[0]
    # GT 392 + 216 + 27 + 8 voxels; prediction: eroded 150, dilated 432, (missed), dilated 32, cube 8
    gt, pred, inter = 643, 622, 150 + 216 + 8
    expected = {
        "scan_dice": 2 * inter / (gt + pred), "tp_any": 3, "fp_any": 1, "fn_any": 1, "recall_any": 0.75,
        "tp_iou50": 1, "fp_iou50": 3, "fn_iou50": 3,  # only the dilated 6x6x6 box reaches IoU 216/432 = 0.5
        "lesion_dice_mean_detected": (300 / 542 + 1 + 1) / 3, "lesion_dice_mean_all": (300 / 542 + 2) / 4,
        "fp_volume_ml": 8 * VOXEL_ML, "fn_volume_ml": 27 * VOXEL_ML, "gt_volume_ml": gt * VOXEL_ML,
        "pred_volume_ml": pred * VOXEL_ML, "n_interactions": 4, "n_clicks": 4, "n_prompted": 4,
    }
    for column, value in expected.items():
        assert row[column] == pytest.approx(value), column
    # default 2 ml filter = floor(2000 / 160) = 12 voxels: GT loses the 8-voxel box, the prediction loses the cube,
    # and the dilated 8-voxel box (32 voxels) survives as a false positive
    filtered = read(runner.evaluate(overrides(cohort, tmp_path / "b", *args)).run_dir / "case_metrics.csv").iloc[0]
    assert (filtered["n_gt_lesions"], filtered["tp_any"], filtered["fp_any"], filtered["fn_any"]) == (3, 2, 1, 1)
    assert filtered["fp_volume_ml"] == pytest.approx(32 * VOXEL_ML)


def test_sweep_writes_the_final_metrics_after_every_prompted_lesion(cohort: Path, tmp_path: Path) -> None:
    result = runner.evaluate(overrides(cohort, tmp_path / "results", "model=oracle", "protocol=prompted_lesion_sweep",
                                       "protocol.num_lesions=3", "metrics.min_volume_ml=0"))
    run_dir = result.run_dir
    assert header(run_dir / "sweep_metrics.csv") == SWEEP_COLUMNS
    sweep = read(run_dir / "sweep_metrics.csv")
    metrics = read(run_dir / "case_metrics.csv").set_index("case_id")
    for case, indices in COHORT.items():
        rows = sweep[sweep["case_id"] == case].set_index("n_prompted")
        m = min(3, len(indices))
        assert list(rows.index) == list(range(1, m + 1))
        for k, row in rows.iterrows():
            assert row["scan_dice"] == pytest.approx(dice(lesion_mask(indices[:k]), lesion_mask(indices)))
            assert row["f1_any"] == pytest.approx(2 * k / (k + len(indices)))  # k TP, no FP, n - k FN
        for column in SWEEP_METRICS:  # the last k is the final prediction
            assert rows.loc[m, column] == pytest.approx(metrics.loc[case, column], nan_ok=True), column
        assert (run_dir / "cases" / case / "sweep.csv").is_file()
    # other modes write no sweep file
    plain = runner.evaluate(overrides(cohort, tmp_path / "results", "model=oracle", "protocol.num_lesions=3"))
    assert not (plain.run_dir / "sweep_metrics.csv").exists()


def test_same_seed_gives_identical_csvs_and_seed_changes_run_id(cohort: Path, tmp_path: Path) -> None:
    args = ["model=imperfect_oracle", "protocol.num_lesions=3"]
    first = runner.evaluate(overrides(cohort, tmp_path / "a", *args))
    second = runner.evaluate(overrides(cohort, tmp_path / "b", *args))
    assert first.run_id == second.run_id
    for name in ("interactions.csv", "case_metrics.csv", "lesion_metrics.csv"):
        a, b = read(first.run_dir / name), read(second.run_dir / name)
        pd.testing.assert_frame_equal(a.drop(columns=TIMING, errors="ignore"), b.drop(columns=TIMING, errors="ignore"))
    other = runner.evaluate(overrides(cohort, tmp_path / "c", *args, "seed=1"))
    assert other.run_id != first.run_id


def test_killed_run_resumes_without_duplicates(cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = overrides(cohort, tmp_path / "results", "model=oracle")
    original = OracleSegmenter.start_scan
    seen: list[str] = []

    def crash_on_second(self: OracleSegmenter, scan: object) -> None:
        seen.append(scan.case_id)
        if len(seen) == 2:
            raise RuntimeError("killed")
        original(self, scan)

    monkeypatch.setattr(OracleSegmenter, "start_scan", crash_on_second)
    with pytest.raises(RuntimeError, match="killed"):
        runner.evaluate(args)
    monkeypatch.setattr(OracleSegmenter, "start_scan", original)
    run_dir = next((tmp_path / "results").iterdir())
    assert (run_dir / "cases" / CASES[0] / "metrics.csv").is_file()
    assert not (run_dir / "cases" / CASES[1]).exists() and not (run_dir / "case_metrics.csv").exists()
    resumed = runner.evaluate(args)
    assert resumed.skipped == CASES[:1] and resumed.computed == CASES[1:]
    metrics, interactions = read(run_dir / "case_metrics.csv"), read(run_dir / "interactions.csv")
    assert metrics["case_id"].tolist() == CASES
    assert not interactions.duplicated(["case_id", "step"]).any() and set(interactions["case_id"]) == set(CASES)
    assert json.loads((run_dir / "manifest.json").read_text())["n_cases_done"] == 3
    again = runner.evaluate(args, overwrite=True)
    assert again.computed == CASES and read(run_dir / "case_metrics.csv")["case_id"].tolist() == CASES


def test_shards_partition_cases(cohort: Path, tmp_path: Path) -> None:
    args = overrides(cohort, tmp_path / "results", "model=oracle")
    parts = [runner.evaluate(args, shard=(i, 2)) for i in (1, 2)]
    assert parts[0].computed == CASES[0::2] and parts[1].computed == CASES[1::2]
    assert parts[1].n_cases_done == 3
    assert read(parts[1].run_dir / "case_metrics.csv")["case_id"].tolist() == CASES
    with pytest.raises(InputError, match="--shard"):
        runner.parse_shard("3/2")


def test_label_image_mismatch_is_one_error_and_no_csv(cohort: Path, tmp_path: Path) -> None:
    bad = "0_2019_P_2000_T2"
    shifted = AFFINE.copy()
    shifted[0, 3] += 5
    write_case(cohort, bad, (0,), label_affine=shifted)
    results = tmp_path / "results"
    with pytest.raises(InputError) as err:
        runner.evaluate(overrides(cohort, results, "model=oracle"))
    message = str(err.value)
    assert "\n" not in message and bad in message and "affine differs" in message
    run_dir = next(results.iterdir())
    assert not (run_dir / "cases").exists() and not list(run_dir.glob("*.csv"))


def test_corrupt_prediction_is_one_error_and_no_csv(cohort: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def corrupt_save(path: Path, *args: object, **kwargs: object) -> Path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"not a nifti file")
        return Path(path)

    monkeypatch.setattr(runner, "save_nifti", corrupt_save)
    results = tmp_path / "results"
    with pytest.raises(InputError, match="not a readable NIfTI") as err:
        runner.evaluate(overrides(cohort, results, "model=oracle"))
    assert "\n" not in str(err.value)
    run_dir = next(results.iterdir())
    assert not (run_dir / "cases").exists() and not list(run_dir.glob("*.csv"))


def test_validation_test_set_reads_fold_split(cohort: Path, tmp_path: Path) -> None:
    shutil.copytree(cohort / "imagesTs_1", cohort / "imagesTr")
    shutil.copytree(cohort / "labelsTs_1_instance", cohort / "labelsTr_instance")
    splits = tmp_path / "splits" / "fold_2"
    splits.mkdir(parents=True)
    (splits / "val_set.txt").write_text(f"{CASES[1]}\n")
    (splits / "train_set.txt").write_text(f"{CASES[0]}\n{CASES[2]}\n")
    result = runner.evaluate(overrides(cohort, tmp_path / "results", "model=oracle", "data.test_set=val_2",
                                       f"data.splits_dir={tmp_path / 'splits'}", "fold=2"))
    assert "__val2__fold2__" in result.run_id and result.computed == [CASES[1]]
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["data"]["splits_sha256"] is not None and manifest["data"]["test_set"] == "val_2"


def test_cli_evaluate_and_one_line_errors(cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = overrides(cohort, tmp_path / "results", "model=oracle", "protocol=global_non_corrective")
    assert main(["evaluate", *args, "--shard", "1/1"]) == 0
    out = capsys.readouterr().out
    assert "oracle__global_non_corrective__ts1__fold1__" in out and "3 case(s) evaluated" in out
    assert main(["evaluate", *args]) == 0 and "0 case(s) evaluated, 3 already done" in capsys.readouterr().out
    for bad, pattern in ((["data.test_set=ts9"], "imagesTs_9"),
                         (["model=nninteractive", "model.checkpoint=null"], "not available"),
                         (["model=nnunet", "model.checkpoint=nowhere"], "meta.json: missing"),
                         (["protocol=nope"], "evaluate config"), (["data.test_set=train"], "expected ts<k>")):
        assert main(["evaluate", *args, *bad]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and pattern in err, err


def test_oracle_on_tiny_cohort_gives_exact_prompted_lesions(tiny_cohort: Path, tmp_path: Path) -> None:
    from mois_sam2_nf.data.instances import size_ordered_components

    k = 5
    result = runner.evaluate(overrides(tiny_cohort, tmp_path / "results", "model=oracle", f"protocol.num_lesions={k}",
                                       "metrics.min_volume_ml=0"))
    metrics = read(result.run_dir / "case_metrics.csv").set_index("case_id")
    lesions = read(result.run_dir / "lesion_metrics.csv")
    assert len(metrics) == 2
    for case, row in metrics.iterrows():
        gt = np.asarray(nib.load(tiny_cohort / "labelsTs_1_instance" / f"{case}.nii.gz").dataobj) > 0
        components, sizes = size_ordered_components(gt)
        prompted = min(k, len(sizes))
        case_lesions = lesions[lesions["case_id"] == case]
        assert row["n_prompted"] == prompted and case_lesions["prompted"].sum() == prompted
        assert (case_lesions.loc[case_lesions["prompted"] == 1, "lesion_dice_bbox"] == 1.0).all()
        assert row["recall_any"] == pytest.approx(prompted / len(sizes)) and row["fp_any"] == 0
        union = (components > 0) & (components <= prompted)
        assert row["scan_dice"] == pytest.approx(dice(union, gt))


def test_config_hash_is_shared_across_folds_with_fold_interpolated_checkpoint(cohort: Path, tmp_path: Path) -> None:
    ids = []
    for fold in (1, 2):
        args = overrides(cohort, tmp_path / "results", "model=oracle", f"fold={fold}", "data.cases=[1_2020_P_2002_T2]",
                         "++model.checkpoint=weights/fold_${fold}/checkpoint.pt")
        result = runner.evaluate(args)
        manifest = json.loads((result.run_dir / "manifest.json").read_text())
        assert manifest["checkpoint"]["path"] == f"weights/fold_{fold}/checkpoint.pt"
        ids.append(result.run_id)
    assert ids[0].split("__")[-1] == ids[1].split("__")[-1] and ids[0] != ids[1]


def test_evaluate_help_lists_the_config_choices_and_print_config_runs_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mois_sam2_nf.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for choice in ("mois_sam2_no_propagation", "region_growing", "vista3d", "prompted_lesion_sweep", "patch_dt_mm"):
        assert choice in help_text
    results = tmp_path / "results"
    assert main(["evaluate", "model=sam2", "protocol=global_corrective", f"results_dir={results}",
                 "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "name: sam2" in printed and "mode: global_corrective" in printed
    assert not results.exists()
