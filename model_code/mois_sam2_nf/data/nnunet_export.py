"""Export of the raw layout to the nnU-Net v2 raw format (docs/synthetic_data.md, nnU-Net export).

Layout written under ``<out>/Dataset<NNN>_<name>/``::

    imagesTr/<case>_0000.nii.gz       the raw image (file copied; ``.nii`` sources re-saved compressed, data unchanged)
    labelsTr/<case>.nii.gz            uint8, 1 where the raw label > 0, on the image's header and affine
    imagesTs_<k>/<case>_0000.nii.gz   optional copies of the test sets, for CLI prediction
    dataset.json                      channel "T2" (non-CT -> z-score), labels background/lesion
    splits_final.json                 project fold k -> entry k - 1 (``{"train": [...], "val": [...]}``)
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mois_sam2_nf.atomic import atomic_path, write_json
from mois_sam2_nf.data.io import load_label, load_nifti, save_nifti
from mois_sam2_nf.data.layout import TRAIN_SET, CaseFiles, require_valid_layout, select_sets
from mois_sam2_nf.data.splits import Fold, default_folds, read_folds
from mois_sam2_nf.errors import InputError

DEFAULT_DATASET_ID = 501
DATASET_NAME = "NF1WBMRI"
FILE_ENDING = ".nii.gz"
CHANNEL_SUFFIX = "_0000"
#: dataset ids nnU-Net reserves for its own examples
RESERVED_IDS = range(1, 11)


def dataset_folder_name(dataset_id: int, name: str = DATASET_NAME) -> str:
    """``Dataset501_NF1WBMRI`` style folder name; rejects reserved (1-10) and out-of-range ids."""
    if dataset_id in RESERVED_IDS:
        raise InputError(f"--dataset-id {dataset_id}: ids 1-10 are reserved by nnU-Net")
    if not 11 <= dataset_id <= 999:
        raise InputError(f"--dataset-id {dataset_id}: must be within 11..999")
    if not re.fullmatch(r"[A-Za-z0-9]+", name):
        raise InputError(f"--name {name!r}: use letters and digits only")
    return f"Dataset{dataset_id:03d}_{name}"


def dataset_json(num_training: int, name: str = DATASET_NAME) -> dict:
    """The ``dataset.json`` content for a single-channel T2 lesion dataset."""
    return {
        "channel_names": {"0": "T2"},
        "labels": {"background": 0, "lesion": 1},
        "numTraining": int(num_training),
        "file_ending": FILE_ENDING,
        "name": name,
    }


def splits_final(folds: list[Fold]) -> list[dict[str, list[str]]]:
    """nnU-Net ``splits_final.json`` entries: project fold ``k`` becomes entry ``k - 1``."""
    return [{"train": list(f.train), "val": list(f.val)} for f in sorted(folds, key=lambda f: f.index)]


def _copy_image(source: Path, target: Path) -> None:
    """Place the raw image at ``target`` (``.nii.gz``) with its voxels and header unchanged."""
    if source.name.endswith(FILE_ENDING):
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    else:
        volume = load_nifti(source)
        save_nifti(target, np.asanyarray(volume.array), volume.affine, like=volume.header)


def _write_binary_label(case: CaseFiles, target: Path) -> None:
    image = load_nifti(case.image)
    label = load_label(case.require_label(), image=image)
    save_nifti(target, (label.array > 0).astype(np.uint8), image.affine, like=image.header)


def _remove_stale(folder: Path, keep: set[str]) -> None:
    """Delete NIfTI files in ``folder`` that this export did not write (cases of an earlier, different export)."""
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.endswith(FILE_ENDING) and path.name not in keep:
                path.unlink()


def _checked_folds(folds: list[Fold], cases: list[str], splits_dir: Path) -> list[Fold]:
    """Ensure each fold covers exactly the training cases."""
    expected = set(cases)
    for fold in folds:
        covered = set(fold.train) | set(fold.val)
        if covered != expected:
            odd = sorted(covered ^ expected)
            raise InputError(
                f"{splits_dir}/fold_{fold.index}: does not match the training cases of imagesTr (e.g. {odd[0]})"
            )
    return folds


def export_nnunet(
    raw_root: str | os.PathLike[str],
    out_root: str | os.PathLike[str],
    *,
    dataset_id: int = DEFAULT_DATASET_ID,
    name: str = DATASET_NAME,
    splits_dir: str | os.PathLike[str] | None = None,
    include_test_sets: bool = True,
    patient_regex: str | None = None,
    progress: bool = True,
) -> Path:
    """Write the nnU-Net raw dataset of a validated raw root; returns the dataset folder.

    ``splits_final.json`` holds the folds read from ``splits_dir`` or, without it, the project's default folds
    (:func:`~mois_sam2_nf.data.splits.default_folds`, 5 folds, seed 42). Nothing is written when the input is invalid.
    """
    folder = Path(out_root) / dataset_folder_name(dataset_id, name)
    clash = [p for p in Path(out_root).glob(f"Dataset{dataset_id:03d}_*") if p.name != folder.name]
    if clash:
        raise InputError(f"{clash[0]}: another dataset already uses id {dataset_id}")
    if not (Path(raw_root) / TRAIN_SET).is_dir():
        raise InputError(f"{raw_root}: no {TRAIN_SET}/ folder")
    sets = select_sets(raw_root)
    if not include_test_sets:
        sets = [s for s in sets if not s.is_test]
    require_valid_layout(raw_root, patient_regex=patient_regex, sets=[s.name for s in sets], progress=progress)
    train = sets[0]
    if splits_dir is not None:
        folds = _checked_folds(read_folds(splits_dir), train.case_ids, Path(splits_dir))
    else:
        folds = default_folds(raw_root, patient_regex)

    jobs = []
    for scan_set in sets:
        images_dir = folder / scan_set.name
        written = {f"{c.case_id}{CHANNEL_SUFFIX}{FILE_ENDING}" for c in scan_set.cases}
        _remove_stale(images_dir, written)
        jobs += [(c, images_dir / f"{c.case_id}{CHANNEL_SUFFIX}{FILE_ENDING}") for c in scan_set.cases]
    _remove_stale(folder / "labelsTr", {f"{c}{FILE_ENDING}" for c in train.case_ids})
    for case, image_target in tqdm(jobs, desc="nnU-Net export", unit="scan", disable=None if progress else True):
        _copy_image(case.image, image_target)
        if case.set_name == TRAIN_SET:
            _write_binary_label(case, folder / "labelsTr" / f"{case.case_id}{FILE_ENDING}")
    write_json(folder / "splits_final.json", splits_final(folds))
    write_json(folder / "dataset.json", dataset_json(len(train.cases), name))
    return folder
