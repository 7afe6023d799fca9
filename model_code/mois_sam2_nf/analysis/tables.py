"""Tables of case metrics: the wide benchmark table, prompted-lesion sweep rows and Markdown rendering.

The long summary (``summary.csv``: mean, population std, median, n per model, mode, test set and metric; folds
pooled, docs/evaluation_protocol.md, Aggregation) is :func:`mois_sam2_nf.evaluation.results.summarise`, the same
function the runner uses. Prompted-lesion *sweep* runs (mode name containing ``"sweep"``) get their own figure and table
(:func:`prompted_lesion_rows`, :func:`sweep_table`) and are kept out of the benchmark table, the box plot and the
tests (:func:`benchmark_rows`).
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
    "max_slice_fraction": "Largest lesion mask (slice fraction)",
    "prompted_lesion_dice": "Prompted lesion Dice (own mask)",
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


#: identifiers of one case of one run
CASE_KEYS: tuple[str, ...] = ("run_id", "model", "mode", "test_set", "fold", "case_id")

#: numbers of prompted lesions shown in the sweep table of the report (those the runs reached)
SWEEP_TABLE_K: tuple[int, ...] = (1, 3, 5, 10, 20)


def _extend_to_run_width(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-case rows (:data:`CASE_KEYS`, ``n_prompted`` = 1..m, values) plus copies of each case's last row for
    ``n_prompted`` = m + 1 up to the largest ``n_prompted`` of its run: a case with fewer targets than its run's
    largest ``k`` keeps its last values (all its lesions were prompted)."""
    if rows.empty:
        return rows
    last = rows.sort_values("n_prompted", kind="stable").groupby(list(CASE_KEYS), sort=False).tail(1)
    width = rows.groupby("run_id")["n_prompted"].max()
    missing = (last["run_id"].map(width) - last["n_prompted"]).to_numpy()
    copies = last.loc[last.index.repeat(missing)].copy()
    copies["n_prompted"] += copies.groupby(level=0).cumcount().to_numpy() + 1
    return pd.concat([rows, copies], ignore_index=True)


def sweep_from_metrics(sweep: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Final metrics after ``k`` prompted lesions, from the ``sweep_metrics.csv`` rows of sweep runs.

    The runner computes them like ``case_metrics.csv`` (size-filtered masks) on the scan prediction after target
    ``k`` and, for a propagating model, the propagation that follows it. A case with fewer targets than its run's
    largest ``k`` keeps its last values. Returns long rows ``run_id, model, mode, test_set, fold, case_id,
    n_prompted, metric, value`` (empty values, e.g. a lesion Dice without detected lesions, are left out).
    """
    present = [m for m in metrics if m in sweep.columns]
    if sweep.empty or not present:
        return pd.DataFrame(columns=list(LONG_COLUMNS))
    rows = sweep[[*CASE_KEYS, "n_prompted", *present]].copy()
    rows["n_prompted"] = pd.to_numeric(rows["n_prompted"], errors="coerce")
    rows = rows.dropna(subset=["n_prompted"]).astype({"n_prompted": int})
    long = _extend_to_run_width(rows).melt(
        id_vars=[*CASE_KEYS, "n_prompted"], value_vars=present, var_name="metric", value_name="value"
    )
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long.dropna(subset=["value"])[list(LONG_COLUMNS)].reset_index(drop=True)


def sweep_from_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """Scan Dice after ``k`` prompted lesions, from the interactions of sweep runs (mode containing ``"sweep"``).

    In the step order of a case, ``k`` is the largest ``target_rank`` of the interaction rows so far; the value for
    ``k`` is the ``dice_scan`` of the last row with that ``k`` -- the propagation row after target ``k`` for a
    propagating model, else the last interaction row of target ``k``. A case with fewer targets than its run's
    largest ``k`` keeps its last value (all its lesions were prompted). ``dice_scan`` is computed without the size
    filter; sweep runs that wrote ``sweep_metrics.csv`` are better read with :func:`sweep_from_metrics`.

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
    last = rows.groupby([*CASE_KEYS, "n_prompted"], sort=False)["dice_scan"].last()
    per_k = pd.to_numeric(last, errors="coerce").rename("value").reset_index()
    long = _extend_to_run_width(per_k)
    return long.assign(metric="scan_dice")[list(LONG_COLUMNS)].reset_index(drop=True)


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
    cases: pd.DataFrame, interactions: pd.DataFrame, metrics: Sequence[str], sweep: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, str]:
    """Rows for the metrics-vs-prompted-lesions figure and table, and a sentence saying what was read.

    1. sweep runs (``prompted_lesion_sweep``): :func:`sweep_from_metrics` for the runs with ``sweep_metrics.csv``
       rows in ``sweep``, :func:`sweep_from_interactions` (scan Dice only) for the others;
    2. else :func:`sweep_from_case_metrics` (lesion-wise runs with several ``n_prompted`` values);
    3. else an empty frame.
    """
    from_metrics = sweep_from_metrics(sweep, metrics) if sweep is not None else pd.DataFrame(columns=list(LONG_COLUMNS))
    covered = set(from_metrics["run_id"])
    if covered:
        interactions = interactions.loc[~interactions["run_id"].isin(covered)]
    from_steps = sweep_from_interactions(interactions)
    if len(from_metrics) or len(from_steps):
        parts = []
        if len(from_metrics):
            modes = ", ".join(sorted(from_metrics["mode"].unique()))
            parts.append(f"sweep_metrics.csv of the sweep runs ({modes}): the final metrics (size-filtered) after k "
                         "prompted lesions and the propagation that follows target k, if any")
        if len(from_steps):
            modes = ", ".join(sorted(from_steps["mode"].unique()))
            which = " without sweep_metrics.csv" if covered else ""
            parts.append(f"interactions.csv of the sweep runs ({modes}){which}: scan Dice (no size filter) after k "
                         "prompted lesions (after the propagation that follows target k, if any)")
        rows = pd.concat([frame for frame in (from_metrics, from_steps) if len(frame)], ignore_index=True)
        return rows, "; ".join(parts) + "; cases with fewer lesions keep their last value"
    varying = sweep_from_case_metrics(cases, metrics)
    if len(varying):
        return varying, (
            "no sweep runs; case_metrics.csv of lesion-wise runs grouped by n_prompted (runs with different "
            "num_lesions, or scans with fewer lesions than num_lesions)"
        )
    return varying, "no sweep runs (mode containing 'sweep') and no lesion-wise runs with varying n_prompted"


def sweep_table(
    rows: pd.DataFrame, ks: Sequence[int] = SWEEP_TABLE_K, metrics: dict[str, str] | None = None, digits: int = 3
) -> pd.DataFrame:
    """Wide table of :func:`prompted_lesion_rows` at the numbers of prompted lesions ``ks``.

    One row per ``(mode, test_set, model, K)``; one ``mean ± std`` (population std over cases, folds pooled) column per
    metric present in ``rows`` (``"–"`` where a group has no value), plus ``n`` (case rows at that K).
    """
    metrics = metrics if metrics is not None else HEADLINE_METRICS
    shown = {metric: label for metric, label in metrics.items() if metric in set(rows["metric"])}
    picked = rows.loc[rows["n_prompted"].isin(list(ks))]
    out = []
    for (mode, test_set, model, k), group in picked.groupby(["mode", "test_set", "model", "n_prompted"], sort=False):
        row = {"mode": mode, "test_set": test_set, "model": model, "K": int(k)}
        for metric, label in shown.items():
            values = group.loc[group["metric"] == metric, "value"].to_numpy(dtype=np.float64)
            row[label] = format_mean_std(values.mean(), values.std(), digits) if len(values) else "–"
        row["n"] = int(group[["run_id", "case_id"]].drop_duplicates().shape[0])
        out.append(row)
    return sort_groups(pd.DataFrame(out, columns=["mode", "test_set", "model", "K", *shown.values(), "n"]), ["K"])


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
