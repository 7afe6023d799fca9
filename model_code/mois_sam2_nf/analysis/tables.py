"""Tables of case metrics: the wide benchmark table, prompted-lesion sweep rows and Markdown rendering.

The long summary (``summary.csv``: mean, population std, median, n per model, mode, test set and metric; folds
pooled, evaluation spec section 8) is :func:`mois_sam2_nf.evaluation.results.summarise`, the same function the
runner uses. Prompted-lesion *sweep* runs (mode name containing ``"sweep"``) get their own figure and are kept out
of the benchmark table, the box plot and the tests (:func:`benchmark_rows`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

GROUP: tuple[str, str, str] = ("model", "mode", "test_set")

#: long rows of the prompted-lesions figure
LONG_COLUMNS: tuple[str, ...] = (
    "run_id", "model", "mode", "test_set", "fold", "case_id", "n_prompted", "metric", "value",
)

#: headline metrics of the benchmark table: case_metrics column -> display name
HEADLINE_METRICS: dict[str, str] = {
    "scan_dice": "Scan Dice",
    "f1_any": "F1 (any overlap)",
    "f1_iou50": "F1 (IoU ≥ 0.5)",
    "lesion_dice_mean_detected": "Lesion Dice (detected)",
    "fp_volume_ml": "FP volume (ml)",
    "fn_volume_ml": "FN volume (ml)",
}

SWEEP_MARKER = "sweep"


def natural_key(value: object) -> tuple:
    """Sort key that orders ``ts2`` before ``ts10`` (digit runs compared as numbers)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(value)))


def is_sweep_mode(mode: object) -> bool:
    """True for prompted-lesion sweep modes (name contains ``"sweep"``)."""
    return SWEEP_MARKER in str(mode)


def benchmark_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``frame`` (any table with a ``mode`` column) whose mode is not a sweep mode."""
    keep = ~frame["mode"].map(is_sweep_mode).astype(bool)
    return frame.loc[keep]


def sort_groups(frame: pd.DataFrame, extra: Sequence[str] = (), metric_order: Sequence[str] = ()) -> pd.DataFrame:
    """Rows ordered by mode, test set (natural order), model, then ``extra`` columns (metrics in ``metric_order``)."""
    if frame.empty:
        return frame.reset_index(drop=True)
    rank = {m: i for i, m in enumerate(metric_order)}

    def key(column: pd.Series) -> pd.Series:
        if column.name == "metric" and rank:
            return column.map(lambda m: rank.get(m, len(rank)))
        return column.map(natural_key)

    order = [c for c in ("mode", "test_set", "model", *extra) if c in frame.columns]
    return frame.sort_values(order, key=key, kind="stable").reset_index(drop=True)


def format_mean_std(mean: float, std: float, digits: int) -> str:
    """``"0.612 ± 0.104"``."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def benchmark_table(summary: pd.DataFrame, metrics: dict[str, str] | None = None, digits: int = 3) -> pd.DataFrame:
    """Wide table: one row per ``(mode, test_set, model)``; one ``mean ± std`` string column per metric, plus ``n``.

    ``n`` is the number of case rows with a scan Dice (cases × folds). Metrics missing for a group show ``"–"``.
    """
    metrics = metrics if metrics is not None else HEADLINE_METRICS
    rows = []
    for (model, mode, test_set), group in summary.groupby(list(GROUP), sort=False):
        by_metric = group.set_index("metric")
        row = {"mode": mode, "test_set": test_set, "model": model}
        for metric, label in metrics.items():
            row[label] = (
                format_mean_std(by_metric.at[metric, "mean"], by_metric.at[metric, "std"], digits)
                if metric in by_metric.index
                else "–"
            )
        row["n"] = int(by_metric.at["scan_dice", "n"]) if "scan_dice" in by_metric.index else 0
        rows.append(row)
    columns = ["mode", "test_set", "model", *metrics.values(), "n"]
    return sort_groups(pd.DataFrame(rows, columns=columns))


def sweep_from_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """Scan Dice after ``k`` prompted lesions, from the interactions of sweep runs (mode containing ``"sweep"``).

    In the step order of a case, ``k`` is the largest ``target_rank`` of the interaction rows so far; the value for
    ``k`` is the ``dice_scan`` of the last row with that ``k`` -- the propagation row after target ``k`` for a
    propagating model, else the last interaction row of target ``k``. A case with fewer targets than its run's
    largest ``k`` keeps its last value (all its lesions were prompted).

    Returns long rows ``run_id, model, mode, test_set, fold, case_id, n_prompted, metric, value``.
    """
    rows = interactions.loc[interactions["mode"].map(is_sweep_mode).astype(bool)].copy()
    if rows.empty:
        return pd.DataFrame(columns=list(LONG_COLUMNS))
    rows["step"] = pd.to_numeric(rows["step"], errors="coerce")
    rows = rows.sort_values(["run_id", "case_id", "step"], kind="stable")
    rank = pd.to_numeric(rows["target_rank"], errors="coerce").where(rows["phase"] == "interaction")
    rows["n_prompted"] = rank.groupby([rows["run_id"], rows["case_id"]]).ffill()
    rows = rows.dropna(subset=["n_prompted"])
    rows["n_prompted"] = rows["n_prompted"].astype(int)
    keys = ["run_id", "model", "mode", "test_set", "fold", "case_id"]
    last = rows.groupby([*keys, "n_prompted"], sort=False)["dice_scan"].last()
    curves = pd.to_numeric(last, errors="coerce").unstack("n_prompted")
    filled = []
    for _, per_run in curves.groupby(level="run_id"):
        width = int(per_run.columns[per_run.notna().any(axis=0)].max())
        filled.append(per_run.reindex(columns=range(1, width + 1)).ffill(axis=1))
    long = pd.concat(filled).stack().rename("value").reset_index()
    return long.assign(metric="scan_dice")[list(LONG_COLUMNS)]


def sweep_from_case_metrics(cases: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Case metrics of lesion-wise runs against their ``n_prompted`` (runs that differ in ``num_lesions``).

    Only (model, mode) groups where ``n_prompted`` takes at least two values are kept. Long rows as
    :func:`sweep_from_interactions`.
    """
    if "n_prompted" not in cases.columns:
        return pd.DataFrame(columns=list(LONG_COLUMNS))
    rows = cases.loc[cases["mode"].astype(str).str.startswith("lesion_wise").astype(bool)]
    varying = rows.groupby(["model", "mode"])["n_prompted"].transform("nunique") >= 2
    rows = rows.loc[varying.astype(bool)]
    present = [m for m in metrics if m in rows.columns]
    if rows.empty or not present:
        return pd.DataFrame(columns=list(LONG_COLUMNS))
    keys = ["run_id", "model", "mode", "test_set", "fold", "case_id", "n_prompted"]
    long = rows[keys + present].melt(id_vars=keys, var_name="metric", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long.dropna(subset=["value"])[list(LONG_COLUMNS)]


def prompted_lesion_rows(
    cases: pd.DataFrame, interactions: pd.DataFrame, metrics: Sequence[str]
) -> tuple[pd.DataFrame, str]:
    """Rows for the metrics-vs-prompted-lesions figure and a sentence saying what was read.

    1. :func:`sweep_from_interactions` when there are sweep runs (``prompted_lesion_sweep``);
    2. else :func:`sweep_from_case_metrics` (lesion-wise runs with several ``n_prompted`` values);
    3. else an empty frame.
    """
    sweep = sweep_from_interactions(interactions)
    if len(sweep):
        modes = ", ".join(sorted(sweep["mode"].unique()))
        return sweep, (
            f"interactions.csv of the sweep runs ({modes}): scan Dice after k prompted lesions (after the "
            "propagation that follows target k, if any); cases with fewer lesions keep their last value"
        )
    varying = sweep_from_case_metrics(cases, metrics)
    if len(varying):
        return varying, (
            "no sweep runs; case_metrics.csv of lesion-wise runs grouped by n_prompted (runs with different "
            "num_lesions, or scans with fewer lesions than num_lesions)"
        )
    return varying, "no sweep runs (mode containing 'sweep') and no lesion-wise runs with varying n_prompted"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if np.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame) -> str:
    """GitHub-flavoured Markdown table of ``frame`` (index dropped; floats to 4 significant digits, NaN as n/a)."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
