"""The analysis of a results folder in one object (:func:`analyse`) and its Markdown report (:func:`write_report`).

The notebook ``results/result_analysis.ipynb`` and ``mois-sam2-nf report`` both go through :func:`analyse`, so they
always show the same numbers. Outputs of :func:`write_report` in ``out_dir``:

- ``report.md`` -- runs, benchmark tables, figures (the prompted-lesion figure with its table at selected K),
  statistics and notes on anything skipped;
- ``summary.csv`` -- columns ``model, mode, test_set, metric, mean, std, median, n`` (every mode and metric; the
  runner's own summary function, so it matches the ``summary.csv`` that ``evaluate`` writes);
- ``statistics.csv`` -- paired Wilcoxon tests (:mod:`mois_sam2_nf.analysis.statistics`);
- ``figures/*.png``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mois_sam2_nf.analysis import figures, statistics, tables
from mois_sam2_nf.analysis.load import Results, load_results
from mois_sam2_nf.atomic import write_text
from mois_sam2_nf.evaluation.results import summarise

#: figure key -> (section title, PNG file name)
FIGURES: dict[str, tuple[str, str]] = {
    "domain_shift": ("Domain shift: scan Dice per test set", "domain_shift_scan_dice.png"),
    "prompted_lesions": ("Metrics against the number of prompted lesions", "prompted_lesions.png"),
    "interactions": ("Dice against interactions", "dice_vs_interactions.png"),
    "qualitative": ("Qualitative examples (TP green, FP blue, FN red)", "qualitative_overlays.png"),
}

#: case_metrics columns tested between models
STAT_METRICS: tuple[str, ...] = ("scan_dice", "f1_any", "f1_iou50", "lesion_dice_mean_detected")


@dataclass
class Analysis:
    """Tables, statistics and figures of one results folder.

    Attributes:
        results: what was read.
        summary: long summary (``summary.csv``) of every mode, :func:`mois_sam2_nf.evaluation.results.summarise`.
        benchmark: wide ``mean ± std`` table (one row per mode, test set and model).
        statistics: paired Wilcoxon tests (one row per comparison).
        reference: the reference model of the tests (``None``: all pairs).
        figures: figure key (see :data:`FIGURES`) -> figure, or ``None`` when skipped.
        figure_notes: figure key -> what it was drawn from, or why it was skipped.
        figure_tables: figure key -> ``(caption, table)`` shown under that figure (the numbers behind it).
        notes: other remarks (fallbacks while reading, duplicate rows, ...).
    """

    results: Results
    summary: pd.DataFrame
    benchmark: pd.DataFrame
    statistics: pd.DataFrame
    reference: str | None
    figures: dict[str, Figure | None] = field(default_factory=dict)
    figure_notes: dict[str, str] = field(default_factory=dict)
    figure_tables: dict[str, tuple[str, pd.DataFrame]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _duplicate_note(cases: pd.DataFrame) -> str | None:
    keys = ["model", "mode", "test_set", "fold", "case_id"]
    duplicated = int(cases.duplicated(keys).sum())
    if not duplicated:
        return None
    return (
        f"{duplicated} case row(s) repeat a (model, mode, test set, fold, case) of another run (several configurations "
        "of one model?); they are pooled in the tables and averaged per pair in the tests"
    )


def _qualitative(
    results: Results, rows: pd.DataFrame, data_root: Path | None, per_test_set: int, mode: str | None
) -> tuple[Figure | None, str]:
    selection = figures.select_overlay_cases(rows, per_test_set=per_test_set, mode=mode)
    if selection.empty:
        return None, "skipped: no case rows"
    overlays, notes = figures.load_overlay_cases(results, selection, data_root)
    models = sorted(pd.unique(rows.loc[rows["mode"] == selection["mode"].iloc[0], "model"]), key=tables.natural_key)
    figure = figures.overlay_figure(overlays, models)
    drawn = sum(1 for o in overlays if any(p is not None for p in o.predictions.values()))
    if figure is None or drawn == 0:
        reason = "; ".join(notes) if notes else "no predictions found"
        return None, f"skipped: {reason}"
    mode = selection["mode"].iloc[0]
    text = f"mode {mode}; {len(overlays)} case(s), the case nearest the median scan Dice per test set"
    return figure, text + ("" if not notes else " — " + "; ".join(notes))


def analyse(
    results: Results,
    data_root: str | os.PathLike[str] | None = None,
    reference: str | None = statistics.DEFAULT_REFERENCE,
    overlay_cases_per_test_set: int = 1,
    overlay_mode: str | None = None,
) -> Analysis:
    """Compute every table, test and figure of ``results``.

    Args:
        results: from :func:`mois_sam2_nf.analysis.load.load_results`.
        data_root: raw data folder (``imagesTs_<k>/``, ``labelsTs_<k>_instance/``) for the overlays; default each
            run's manifest ``data.root``.
        reference: model tested against each other model (all pairs when absent).
        overlay_cases_per_test_set: rows of the qualitative figure per test set.
        overlay_mode: mode shown in the qualitative figure (default ``lesion_wise_corrective`` when present).
    """
    rows = tables.benchmark_rows(results.cases)
    summary = summarise(results.cases)
    analysis = Analysis(
        results=results,
        summary=summary,
        benchmark=tables.benchmark_table(tables.benchmark_rows(summary)),
        statistics=statistics.paired_wilcoxon(rows, metrics=STAT_METRICS, reference=reference),
        reference=reference,
        notes=list(results.notes),
    )
    duplicate = _duplicate_note(rows)
    if duplicate:
        analysis.notes.append(duplicate)

    analysis.figures["domain_shift"] = figures.domain_shift_boxplot(rows)
    analysis.figure_notes["domain_shift"] = "case rows of all folds pooled" if len(rows) else "skipped: no case rows"

    sweep, source = tables.prompted_lesion_rows(results.cases, results.interactions, figures.SWEEP_METRICS,
                                                results.sweep)
    analysis.figures["prompted_lesions"] = figures.prompted_lesions_figure(sweep)
    analysis.figure_notes["prompted_lesions"] = source if len(sweep) else f"skipped: {source}"
    if len(sweep):
        ks = ", ".join(str(k) for k in tables.SWEEP_TABLE_K)
        caption = (f"Mean ± population std over cases (folds pooled) with K = {ks} prompted lesions (the K each run "
                   "reached); n = case rows.")
        analysis.figure_tables["prompted_lesions"] = (caption, tables.sweep_table(sweep))

    analysis.figures["interactions"] = figures.interaction_curves(tables.benchmark_rows(results.interactions))
    analysis.figure_notes["interactions"] = (
        "interactions.csv, phase 'interaction', benchmark modes; mean over targets (lesion Dice for lesion-wise "
        "modes, scan Dice for global modes); early-stopped targets keep their last Dice"
        if analysis.figures["interactions"] is not None
        else "skipped: no interaction rows in interactions.csv"
    )

    root = Path(data_root) if data_root is not None else None
    figure, note = _qualitative(results, rows, root, overlay_cases_per_test_set, overlay_mode)
    analysis.figures["qualitative"] = figure
    analysis.figure_notes["qualitative"] = note
    return analysis


def _statistics_markdown(stats: pd.DataFrame) -> str:
    if stats.empty:
        return "No comparisons (fewer than two models per mode and test set)."
    shown = stats.assign(
        comparison=stats["model_a"] + " vs " + stats["model_b"],
        p=stats["p_value"].map(lambda v: "n/a" if np.isnan(v) else f"{v:.3g}"),
        p_bonf=stats["p_bonferroni"].map(lambda v: "n/a" if np.isnan(v) else f"{v:.3g}"),
    )
    columns = {
        "mode": "mode",
        "test_set": "test set",
        "metric": "metric",
        "comparison": "A vs B",
        "n_pairs": "pairs",
        "mean_a": "mean A",
        "mean_b": "mean B",
        "median_diff": "median A−B",
        "p": "p",
        "p_bonf": "p (Bonferroni)",
        "note": "note",
    }
    return tables.markdown_table(shown[list(columns)].rename(columns=columns))


def render_markdown(analysis: Analysis, figure_files: dict[str, str], source: str) -> str:
    """The text of ``report.md``; ``figure_files`` maps figure keys to paths relative to the report."""
    results = analysis.results
    cases = results.cases
    lines = [
        "# Results report",
        "",
        f"Results folder: `{source}` — {len(results.runs)} run(s), {len(cases)} case row(s); "
        f"models: {', '.join(sorted(pd.unique(cases['model']), key=tables.natural_key)) or '–'}; "
        f"test sets: {', '.join(sorted(pd.unique(cases['test_set']), key=tables.natural_key)) or '–'}.",
        "",
        "## Runs",
        "",
        tables.markdown_table(results.runs_table()),
        "",
        "## Benchmark",
        "",
        "Mean ± population std over cases (all folds pooled); n = case rows. Lesion Dice is the mean over detected "
        "lesions; FP/FN volumes in ml. Full numbers (median, n per metric) in `summary.csv`.",
        "",
        tables.markdown_table(analysis.benchmark) if len(analysis.benchmark) else "No benchmark rows.",
        "",
    ]
    for key, (title, _) in FIGURES.items():
        lines += [f"## {title}", "", f"_{analysis.figure_notes.get(key, '')}_", ""]
        if key in figure_files:
            lines += [f"![{title}]({figure_files[key]})", ""]
        if key in analysis.figure_tables:
            caption, table = analysis.figure_tables[key]
            lines += [caption, "", tables.markdown_table(table), ""]
    lines += [
        "## Paired Wilcoxon signed-rank tests",
        "",
        "Two-sided, paired by (case, fold), differences A − B. Family = (mode, test set, metric); Bonferroni over "
        f"the tested comparisons of a family. Reference model: `{analysis.reference}` against each other model when "
        "present, else all pairs. All rows in `statistics.csv`.",
        "",
        _statistics_markdown(analysis.statistics),
        "",
    ]
    if analysis.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in analysis.notes], ""]
    return "\n".join(lines)


def write_report(analysis: Analysis, out_dir: str | os.PathLike[str], source: str | None = None) -> Path:
    """Write ``report.md``, ``summary.csv``, ``statistics.csv`` and ``figures/*.png`` into ``out_dir``.

    Returns the path of ``report.md``. ``source`` is how the results folder is named in the report.
    """
    out = Path(out_dir)
    figure_files: dict[str, str] = {}
    for key, figure in analysis.figures.items():
        if figure is not None:
            name = f"figures/{FIGURES[key][1]}"
            figures.save_png(figure, out / name)
            figure_files[key] = name
    write_text(out / "summary.csv", analysis.summary.to_csv(index=False))
    write_text(out / "statistics.csv", analysis.statistics.to_csv(index=False))
    report = out / "report.md"
    write_text(report, render_markdown(analysis, figure_files, source or str(analysis.results.root)))
    return report


def build_report(
    results_dir: str | os.PathLike[str],
    data_root: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Path:
    """Read ``results_dir``, analyse it (``options`` go to :func:`analyse`) and write the report.

    ``out_dir`` defaults to ``results_dir`` (so ``summary.csv`` lands in ``evaluation/results/``, where ``evaluate``
    writes it too).
    Returns the path of ``report.md``.
    """
    results = load_results(results_dir)
    analysis = analyse(results, data_root=data_root, **options)
    return write_report(analysis, out_dir if out_dir is not None else results.root, source=str(results_dir))
