"""Result tables of an evaluation run (docs/evaluation_protocol.md, Result files): exact CSV columns, atomic
writers, concatenation of the per-case files into run-level files, and the results-root ``summary.csv``.

Layout of a run folder::

    <results_dir>/<run_id>/
      manifest.json
      cases/<case_id>/interactions.csv  lesions.csv  metrics.csv    (metrics.csv written last = case done)
      cases/<case_id>/sweep.csv                                     (prompted-lesion sweeps only)
      interactions.csv  case_metrics.csv  lesion_metrics.csv        (concatenation of the case files)
      sweep_metrics.csv                                             (prompted-lesion sweeps only)
      predictions/<case_id>.nii.gz
    <results_dir>/summary.csv                                       (every run under <results_dir>)

Values are written with Python ``repr`` precision; ``None`` becomes an empty cell.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mois_sam2_nf.atomic import write_text

IDENTIFIER_COLUMNS: tuple[str, ...] = ("run_id", "model", "mode", "test_set", "fold", "case_id", "patient_id")

INTERACTION_COLUMNS: tuple[str, ...] = (
    *IDENTIFIER_COLUMNS,
    "step", "phase", "target_rank", "target_label", "target_volume_ml", "interaction",
    "new_pos", "new_neg", "n_pos_total", "n_neg_total", "click_strategy",
    "dice_target", "dice_scan", "elapsed_s", "peak_mem_mb",
)

CASE_METRIC_COLUMNS: tuple[str, ...] = (
    *IDENTIFIER_COLUMNS,
    "min_volume_ml", "n_gt_lesions", "n_pred_lesions", "n_prompted", "n_interactions", "n_clicks",
    "max_slice_fraction", "prompted_lesion_dice",
    "scan_dice", "scan_dice_before_propagation",
    "tp_any", "fp_any", "fn_any", "precision_any", "recall_any", "f1_any",
    "tp_iou50", "fp_iou50", "fn_iou50", "precision_iou50", "recall_iou50", "f1_iou50",
    "lesion_dice_mean_detected", "lesion_dice_mean_all", "fp_volume_ml", "fn_volume_ml", "gt_volume_ml",
    "pred_volume_ml",
    "nsd_2mm", "noc_80", "noc_85", "runtime_s", "prediction_file",
)

LESION_COLUMNS: tuple[str, ...] = (
    "run_id", "case_id", "gt_lesion_id", "volume_ml", "prompted", "prompt_rank",
    "detected_any", "matched_iou50", "iou_best", "lesion_dice_bbox",
)

#: final metrics of a prompted-lesion sweep after each number of prompted lesions (columns of ``case_metrics.csv``)
SWEEP_METRICS: tuple[str, ...] = (
    "scan_dice", "f1_any", "f1_iou50", "lesion_dice_mean_detected", "fp_volume_ml", "fn_volume_ml",
)

#: one row per case and number of prompted lesions ``n_prompted = k`` (1..m, m = the case's prompted targets)
SWEEP_COLUMNS: tuple[str, ...] = (*IDENTIFIER_COLUMNS, "n_prompted", *SWEEP_METRICS)

SUMMARY_COLUMNS: tuple[str, ...] = ("model", "mode", "test_set", "metric", "mean", "std", "median", "n")


@dataclass(frozen=True)
class RunTable:
    """One table of a run folder: a file per case and the run-level file concatenated from them.

    Attributes:
        name: table name; its run-level file is ``<run_dir>/<name>.csv``.
        case_file: file name of the case's rows under ``<run_dir>/cases/<case_id>/``.
        columns: exact CSV columns of both files.
        optional: written by some runs only (prompted-lesion sweeps); absent in the others.
    """

    name: str
    case_file: str
    columns: tuple[str, ...]
    optional: bool = False

    @property
    def run_file(self) -> str:
        """File name of the run-level table: ``<name>.csv``."""
        return f"{self.name}.csv"


#: the tables of a run folder by name, in the order a case writes them (``case_metrics`` last: it marks the case done)
RUN_TABLES: dict[str, RunTable] = {table.name: table for table in (
    RunTable("interactions", "interactions.csv", INTERACTION_COLUMNS),
    RunTable("lesion_metrics", "lesions.csv", LESION_COLUMNS),
    RunTable("sweep_metrics", "sweep.csv", SWEEP_COLUMNS, optional=True),
    RunTable("case_metrics", "metrics.csv", CASE_METRIC_COLUMNS),
)}

#: the per-case file whose presence marks a finished case
DONE_FILE = RUN_TABLES["case_metrics"].case_file
#: the run's manifest (``<run_dir>/manifest.json``)
MANIFEST_FILE = "manifest.json"
#: folder of the per-case files (``<run_dir>/cases/<case_id>/``)
CASES_DIR = "cases"
#: the results-root summary (``<results_dir>/summary.csv``)
SUMMARY_FILE = "summary.csv"

#: case-metric columns that are not summarised (identifiers and bookkeeping)
_NOT_SUMMARISED: frozenset[str] = frozenset((*IDENTIFIER_COLUMNS, "min_volume_ml", "prediction_file"))


def _cell(value: object) -> str:
    """CSV text of one value: empty for ``None``/NaN, ``repr`` precision for floats, 0/1 for booleans."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def csv_text(rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> str:
    """CSV text with exactly ``columns`` (header first); a row key outside ``columns`` is a programming error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    allowed = set(columns)
    for row in rows:
        unknown = set(row) - allowed
        if unknown:
            raise KeyError(f"columns not in the schema: {sorted(unknown)}")
        writer.writerow([_cell(row.get(name)) for name in columns])
    return buffer.getvalue()


def write_csv(path: str | os.PathLike[str], rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> Path:
    """Atomically write ``rows`` with exactly ``columns``; returns ``path``."""
    write_text(path, csv_text(rows, columns))
    return Path(path)


def case_dir(run_dir: str | os.PathLike[str], case_id: str) -> Path:
    """``<run_dir>/cases/<case_id>``."""
    return Path(run_dir) / CASES_DIR / case_id


def relative_prediction_path(case_id: str) -> Path:
    """Where a case's prediction is saved, relative to its run folder: ``predictions/<case_id>.nii.gz``."""
    return Path("predictions") / f"{case_id}.nii.gz"


def is_case_done(run_dir: str | os.PathLike[str], case_id: str) -> bool:
    """True when the case's ``metrics.csv`` exists (it is written last)."""
    return (case_dir(run_dir, case_id) / DONE_FILE).is_file()


def write_case_tables(
    run_dir: str | os.PathLike[str],
    case_id: str,
    interactions: list[dict[str, object]],
    lesions: list[dict[str, object]],
    metrics: dict[str, object],
    sweep: list[dict[str, object]] | None = None,
) -> None:
    """Write the per-case files atomically, ``metrics.csv`` last so that its presence means done.

    ``sweep`` (prompted-lesion sweeps) adds ``sweep.csv`` with :data:`SWEEP_COLUMNS`.
    """
    folder = case_dir(run_dir, case_id)
    rows = {"interactions": interactions, "lesion_metrics": lesions, "sweep_metrics": sweep, "case_metrics": [metrics]}
    for table in RUN_TABLES.values():
        table_rows = rows[table.name]
        if table_rows is not None:
            write_csv(folder / table.case_file, table_rows, table.columns)


def done_cases(run_dir: str | os.PathLike[str]) -> list[str]:
    """Sorted ids of the finished cases of a run folder."""
    cases = Path(run_dir) / CASES_DIR
    if not cases.is_dir():
        return []
    return sorted(p.name for p in cases.iterdir() if (p / DONE_FILE).is_file())


def concatenate_run(run_dir: str | os.PathLike[str]) -> list[str]:
    """Rewrite the run-level CSVs from the finished cases (sorted by case id); returns those case ids.

    Per-case files are concatenated as text after checking their header, so the values round-trip unchanged. An
    optional table (:attr:`RunTable.optional`) is concatenated from the finished cases that have it, and its
    run-level file is written only when one does.
    """
    run_dir = Path(run_dir)
    cases = done_cases(run_dir)
    for table in RUN_TABLES.values():
        having = cases
        if table.optional:
            having = [case for case in cases if (case_dir(run_dir, case) / table.case_file).is_file()]
            if not having:
                continue
        header = ",".join(table.columns) + "\n"
        parts = [header]
        for case in having:
            text = (case_dir(run_dir, case) / table.case_file).read_text(encoding="utf-8")
            if not text.startswith(header):
                raise ValueError(f"{case_dir(run_dir, case) / table.case_file}: unexpected columns")
            parts.append(text[len(header):])
        write_text(run_dir / table.run_file, "".join(parts))
    return cases


def summarise(case_metrics: pd.DataFrame) -> pd.DataFrame:
    """Long summary (one row per model, mode, test set and metric): mean, population std, median and n.

    Rows of all folds are pooled (docs/evaluation_protocol.md, Aggregation); empty cells are ignored per metric and
    metrics with no value at all are left out.
    """
    metrics = [c for c in CASE_METRIC_COLUMNS if c in case_metrics.columns and c not in _NOT_SUMMARISED]
    rows = []
    for (model, mode, test_set), group in case_metrics.groupby(["model", "mode", "test_set"], sort=True):
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce").dropna().to_numpy(dtype=np.float64)
            if len(values) == 0:
                continue
            rows.append({
                "model": model, "mode": mode, "test_set": test_set, "metric": metric,
                "mean": float(values.mean()), "std": float(values.std(ddof=0)),
                "median": float(np.median(values)), "n": int(len(values)),
            })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def update_summary(results_dir: str | os.PathLike[str]) -> Path:
    """Rewrite ``<results_dir>/summary.csv`` from every ``<run>/case_metrics.csv`` directly under ``results_dir``."""
    results_dir = Path(results_dir)
    tables = [
        pd.read_csv(path, dtype={"model": str, "mode": str, "test_set": str, "case_id": str}, keep_default_na=True)
        for path in sorted(results_dir.glob(f"*/{RUN_TABLES['case_metrics'].run_file}"))
    ]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(CASE_METRIC_COLUMNS))
    summary = summarise(table)
    return write_csv(results_dir / SUMMARY_FILE, summary.to_dict("records"), SUMMARY_COLUMNS)
