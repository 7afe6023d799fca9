"""Paired Wilcoxon signed-rank tests between models (docs/evaluation_protocol.md, Aggregation).

A *family* is one ``(mode, test_set, metric)``. Within a family the comparisons are the reference model against each
other model when the reference is present, otherwise every pair of models. Two models are paired by
``(case_id, fold)``; several rows of one model for the same pair key (e.g. two configurations of one model and mode)
are averaged first, and pairs with an empty value on either side are dropped. The test is two-sided
(``scipy.stats.wilcoxon``, zero differences dropped, its default ``"wilcox"`` method). Bonferroni: ``p × m``
(capped at 1), where ``m`` is the number of comparisons of the family that produced a p-value.

A comparison is not tested (``p`` is NaN, ``note`` says why) when it has fewer than ``min_pairs`` pairs or all
differences are zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from mois_sam2_nf.analysis.tables import natural_key, sort_groups

PAIR_KEY: tuple[str, str] = ("case_id", "fold")

#: default reference model (MOIS-SAM2 is tested against each baseline)
DEFAULT_REFERENCE = "mois_sam2"

STAT_COLUMNS: tuple[str, ...] = (
    "mode",
    "test_set",
    "metric",
    "model_a",
    "model_b",
    "n_pairs",
    "mean_a",
    "mean_b",
    "median_diff",
    "statistic",
    "p_value",
    "n_comparisons",
    "p_bonferroni",
    "note",
)


def _per_pair(group: pd.DataFrame, metric: str) -> pd.Series:
    values = pd.to_numeric(group[metric], errors="coerce")
    keyed = group[list(PAIR_KEY)].astype(str).assign(value=values)
    return keyed.groupby(list(PAIR_KEY))["value"].mean().dropna()


def compare_pair(a: pd.Series, b: pd.Series, min_pairs: int) -> dict[str, object]:
    """Wilcoxon test of ``a - b`` on their common index (pair keys); keys of :data:`STAT_COLUMNS` from n_pairs on."""
    joined = pd.concat({"a": a, "b": b}, axis=1, join="inner")
    diff = (joined["a"] - joined["b"]).to_numpy(dtype=np.float64)
    result: dict[str, object] = {
        "n_pairs": int(diff.size),
        "mean_a": float(joined["a"].mean()) if diff.size else np.nan,
        "mean_b": float(joined["b"].mean()) if diff.size else np.nan,
        "median_diff": float(np.median(diff)) if diff.size else np.nan,
        "statistic": np.nan,
        "p_value": np.nan,
        "note": "",
    }
    if diff.size < min_pairs:
        result["note"] = f"n/a: {diff.size} pair(s), need {min_pairs}"
    elif not np.any(diff != 0):
        result["note"] = "n/a: all differences are zero"
    else:
        test = wilcoxon(diff, alternative="two-sided")
        result["statistic"] = float(test.statistic)
        result["p_value"] = float(test.pvalue)
    return result


def comparisons(models: Sequence[str], reference: str | None) -> list[tuple[str, str]]:
    """``(reference, other)`` for each other model when ``reference`` is among ``models``; else all pairs."""
    ordered = sorted(models, key=natural_key)
    if reference in ordered:
        return [(reference, other) for other in ordered if other != reference]
    return list(combinations(ordered, 2))


def paired_wilcoxon(
    cases: pd.DataFrame,
    metrics: Sequence[str] = ("scan_dice",),
    reference: str | None = DEFAULT_REFERENCE,
    min_pairs: int = 3,
) -> pd.DataFrame:
    """All comparisons of every family, one row each, columns :data:`STAT_COLUMNS` (``a - b`` differences).

    Args:
        cases: case_metrics rows (sweep runs should be left out by the caller).
        metrics: case_metrics columns to test (missing ones are skipped).
        reference: model compared against every other one; ``None`` or absent -> all pairs.
        min_pairs: fewest pairs for which a test is run.
    """
    rows: list[dict[str, object]] = []
    for metric in (m for m in metrics if m in cases.columns):
        for (mode, test_set), family in cases.groupby(["mode", "test_set"], sort=False):
            per_model = {model: _per_pair(group, metric) for model, group in family.groupby("model")}
            family_rows = []
            for model_a, model_b in comparisons(list(per_model), reference):
                row = {"mode": mode, "test_set": test_set, "metric": metric, "model_a": model_a, "model_b": model_b}
                row.update(compare_pair(per_model[model_a], per_model[model_b], min_pairs))
                family_rows.append(row)
            tested = sum(1 for r in family_rows if not np.isnan(r["p_value"]))
            for row in family_rows:
                row["n_comparisons"] = tested
                row["p_bonferroni"] = np.nan if np.isnan(row["p_value"]) else min(1.0, row["p_value"] * tested)
            rows.extend(family_rows)
    frame = pd.DataFrame(rows, columns=list(STAT_COLUMNS))
    return sort_groups(frame, extra=("metric", "model_a", "model_b"), metric_order=list(metrics))
