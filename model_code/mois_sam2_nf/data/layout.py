"""The raw NIfTI layout: scan sets, image/label pairs, the case -> patient map, validation.

Described in docs/synthetic_data.md, Raw data layout.

A raw root holds one folder per scan set and its instance-label folder::

    imagesTr/<case>.nii.gz        labelsTr_instance/<case>.nii.gz
    imagesTs_<k>/<case>.nii.gz    labelsTs_<k>_instance/<case>.nii.gz     (k = 1, 2, ...; plain imagesTs allowed)
    patients.csv                  columns case_id, patient_id (+ optional descriptive columns)

A case is the file name without ``.nii`` / ``.nii.gz``. :func:`check_raw_layout` lists every problem it finds (one
line each) instead of stopping at the first, so a user can fix a folder in one pass; :func:`require_valid_layout`
turns that list into one :class:`~mois_sam2_nf.errors.InputError` for commands that must not write anything when the
input is bad.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from mois_sam2_nf.data.io import case_id, is_nifti, load_label, load_nifti
from mois_sam2_nf.errors import InputError

TRAIN_SET = "imagesTr"
PATIENTS_CSV = "patients.csv"
REQUIRED_PATIENT_COLUMNS: tuple[str, str] = ("case_id", "patient_id")
PATIENT_REGEX_HELP = (
    r"derive patient ids from case names instead of patients.csv: the first group (else the whole match) of a "
    r"regular expression searched in each case id, e.g. '_P_(\d+)_'"
)
_SET_NAME = re.compile(r"^images(Tr|Ts(_\d+)?)$")
_LABEL_NAME = re.compile(r"^labels(Tr|Ts(_\d+)?)_instance$")


def label_dir_name(set_name: str) -> str:
    """Label folder of a scan set: ``imagesTr`` -> ``labelsTr_instance``, ``imagesTs_2`` -> ``labelsTs_2_instance``."""
    match = _SET_NAME.match(set_name)
    if match is None:
        raise ValueError(f"not a scan-set folder name: {set_name!r}")
    return f"labels{match.group(1)}_instance"


def _set_sort_key(set_name: str) -> tuple[int, int]:
    """``imagesTr`` first, then ``imagesTs``, then ``imagesTs_<k>`` by numeric ``k``."""
    match = _SET_NAME.match(set_name)
    if match is None:
        raise ValueError(f"not a scan-set folder name: {set_name!r}")
    suffix = match.group(2)
    if set_name == TRAIN_SET:
        return (0, 0)
    return (1, 0) if suffix is None else (2, int(suffix[1:]))


@dataclass(frozen=True)
class CaseFiles:
    """One scan of a set: its image file and (when present) its label file."""

    set_name: str
    case_id: str
    image: Path
    label: Path | None

    def require_label(self) -> Path:
        """The label file; :class:`InputError` for a case without one (callers that need labels check first)."""
        if self.label is None:
            raise InputError(f"{self.image}: label file missing")
        return self.label


@dataclass(frozen=True)
class ScanSet:
    """A scan set of the raw layout.

    Attributes:
        name: image folder name (``imagesTr``, ``imagesTs_1``, ...).
        images_dir / labels_dir: the two folders (``labels_dir`` may not exist).
        cases: the image files, sorted by case id, paired with their label files.
        orphan_labels: label files without an image.
    """

    name: str
    images_dir: Path
    labels_dir: Path
    cases: tuple[CaseFiles, ...]
    orphan_labels: tuple[Path, ...] = ()

    @property
    def is_test(self) -> bool:
        """True for every set other than ``imagesTr``."""
        return self.name != TRAIN_SET

    @property
    def case_ids(self) -> list[str]:
        """Sorted case ids of the set."""
        return [case.case_id for case in self.cases]


def _nifti_files(folder: Path) -> dict[str, Path]:
    """Case id -> NIfTI file in ``folder`` (empty when the folder does not exist)."""
    if not folder.is_dir():
        return {}
    return {case_id(p): p for p in sorted(folder.iterdir()) if p.is_file() and is_nifti(p)}


def _scan_set(root: Path, name: str) -> ScanSet:
    images_dir, labels_dir = root / name, root / label_dir_name(name)
    images, labels = _nifti_files(images_dir), _nifti_files(labels_dir)
    cases = tuple(CaseFiles(name, cid, images[cid], labels.get(cid)) for cid in sorted(images))
    orphans = tuple(labels[cid] for cid in sorted(labels) if cid not in images)
    return ScanSet(name, images_dir, labels_dir, cases, orphans)


def discover_sets(root: str | os.PathLike[str]) -> list[ScanSet]:
    """All scan sets under ``root`` (``imagesTr`` first, then test sets by number); raises if ``root`` is missing."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: raw data folder not found")
    names = [p.name for p in root.iterdir() if p.is_dir() and _SET_NAME.match(p.name)]
    return [_scan_set(root, name) for name in sorted(names, key=_set_sort_key)]


def select_sets(root: str | os.PathLike[str], names: Iterable[str] | None = None) -> list[ScanSet]:
    """The sets named in ``names`` (all sets when ``None``); raises on an unknown name or when none exist."""
    sets = discover_sets(root)
    if not sets:
        raise InputError(f"{root}: no scan sets found (expected imagesTr/ or imagesTs_<k>/ folders)")
    if names is None:
        return sets
    by_name = {s.name: s for s in sets}
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise InputError(f"{root}: unknown scan set(s) {', '.join(unknown)} (available: {', '.join(by_name)})")
    return [by_name[n] for n in wanted]


def read_patients_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``patients.csv`` as strings; raises on a missing file, missing columns, empty or duplicate rows."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found (pass --patient-regex to derive patients from case names)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as err:  # pandas raises several parser error types
        raise InputError(f"{path}: not a readable CSV file ({str(err).splitlines()[0]})") from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in REQUIRED_PATIENT_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing required column(s) {', '.join(missing)}")
    table["case_id"] = table["case_id"].str.strip()
    table["patient_id"] = table["patient_id"].str.strip()
    empty = table[(table["case_id"] == "") | (table["patient_id"] == "")]
    if len(empty):
        raise InputError(f"{path}: empty case_id or patient_id on line {int(empty.index[0]) + 2}")
    duplicated = table["case_id"][table["case_id"].duplicated()]
    if len(duplicated):
        raise InputError(f"{path}: case {duplicated.iloc[0]} is listed more than once")
    return table


def patients_from_regex(case_ids: Iterable[str], pattern: str) -> dict[str, str]:
    """Case -> patient from a regular expression searched in each case id (first group, else the whole match).

    Example: ``_P_(\\d+)_`` maps ``1_2019_P_1234_T2`` to ``1234``. Raises on a bad pattern or a case it does not match.
    """
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise InputError(f"--patient-regex {pattern!r}: invalid regular expression ({err})") from None
    mapping = {}
    for cid in case_ids:
        match = regex.search(cid)
        if match is None:
            raise InputError(f"case {cid}: does not match --patient-regex {pattern!r}")
        mapping[cid] = match.group(1) if regex.groups else match.group(0)
    return mapping


def load_patient_map(
    root: str | os.PathLike[str], patient_regex: str | None = None, case_ids: Iterable[str] | None = None
) -> dict[str, str]:
    """Case -> patient id: from ``patients.csv`` under ``root``, or from ``patient_regex`` over ``case_ids``.

    With a regex and no ``case_ids`` every case of every set under ``root`` is mapped. Never guesses: without the CSV
    and without a regex it raises.
    """
    root = Path(root)
    if patient_regex is not None:
        if case_ids is None:
            case_ids = [c.case_id for s in discover_sets(root) for c in s.cases]
        return patients_from_regex(case_ids, patient_regex)
    table = read_patients_csv(root / PATIENTS_CSV)
    return dict(zip(table["case_id"], table["patient_id"]))


def _voxel_problems(case: CaseFiles) -> list[str]:
    """Problems found by reading the image and label of one case (corrupt files, grid mismatch, label values)."""
    problems = []
    try:
        image = load_nifti(case.image)
    except InputError as err:
        image = None
        problems.append(str(err))
    if case.label is None:
        return problems
    try:
        load_label(case.label, image=image)
    except InputError as err:
        problems.append(str(err))
    return problems


def _patient_problems(root: Path, sets: list[ScanSet], selected: set[str], patient_regex: str | None) -> list[str]:
    """Cases missing from the patient map, and test-set patients who also occur in ``imagesTr``."""
    all_cases = [c for s in sets for c in s.cases]
    if patient_regex is not None:
        problems, patients = [], {}
        for case in all_cases:
            try:
                patients.update(patients_from_regex([case.case_id], patient_regex))
            except InputError as err:
                if case.set_name in selected:
                    problems.append(f"{case.image}: {err}")
    else:
        try:
            patients, problems = load_patient_map(root), []
        except InputError as err:
            return [str(err)]
        problems = [
            f"{c.image}: case {c.case_id} is missing from {root / PATIENTS_CSV}"
            for c in all_cases
            if c.set_name in selected and c.case_id not in patients
        ]
    train = next((s for s in sets if s.name == TRAIN_SET), None)
    train_patients = {patients[c.case_id] for c in train.cases if c.case_id in patients} if train else set()
    for scan_set in sets:
        if not scan_set.is_test or not ({scan_set.name, TRAIN_SET} & selected):
            continue
        for case in scan_set.cases:
            patient = patients.get(case.case_id)
            if patient in train_patients:
                problems.append(f"{case.image}: patient {patient} of test set {scan_set.name} also occurs in imagesTr")
    return problems


def check_raw_layout(
    root: str | os.PathLike[str],
    *,
    patient_regex: str | None = None,
    sets: Iterable[str] | None = None,
    read_voxels: bool = True,
    skip_voxels: Collection[tuple[str, str]] = (),
    progress: bool = True,
) -> list[str]:
    """List every problem of a raw layout, one line each (empty list = valid).

    Checks: scan sets exist; each image has a label of the same name (and each label an image); images and labels
    are readable 3-D NIfTI files with finite values; labels have the image's shape and affine (within 1e-4 mm) and
    integer values >= 0; each case is in ``patients.csv`` (or matches ``patient_regex``); no test-set patient occurs
    in ``imagesTr``.

    Args:
        root: the raw folder.
        patient_regex: derive patients from case names instead of ``patients.csv``.
        sets: restrict the per-case checks to these set names (default: all sets).
        read_voxels: read the files (corruption, grid and label-value checks); ``False`` checks names and patients.
        skip_voxels: ``(set_name, case_id)`` pairs whose files are not read (e.g. cases already sliced).
        progress: show a tqdm bar while reading files.
    """
    root = Path(root)
    try:
        all_sets = discover_sets(root)
        chosen = select_sets(root, sets)
    except InputError as err:
        return [str(err)]
    selected = {s.name for s in chosen}
    problems: list[str] = []
    for scan_set in chosen:
        if not scan_set.cases:
            problems.append(f"{scan_set.images_dir}: scan set has no NIfTI images")
        problems += [f"{case.image}: label file missing in {scan_set.labels_dir}" for case in scan_set.cases
                     if case.label is None]
        problems += [f"{path}: label has no image in {scan_set.images_dir}" for path in scan_set.orphan_labels]
    stray = sorted(p for p in root.iterdir() if p.is_dir() and (label_match := _LABEL_NAME.match(p.name))
                   and not (root / f"images{label_match.group(1)}").is_dir())
    problems += [f"{path}: label folder has no matching images folder" for path in stray]
    problems += _patient_problems(root, all_sets, selected, patient_regex)
    if read_voxels:
        skip = set(skip_voxels)
        cases = [c for s in chosen for c in s.cases if (c.set_name, c.case_id) not in skip]
        for case in tqdm(cases, desc="checking scans", unit="scan", disable=None if progress else True):
            problems += _voxel_problems(case)
    return problems


def require_valid_layout(root: str | os.PathLike[str], **kwargs: Any) -> None:
    """Raise one :class:`InputError` (the first problem, plus how many more) if :func:`check_raw_layout` finds any."""
    problems = check_raw_layout(root, **kwargs)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s); run `mois-sam2-nf check-data {root}`)" \
            if len(problems) > 1 else ""
        raise InputError(problems[0] + more)
