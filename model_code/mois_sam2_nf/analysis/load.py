"""Read one or many evaluation run folders (docs/evaluation_protocol.md, Result files) into pandas tables.

A *run folder* is a directory that holds ``manifest.json`` or ``case_metrics.csv`` (or, for a run killed before it
concatenated its files, ``cases/<case_id>/metrics.csv``). A *results folder* is either one run folder or any directory
tree containing run folders (searched recursively; run folders are not searched further).

Run-level CSVs are preferred. When one is missing, the per-case files under ``cases/`` are concatenated instead
(``interactions.csv``, ``lesions.csv``, ``metrics.csv``, ``sweep.csv``), so an interrupted run can still be analysed.
``sweep_metrics.csv`` (the final metrics after each number of prompted lesions) exists for prompted-lesion sweep
runs only; its absence is not remarked on.

Test sets are normalised to labels ``"ts<k>"`` (from ``1``, ``"1"``, ``"ts1"`` or ``"imagesTs_1"``); the images of
test set ``ts<k>`` are looked up in ``<data root>/imagesTs_<k>/`` (``val_<k>``: ``imagesTr/``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from mois_sam2_nf.data.eval_sets import normalise_eval_set
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.manifest import RUN_ID_PATTERN
from mois_sam2_nf.evaluation.results import (
    CASES_DIR,
    DONE_FILE,
    MANIFEST_FILE,
    RUN_TABLES,
    relative_prediction_path,
)

IDENTIFIERS: tuple[str, ...] = ("run_id", "model", "mode", "test_set", "fold", "case_id")

#: columns this package needs in each table (the runner writes more; extra columns are kept)
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "case_metrics": (*IDENTIFIERS, "scan_dice"),
    "interactions": (*IDENTIFIERS, "step", "phase", "target_rank", "interaction", "dice_target", "dice_scan"),
    "lesion_metrics": ("run_id", "case_id"),
    "sweep_metrics": (*IDENTIFIERS, "n_prompted"),
}

#: identifier columns read as strings (case ids such as ``001`` must not become integers)
STRING_COLUMNS: dict[str, type] = {
    name: str for name in ("run_id", "model", "mode", "test_set", "case_id", "patient_id", "new_pos", "new_neg")
}

@dataclass(frozen=True)
class RunInfo:
    """One run folder.

    Attributes:
        run_id: folder name (``{model}__{mode}__ts{k}__fold{f}__{hash8}``).
        path: the run folder.
        manifest: parsed ``manifest.json`` (empty dict when absent).
        model, mode, test_set, fold: identifiers (test set normalised to ``"ts<k>"``).
        n_cases: number of case rows read.
    """

    run_id: str
    path: Path
    manifest: dict
    model: str
    mode: str
    test_set: str
    fold: str
    n_cases: int

    @property
    def data_root(self) -> Path | None:
        """``manifest["data"]["root"]`` (relative paths are taken relative to the working directory), if recorded."""
        root = (self.manifest.get("data") or {}).get("root")
        return Path(root) if root else None


@dataclass
class Results:
    """Everything read from a results folder.

    Attributes:
        root: the results folder that was read.
        runs: one :class:`RunInfo` per run folder, sorted by run id.
        cases: ``case_metrics.csv`` rows of all runs (columns of ``evaluation.results.CASE_METRIC_COLUMNS``),
            ``test_set`` normalised.
        interactions: ``interactions.csv`` rows of all runs.
        lesions: ``lesion_metrics.csv`` rows of all runs, with ``model, mode, test_set, fold`` joined from the run.
        sweep: ``sweep_metrics.csv`` rows of the prompted-lesion sweep runs that wrote them, ``test_set``
            normalised (one row per case and ``n_prompted``).
        notes: human-readable remarks about what could not be read (empty runs, fallbacks).
    """

    root: Path
    runs: list[RunInfo]
    cases: pd.DataFrame
    interactions: pd.DataFrame
    lesions: pd.DataFrame
    sweep: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def run(self, run_id: str) -> RunInfo:
        """The :class:`RunInfo` of ``run_id`` (``KeyError`` if unknown)."""
        for info in self.runs:
            if info.run_id == run_id:
                return info
        raise KeyError(run_id)

    def runs_table(self) -> pd.DataFrame:
        """One row per run: ``run_id, model, mode, test_set, fold, n_cases``."""
        columns = ["run_id", "model", "mode", "test_set", "fold", "n_cases"]
        return pd.DataFrame([[getattr(r, c) for c in columns] for r in self.runs], columns=columns)

    def prediction_path(self, run_id: str, case_id: str) -> Path:
        """Where the saved prediction of ``case_id`` in ``run_id`` lies.

        Uses the case's ``prediction_file`` column when set (relative paths are relative to the run folder first,
        then to the working directory), else :func:`~mois_sam2_nf.evaluation.results.relative_prediction_path`
        under the run folder.
        """
        info = self.run(run_id)
        if "prediction_file" in self.cases.columns:
            rows = self.cases[(self.cases["run_id"] == run_id) & (self.cases["case_id"] == case_id)]
            recorded = rows["prediction_file"].dropna()
            if len(recorded) and str(recorded.iloc[0]).strip():
                path = Path(str(recorded.iloc[0]).strip())
                if path.is_absolute() or not (info.path / path).exists():
                    return path
                return info.path / path
        return info.path / relative_prediction_path(case_id)


def resolve_results_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` if it exists; a relative path is also tried against each parent of the working directory.

    This lets a notebook in ``results/`` use the repo-relative default ``evaluation/results/demo``.
    """
    given = Path(path)
    if given.exists():
        return given
    if not given.is_absolute():
        for parent in Path.cwd().resolve().parents:
            if (parent / given).exists():
                return parent / given
    raise InputError(f"{path}: results folder not found")


def _is_run_dir(path: Path) -> bool:
    if (path / MANIFEST_FILE).is_file() or (path / RUN_TABLES["case_metrics"].run_file).is_file():
        return True
    cases = path / CASES_DIR
    return cases.is_dir() and any(cases.glob(f"*/{DONE_FILE}"))


def find_run_dirs(root: Path) -> list[Path]:
    """All run folders at or below ``root`` (sorted by path); hidden folders are skipped."""
    if _is_run_dir(root):
        return [root]
    found: list[Path] = []
    for current, dirs, _ in os.walk(root):
        dirs.sort()
        here = Path(current)
        keep = []
        for name in dirs:
            child = here / name
            if name.startswith("."):
                continue
            if _is_run_dir(child):
                found.append(child)
            else:
                keep.append(name)
        dirs[:] = keep
    return sorted(found)


def _read_csv(path: Path, table: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=STRING_COLUMNS)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file (expected the {table} header)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def _read_table(run_dir: Path, table: str) -> tuple[pd.DataFrame, str | None]:
    """The run-level CSV, or the concatenated per-case files; returns ``(frame, note)``."""
    layout = RUN_TABLES[table]
    run_file = run_dir / layout.run_file
    if run_file.is_file():
        return _read_csv(run_file, table), None
    case_files = sorted((run_dir / CASES_DIR).glob(f"*/{layout.case_file}"))
    if not case_files:
        note = None if layout.optional else f"{run_dir.name}: no {layout.run_file}"
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS[table])), note
    frames = [_read_csv(path, table) for path in case_files]
    note = f"{run_dir.name}: {layout.run_file} missing; read {len(frames)} per-case file(s) from {CASES_DIR}/"
    return pd.concat(frames, ignore_index=True), note


def _read_manifest(run_dir: Path) -> dict:
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: expected a JSON object")
    return manifest


def _identifiers(run_dir: Path, manifest: dict, cases: pd.DataFrame) -> dict[str, str]:
    """model/mode/test_set/fold of a run: from its case rows, else from the run id pattern."""
    run_id = str(manifest.get("run_id") or run_dir.name)
    if len(cases):
        first = cases.iloc[0]
        return {"run_id": run_id, **{key: str(first[key]) for key in ("model", "mode", "test_set", "fold")}}
    match = RUN_ID_PATTERN.match(run_id)
    if match is None:
        raise InputError(f"{run_dir}: no case rows and the folder name is not a run id ({RUN_ID_PATTERN.pattern})")
    return {"run_id": run_id, **{key: match.group(key) for key in ("model", "mode", "test_set", "fold")}}


def load_run(run_dir: Path) -> tuple[RunInfo, dict[str, pd.DataFrame], list[str]]:
    """Read one run folder; returns its :class:`RunInfo`, ``{table name: frame}`` and notes."""
    manifest = _read_manifest(run_dir)
    tables: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    for table in REQUIRED_COLUMNS:
        frame, note = _read_table(run_dir, table)
        tables[table] = frame
        if note:
            notes.append(note)
    ids = _identifiers(run_dir, manifest, tables["case_metrics"])
    info = RunInfo(
        run_id=ids["run_id"],
        path=run_dir,
        manifest=manifest,
        model=ids["model"],
        mode=ids["mode"],
        test_set=normalise_eval_set(ids["test_set"]),
        fold=ids["fold"],
        n_cases=len(tables["case_metrics"]),
    )
    return info, tables, notes


def _concat(frames: list[pd.DataFrame], table: str) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS[table]))
    return pd.concat(frames, ignore_index=True)


def load_results(path: str | os.PathLike[str]) -> Results:
    """Read every run folder at or below ``path`` into one :class:`Results`.

    Raises :class:`InputError` when ``path`` does not exist, holds no run folder, or a CSV lacks required columns.
    """
    root = resolve_results_dir(path)
    run_dirs = find_run_dirs(root)
    if not run_dirs:
        raise InputError(f"{root}: no evaluation runs found (expected <run_id>/manifest.json or case_metrics.csv)")
    runs: list[RunInfo] = []
    collected: dict[str, list[pd.DataFrame]] = {table: [] for table in REQUIRED_COLUMNS}
    notes: list[str] = []
    for run_dir in tqdm(run_dirs, desc="reading runs", unit="run"):
        info, tables, run_notes = load_run(run_dir)
        runs.append(info)
        notes.extend(run_notes)
        for table, frame in tables.items():
            collected[table].append(frame.assign(run_id=info.run_id) if len(frame) else frame)
    runs.sort(key=lambda r: r.run_id)
    cases = _concat(collected["case_metrics"], "case_metrics")
    interactions = _concat(collected["interactions"], "interactions")
    sweep = _concat(collected["sweep_metrics"], "sweep_metrics")
    for frame in (cases, interactions, sweep):
        frame["test_set"] = frame["test_set"].map(normalise_eval_set)
        frame["fold"] = frame["fold"].astype(str)
    lesions = _concat(collected["lesion_metrics"], "lesion_metrics")
    run_ids = pd.DataFrame(
        [(r.run_id, r.model, r.mode, r.test_set, r.fold) for r in runs],
        columns=["run_id", "model", "mode", "test_set", "fold"],
    )
    lesions = lesions.drop(columns=[c for c in ("model", "mode", "test_set", "fold") if c in lesions.columns])
    lesions = lesions.merge(run_ids, on="run_id", how="left")
    return Results(root=root, runs=runs, cases=cases, interactions=interactions, lesions=lesions, sweep=sweep,
                   notes=notes)
