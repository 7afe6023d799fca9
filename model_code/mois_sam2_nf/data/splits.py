"""Patient-level cross-validation folds (docs/synthetic_data.md, Patient-level folds).

Algorithm (deterministic for a given seed): sort the unique patient ids of the ``imagesTr`` cases as strings, permute
them with ``numpy.random.default_rng(seed).permutation``, then walk the permuted patients and give each one (with all
of its scans) to the fold holding the fewest scans so far, the lowest fold number winning ties. Fold ``k`` (1-based)
validates on its patients' cases and trains on every other training case. Files::

    <out>/fold_<k>/train_set.txt     one case id per line, sorted, newline-terminated
    <out>/fold_<k>/val_set.txt
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mois_sam2_nf.atomic import write_text
from mois_sam2_nf.data.layout import TRAIN_SET, load_patient_map, require_valid_layout, select_sets
from mois_sam2_nf.errors import InputError

DEFAULT_FOLDS = 5
DEFAULT_SEED = 42
TRAIN_FILE = "train_set.txt"
VAL_FILE = "val_set.txt"
_FOLD_DIR = re.compile(r"^fold_(\d+)$")


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: ``index`` is 1-based; ``train`` and ``val`` are sorted case ids."""

    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]


def make_folds(
    case_to_patient: Mapping[str, str], n_folds: int = DEFAULT_FOLDS, seed: int = DEFAULT_SEED
) -> list[Fold]:
    """Patient-level folds of the cases in ``case_to_patient`` (the training cases) by the module's algorithm."""
    if n_folds < 2:
        raise InputError(f"cannot make {n_folds} fold(s): need at least 2")
    scans: dict[str, list[str]] = {}
    for case, patient in case_to_patient.items():
        scans.setdefault(str(patient), []).append(case)
    if len(scans) < n_folds:
        raise InputError(f"cannot make {n_folds} folds: only {len(scans)} training patient(s) (one per fold needed)")
    patients = np.asarray(sorted(scans), dtype=object)
    order = np.random.default_rng(seed).permutation(patients)
    counts = [0] * n_folds
    val: list[list[str]] = [[] for _ in range(n_folds)]
    for patient in order:
        fold = int(np.argmin(counts))  # argmin returns the first (lowest-numbered) minimum
        val[fold] += scans[patient]
        counts[fold] += len(scans[patient])
    everything = sorted(case_to_patient)
    folds = []
    for k, val_cases in enumerate(val, start=1):
        held_out = set(val_cases)
        folds.append(Fold(k, tuple(c for c in everything if c not in held_out), tuple(sorted(val_cases))))
    return folds


def _lines(cases: tuple[str, ...]) -> str:
    return "".join(f"{c}\n" for c in cases)


def write_folds(folds: list[Fold], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``fold_<k>/{train_set,val_set}.txt`` for every fold (atomically); returns the fold folders.

    Split files of higher-numbered folds left by an earlier run with more folds are removed.
    """
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        for folder in out_dir.iterdir():
            match = _FOLD_DIR.match(folder.name)
            if folder.is_dir() and match and int(match.group(1)) > len(folds):
                for name in (TRAIN_FILE, VAL_FILE):
                    (folder / name).unlink(missing_ok=True)
                if not any(folder.iterdir()):
                    folder.rmdir()
    written = []
    for fold in folds:
        folder = out_dir / f"fold_{fold.index}"
        write_text(folder / TRAIN_FILE, _lines(fold.train))
        write_text(folder / VAL_FILE, _lines(fold.val))
        written.append(folder)
    return written


def default_folds(raw_root: str | os.PathLike[str], patient_regex: str | None = None) -> list[Fold]:
    """The project's default patient-level folds of a raw root's training set (5 folds, seed 42), not written."""
    cases = select_sets(raw_root, [TRAIN_SET])[0].case_ids
    patients = load_patient_map(raw_root, patient_regex, cases)
    return make_folds({c: patients[c] for c in cases})


def create_folds(
    raw_root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    n_folds: int = DEFAULT_FOLDS,
    seed: int = DEFAULT_SEED,
    patient_regex: str | None = None,
) -> list[Fold]:
    """Validate the case -> patient map of a raw root (no voxel reads), compute the folds and write them."""
    if not (Path(raw_root) / TRAIN_SET).is_dir():
        raise InputError(f"{raw_root}: no {TRAIN_SET}/ folder")
    require_valid_layout(raw_root, patient_regex=patient_regex, sets=[TRAIN_SET], read_voxels=False)
    cases = select_sets(raw_root, [TRAIN_SET])[0].case_ids
    patients = load_patient_map(raw_root, patient_regex, cases)
    folds = make_folds({c: patients[c] for c in cases}, n_folds, seed)
    write_folds(folds, out_dir)
    return folds


def read_case_list(path: str | os.PathLike[str]) -> list[str]:
    """Case ids of a split file, one per line; blank lines and a missing final newline are accepted."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: split file not found")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_fold(splits_dir: str | os.PathLike[str], index: int) -> Fold:
    """Read ``fold_<index>`` of a splits folder."""
    folder = Path(splits_dir) / f"fold_{index}"
    train, val = read_case_list(folder / TRAIN_FILE), read_case_list(folder / VAL_FILE)
    overlap = sorted(set(train) & set(val))
    if overlap:
        raise InputError(f"{folder}: case {overlap[0]} is in both {TRAIN_FILE} and {VAL_FILE}")
    return Fold(index, tuple(train), tuple(val))


def read_folds(splits_dir: str | os.PathLike[str]) -> list[Fold]:
    """All folds ``fold_1 .. fold_n`` of a splits folder (numbers must be contiguous from 1)."""
    splits_dir = Path(splits_dir)
    if not splits_dir.is_dir():
        raise InputError(f"{splits_dir}: splits folder not found")
    numbers = sorted(int(m.group(1)) for p in splits_dir.iterdir() if p.is_dir() and (m := _FOLD_DIR.match(p.name)))
    if not numbers:
        raise InputError(f"{splits_dir}: no fold_<k> folders")
    if numbers != list(range(1, len(numbers) + 1)):
        raise InputError(f"{splits_dir}: fold folders must be numbered 1..n without gaps, found {numbers}")
    return [read_fold(splits_dir, k) for k in numbers]
