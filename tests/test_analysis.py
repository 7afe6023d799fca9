"""Results analysis: reading run folders, tables, Wilcoxon tests, sweep rows, figures and the report command."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_analysis_fixtures import (
    AFFINE,
    BUDGET,
    CASE_COLUMNS,
    build_results,
    SWEEP_COLUMNS,
    case_dice,
    case_label,
    sweep_dice,
    sweep_metric,
    sweep_targets,
)

from mois_sam2_nf.analysis import figures, statistics, tables
from mois_sam2_nf.analysis.load import load_results
from mois_sam2_nf.data.eval_sets import normalise_eval_set, parse_eval_set
from mois_sam2_nf.evaluation.manifest import RUN_ID_PATTERN, run_id as make_run_id
from mois_sam2_nf.analysis.report import analyse
from mois_sam2_nf.cli.main import main
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.results import SUMMARY_COLUMNS


@pytest.fixture(scope="module")
def fabricated(tmp_path_factory: pytest.TempPathFactory):
    """Two models, two test sets, two folds, three cases, with sweep runs and predictions."""
    return build_results(tmp_path_factory.mktemp("fab"), folds=(1, 2), sweep=True)


def test_load_reads_every_run_and_normalises_identifiers(fabricated) -> None:
    results = load_results(fabricated.results)
    assert len(results.runs) == 2 * 2 * 2 * 2  # models x test sets x folds x (benchmark + sweep)
    assert len(results.cases) == len(results.runs) * 3
    assert set(results.cases["test_set"]) == {"ts1", "ts2"}
    assert results.cases["case_id"].map(type).eq(str).all()
    assert set(results.lesions["model"]) == {"mois_sam2", "sam2"}
    assert results.lesions["mode"].notna().all()
    run = results.run("sam2__lesion_wise_corrective__ts2__fold1__abcd1234")
    identity = (run.model, run.mode, run.test_set, run.fold, run.n_cases)
    assert identity == ("sam2", "lesion_wise_corrective", "ts2", "1", 3)
    assert run.data_root == fabricated.data
    single = load_results(run.path)
    assert [r.run_id for r in single.runs] == [run.run_id]


def test_load_falls_back_to_per_case_files(tmp_path: Path) -> None:
    fab = build_results(tmp_path, models=("sam2",), test_sets=(1,))
    run = next(fab.results.iterdir())
    table = pd.read_csv(run / "case_metrics.csv", dtype={"case_id": str})
    for case_id, row in table.groupby("case_id"):
        (run / "cases" / case_id).mkdir(parents=True)
        row.to_csv(run / "cases" / case_id / "metrics.csv", index=False)
    (run / "case_metrics.csv").unlink()
    results = load_results(fab.results)
    assert sorted(results.cases["case_id"]) == sorted(table["case_id"])
    assert any("read 3 per-case file(s)" in note for note in results.notes)


def test_load_rejects_missing_folders_and_columns(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="results folder not found"):
        load_results(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no evaluation runs found"):
        load_results(tmp_path / "empty")
    fab = build_results(tmp_path / "bad", models=("sam2",), test_sets=(1,), n_cases=1)
    path = next(fab.results.iterdir()) / "case_metrics.csv"
    pd.read_csv(path).drop(columns=["scan_dice"]).to_csv(path, index=False)
    with pytest.raises(InputError, match="missing column\\(s\\) scan_dice"):
        load_results(fab.results)


def test_test_set_labels_and_folders() -> None:
    labels = [normalise_eval_set(v) for v in (1, "2", "3.0", "ts3", "imagesTs_4", "val_1", "val1", "holdout")]
    assert labels == ["ts1", "ts2", "ts3", "ts3", "ts4", "val_1", "val_1", "holdout"]
    ts2, val1 = parse_eval_set("ts2"), parse_eval_set("val_1")
    assert (ts2.image_folder, ts2.label_folder, ts2.run_token) == ("imagesTs_2", "labelsTs_2_instance", "ts2")
    assert (val1.image_folder, val1.label_folder, val1.run_token) == ("imagesTr", "labelsTr_instance", "val1")
    with pytest.raises(InputError, match="expected ts<k>"):
        parse_eval_set("holdout")


@pytest.mark.parametrize("test_set", ["ts3", "val_2"])
def test_run_ids_of_every_set_parse_back(test_set: str) -> None:
    run_id = make_run_id("mois_sam2", "lesion_wise_corrective", test_set, 2, {"seed": 0})
    match = RUN_ID_PATTERN.match(run_id)
    assert match is not None, run_id
    assert (match["model"], match["mode"], match["fold"]) == ("mois_sam2", "lesion_wise_corrective", "2")
    assert normalise_eval_set(match["test_set"]) == test_set


def test_benchmark_table_is_population_mean_and_std(fabricated) -> None:
    analysis = analyse(load_results(fabricated.results), data_root=fabricated.data)
    row = analysis.benchmark.query("model == 'mois_sam2' and test_set == 'ts2'")
    assert len(row) == 1 and row["mode"].iloc[0] == "lesion_wise_corrective"  # sweep runs stay out
    values = np.array([case_dice("mois_sam2", 2, idx, fold) for idx in range(3) for fold in (1, 2)])
    assert row["Scan Dice"].iloc[0] == f"{values.mean():.3f} ± {values.std():.3f}"
    fp = np.array([1.0 + idx for idx in range(3) for _ in (1, 2)])
    assert row["FP volume (ml)"].iloc[0] == f"{fp.mean():.3f} ± {fp.std():.3f}"
    assert int(row["n"].iloc[0]) == 6
    assert list(analysis.summary.columns) == list(SUMMARY_COLUMNS)
    scan = analysis.summary.query("model == 'mois_sam2' and test_set == 'ts2' and metric == 'scan_dice'"
                                  " and mode == 'lesion_wise_corrective'")  # fmt: skip
    assert scan["median"].iloc[0] == pytest.approx(np.median(values))
    assert "nsd_2mm" not in set(analysis.summary["metric"])  # empty optional metric is left out


def test_wilcoxon_exact_p_bonferroni_and_na() -> None:
    rows = []
    for model, offset in (("mois_sam2", 0.3), ("sam2", 0.0), ("dins", 0.1)):
        for idx in range(3):
            rows.append({"model": model, "mode": "m", "test_set": "ts1", "case_id": f"c{idx}", "fold": "1",
                         "scan_dice": 0.2 + offset + 0.01 * idx * (model == "mois_sam2")})  # fmt: skip
    cases = pd.DataFrame(rows)
    stats = statistics.paired_wilcoxon(cases, reference="mois_sam2")
    assert list(stats[["model_a", "model_b"]].itertuples(index=False, name=None)) == [
        ("mois_sam2", "dins"),
        ("mois_sam2", "sam2"),
    ]
    # three positive differences: exact two-sided p = 2 / 2**3; two comparisons in the family
    assert stats["p_value"].tolist() == pytest.approx([0.25, 0.25])
    assert stats["p_bonferroni"].tolist() == pytest.approx([0.5, 0.5])
    assert (stats["n_comparisons"] == 2).all()
    all_pairs = statistics.paired_wilcoxon(cases, reference=None)
    assert len(all_pairs) == 3
    tied = cases.assign(scan_dice=0.5)
    na = statistics.paired_wilcoxon(tied, reference="mois_sam2")
    assert na["p_value"].isna().all() and na["p_bonferroni"].isna().all()
    assert (na["note"] == "n/a: all differences are zero").all()
    small = statistics.paired_wilcoxon(cases[cases["case_id"] != "c2"], reference="mois_sam2")
    assert small["note"].str.startswith("n/a: 2 pair(s)").all()


def test_wilcoxon_pairs_by_case_and_fold(fabricated) -> None:
    rows = tables.benchmark_rows(load_results(fabricated.results).cases)
    stats = statistics.paired_wilcoxon(rows, metrics=("scan_dice",))
    assert len(stats) == 2  # one comparison per test set
    assert (stats["n_pairs"] == 6).all()
    expected = np.mean([case_dice("mois_sam2", 1, i, f) - case_dice("sam2", 1, i, f) for i in range(3) for f in (1, 2)])
    first = stats[stats["test_set"] == "ts1"].iloc[0]
    assert first["mean_a"] - first["mean_b"] == pytest.approx(expected)
    assert first["p_value"] == pytest.approx(2 / 2**6)


def test_sweep_rows_from_interactions_follow_propagation(fabricated) -> None:
    results = load_results(fabricated.results)
    rows, source = tables.prompted_lesion_rows(results.cases, results.interactions, figures.SWEEP_METRICS)
    assert source.startswith("interactions.csv of the sweep runs (prompted_lesion_sweep)")
    case0 = rows[(rows["model"] == "mois_sam2") & (rows["case_id"] == "case_100") & (rows["fold"] == "1")]
    assert sweep_targets(0) == 2
    assert case0.sort_values("n_prompted")["value"].tolist() == pytest.approx(
        [sweep_dice(0, 1, True), sweep_dice(0, 2, True), sweep_dice(0, 2, True)]  # k = 3 keeps the last value
    )
    sam2 = rows[(rows["model"] == "sam2") & (rows["case_id"] == "case_101") & (rows["fold"] == "1")]
    expected = [sweep_dice(1, k, False) for k in (1, 2, 3)]
    assert sam2.sort_values("n_prompted")["value"].tolist() == pytest.approx(expected)


def test_sweep_rows_prefer_sweep_metrics_and_fill_short_cases(fabricated) -> None:
    results = load_results(fabricated.results)
    assert set(results.sweep["model"]) == {"mois_sam2"} and set(results.sweep["test_set"]) == {"ts1", "ts2"}
    assert not [note for note in results.notes if "sweep_metrics" in note]  # absent from other runs: no remark
    rows, source = tables.prompted_lesion_rows(results.cases, results.interactions, figures.SWEEP_METRICS,
                                               results.sweep)
    assert source.startswith("sweep_metrics.csv of the sweep runs (prompted_lesion_sweep)")
    assert "interactions.csv of the sweep runs (prompted_lesion_sweep) without sweep_metrics.csv" in source
    mois = rows[rows["model"] == "mois_sam2"]
    assert set(mois["metric"]) == set(figures.SWEEP_METRICS)
    case0 = mois[(mois["case_id"] == "case_100") & (mois["fold"] == "2") & (mois["metric"] == "f1_iou50")]
    assert sweep_targets(0) == 2
    assert case0.sort_values("n_prompted")["value"].tolist() == pytest.approx(
        [sweep_metric("f1_iou50", 0, 1, 2), sweep_metric("f1_iou50", 0, 2, 2), sweep_metric("f1_iou50", 0, 2, 2)]
    )
    sam2 = rows[rows["model"] == "sam2"]  # its sweep runs have interactions only
    assert set(sam2["metric"]) == {"scan_dice"} and sorted(set(sam2["n_prompted"])) == [1, 2, 3]


def test_sweep_table_shows_every_model_at_the_chosen_k(fabricated) -> None:
    results = load_results(fabricated.results)
    rows, _ = tables.prompted_lesion_rows(results.cases, results.interactions, figures.SWEEP_METRICS, results.sweep)
    table = tables.sweep_table(rows, ks=(1, 3, 5))
    assert list(table.columns) == ["mode", "test_set", "model", "K", "Scan Dice", "F1 (any overlap)",
                                   "F1 (IoU ≥ 0.5)", "Lesion Dice (detected)", "n"]  # fmt: skip
    assert table[["test_set", "model", "K"]].values.tolist() == [
        [ts, model, k] for ts in ("ts1", "ts2") for model in ("mois_sam2", "sam2") for k in (1, 3)
    ]  # K = 5 was not reached
    # K = 3: cases with two lesions keep their K = 2 values; 3 cases x 2 folds
    expected = np.array([sweep_metric("f1_iou50", i, min(3, sweep_targets(i)), f) for i in range(3) for f in (1, 2)])
    row = table[(table["test_set"] == "ts1") & (table["model"] == "mois_sam2") & (table["K"] == 3)].iloc[0]
    assert row["F1 (IoU ≥ 0.5)"] == tables.format_mean_std(expected.mean(), expected.std(), 3) and row["n"] == 6
    sam2 = table[(table["model"] == "sam2") & (table["K"] == 3)].iloc[0]
    assert sam2["F1 (IoU ≥ 0.5)"] == "–" and sam2["Scan Dice"] != "–"


def test_prompted_lesions_figure_has_one_row_per_test_set(fabricated) -> None:
    results = load_results(fabricated.results)
    rows, _ = tables.prompted_lesion_rows(results.cases, results.interactions, figures.SWEEP_METRICS, results.sweep)
    figure = figures.prompted_lesions_figure(rows)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == [f"{ts}: {tables.HEADLINE_METRICS[m]}" for ts in ("ts1", "ts2") for m in figures.SWEEP_METRICS]
    f1_ts2 = figure.axes[len(figures.SWEEP_METRICS) + 2]
    assert [c.get_label() for c in f1_ts2.containers] == ["mois_sam2"]
    expected = [np.mean([sweep_metric("f1_iou50", i, min(k, sweep_targets(i)), f) for i in range(3) for f in (1, 2)])
                for k in (1, 2, 3)]  # fmt: skip
    np.testing.assert_allclose(np.asarray(f1_ts2.containers[0].lines[0].get_ydata(), dtype=float), expected)
    scan_ts1 = figure.axes[0]
    assert sorted(c.get_label() for c in scan_ts1.containers) == ["mois_sam2", "sam2"]
    assert sorted(text.get_text() for text in figure.legends[0].get_texts()) == ["mois_sam2", "sam2"]


def test_sweep_rows_fall_back_to_case_metrics_with_varying_n_prompted() -> None:
    cases = pd.DataFrame({
        "run_id": ["a", "a", "b", "b"], "model": ["x"] * 4, "mode": ["lesion_wise_corrective"] * 4,
        "test_set": ["ts1"] * 4, "fold": ["1"] * 4, "case_id": ["c1", "c2", "c1", "c2"],
        "n_prompted": [1, 1, 5, 5], "scan_dice": [0.1, 0.2, 0.5, 0.7],
    })  # fmt: skip
    interactions = pd.DataFrame(columns=["mode"])
    rows, source = tables.prompted_lesion_rows(cases, interactions, ("scan_dice", "f1_any"))
    assert source.startswith("no sweep runs; case_metrics.csv")
    assert rows.groupby("n_prompted")["value"].mean().to_dict() == pytest.approx({1: 0.15, 5: 0.6})
    constant, why = tables.prompted_lesion_rows(cases.assign(n_prompted=3), interactions, ("scan_dice",))
    assert constant.empty and why.startswith("no sweep runs")


def test_interaction_curve_keeps_last_dice_of_early_stopped_targets(fabricated) -> None:
    results = load_results(fabricated.results)
    interactions = results.interactions[results.interactions["mode"] == "lesion_wise_corrective"]
    figure = figures.interaction_curves(interactions)
    line = next(ln for ln in figure.axes[0].lines if ln.get_label() == "mois_sam2")
    dice = np.array([case_dice("mois_sam2", ts, i, f) for ts in (1, 2) for i in range(3) for f in (1, 2)])
    # target 1 reaches dice * t / BUDGET; target 2 stopped at Dice 1.0 after one interaction
    expected = [(np.mean(np.round(dice * t / BUDGET, 6)) + 1.0) / 2 for t in range(1, BUDGET + 1)]
    np.testing.assert_allclose(line.get_ydata(), expected)
    assert figures.interaction_curves(interactions.iloc[0:0]) is None


def test_overlay_colours_and_frame_choice() -> None:
    image = np.full((2, 2), 0.5, dtype=np.float32)
    gt = np.array([[True, True], [False, False]])
    pred = np.array([[True, False], [True, False]])
    overlay_rgb = figures.overlay_rgb(image, gt, pred)
    assert overlay_rgb.shape == (2, 2, 3)
    assert np.argmax(overlay_rgb[0, 0]) == 1  # TP green
    assert np.argmax(overlay_rgb[1, 0]) == 2  # FP blue
    assert np.argmax(overlay_rgb[0, 1]) == 0  # FN red
    np.testing.assert_allclose(overlay_rgb[1, 1], [0.5, 0.5, 0.5])
    volume = np.zeros((3, 3, 4), dtype=bool)
    volume[:, 0, 2] = True
    volume[0, :, 1] = True
    volume[1, 1, 1] = True
    assert figures.best_coronal_frame(volume) == 1
    assert figures.best_coronal_frame(np.zeros((3, 3, 4), dtype=bool)) == 2


def test_overlay_panels_show_tp_fp_fn_of_the_saved_prediction(fabricated) -> None:
    results = load_results(fabricated.results)
    selection = figures.select_overlay_cases(tables.benchmark_rows(results.cases))
    assert list(selection["test_set"]) == ["ts1", "ts2"] and (selection["fold"] == "1").all()
    assert list(selection["case_id"]) == ["case_101", "case_201"]  # the median-Dice case of each set
    overlays, notes = figures.load_overlay_cases(results, selection)
    assert notes == [] and len(overlays) == 2
    overlay = overlays[0]
    view = ScanView.from_affine(AFFINE, case_label(1).shape)
    gt = view.to_canonical(case_label(1) > 0)
    frame = int(np.argmax(gt.sum(axis=(0, 1))))
    np.testing.assert_array_equal(overlay.gt, gt[:, :, frame])
    expected_pred = view.to_canonical(case_label(1) == 1)[:, :, frame]
    for model in ("mois_sam2", "sam2"):
        np.testing.assert_array_equal(overlay.predictions[model], expected_pred)
    assert overlay.aspect == pytest.approx(view.spacing[0] / view.spacing[1])
    assert figures.overlay_figure(overlays, ["mois_sam2", "sam2"]).axes[0].get_title() == "mois_sam2"


def _run_report(args: list[str], capsys) -> tuple[int, str]:
    code = main(["report", *args])
    return code, capsys.readouterr().out.strip().splitlines()[-1]


def test_report_cli_writes_everything(fabricated, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    code, last = _run_report([str(fabricated.results), "--out", str(out)], capsys)
    assert code == 0 and last == f"report: {out / 'report.md'}"
    text = (out / "report.md").read_text(encoding="utf-8")
    for name in ("domain_shift_scan_dice.png", "prompted_lesions.png", "dice_vs_interactions.png",
                 "qualitative_overlays.png"):  # fmt: skip
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(figures/{name})" in text
    assert "skipped" not in text
    assert "| lesion_wise_corrective | ts1 | mois_sam2 |" in text
    assert "| prompted_lesion_sweep | ts2 | mois_sam2 | 3 |" in text and "with K = 1, 3, 5, 10, 20" in text
    assert list(pd.read_csv(out / "summary.csv").columns) == list(SUMMARY_COLUMNS)
    stats = pd.read_csv(out / "statistics.csv")
    assert set(stats["model_a"]) == {"mois_sam2"} and set(stats["metric"]) >= {"scan_dice", "f1_any", "f1_iou50"}


def test_report_skips_missing_inputs_with_notes(tmp_path: Path, capsys) -> None:
    fab = build_results(tmp_path, models=("sam2",), test_sets=(1,), predictions=False, record_data_root=False)
    code, last = _run_report([str(fab.results)], capsys)
    assert code == 0 and last == f"report: {fab.results / 'report.md'}"
    text = (fab.results / "report.md").read_text(encoding="utf-8")
    assert "_skipped: no sweep runs" in text
    assert "_skipped: ts1/case_101: no data root (manifest data.root or --data-root)_" in text
    assert "No comparisons" in text
    assert not (fab.results / "figures" / "qualitative_overlays.png").exists()
    assert (fab.results / "figures" / "domain_shift_scan_dice.png").is_file()
    code, _ = _run_report([str(fab.results), "--data-root", str(fab.data)], capsys)
    text = (fab.results / "report.md").read_text(encoding="utf-8")
    assert code == 0 and "_skipped: " in text and "predictions/case_101.nii.gz: file not found" in text


def test_report_data_root_override_draws_overlays(tmp_path: Path, capsys) -> None:
    fab = build_results(tmp_path, test_sets=(1,), record_data_root=False)
    moved = tmp_path / "elsewhere"
    shutil.move(fab.data, moved)
    code, _ = _run_report([str(fab.results), "--data-root", str(moved), "--out", str(tmp_path / "r")], capsys)
    assert code == 0
    assert (tmp_path / "r" / "figures" / "qualitative_overlays.png").is_file()


def test_report_bad_results_folder_is_one_error_line(tmp_path: Path, capsys) -> None:
    code = main(["report", str(tmp_path / "missing")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == [f"error: {tmp_path / 'missing'}: results folder not found"]


def test_fixture_columns_match_the_runner_schema() -> None:
    from mois_sam2_nf.evaluation.results import CASE_METRIC_COLUMNS, SWEEP_COLUMNS as RUNNER_SWEEP_COLUMNS

    assert CASE_COLUMNS == list(CASE_METRIC_COLUMNS)
    assert SWEEP_COLUMNS == list(RUNNER_SWEEP_COLUMNS)


def test_report_on_a_run_without_finished_cases(tmp_path: Path, capsys) -> None:
    run = tmp_path / "res" / "sam2__lesion_wise_corrective__ts1__fold1__abcdef12"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text('{"run_id": "%s", "data": {"root": "nowhere"}}' % run.name, encoding="utf-8")
    code, last = _run_report([str(tmp_path / "res")], capsys)
    assert code == 0 and last.endswith("report.md")
    text = (tmp_path / "res" / "report.md").read_text(encoding="utf-8")
    assert "No benchmark rows." in text and text.count("_skipped: ") == 4
    assert f"- {run.name}: no case_metrics.csv" in text
