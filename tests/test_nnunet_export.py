"""nnU-Net v2 raw export: layout, binary labels, dataset.json, splits_final.json and nnU-Net's own integrity check."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import nibabel as nib
import numpy as np
import pytest
from raw_cohort_helpers import CASES, corrupt_label, label_dir, make_raw_cohort

from mois_sam2_nf.data.nnunet_export import export_nnunet
from mois_sam2_nf.data.splits import create_folds, make_folds
from mois_sam2_nf.errors import InputError


T = TypeVar("T")


class InProcessPool:
    """Stand-in for nnU-Net's spawn pool: runs its checks in this process (same checks, no interpreter start-up)."""

    def __enter__(self) -> InProcessPool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def starmap(self, func: Callable[..., T], iterable: Iterable[tuple]) -> list[T]:
        return [func(*args) for args in iterable]


def verify(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nnU-Net v2's ``verify_dataset_integrity`` (what ``--verify_dataset_integrity`` runs), pool in-process."""
    import types

    from nnunetv2.experiment_planning import verify_dataset_integrity as module

    shim = types.SimpleNamespace(get_context=lambda _method: types.SimpleNamespace(Pool=lambda _n: InProcessPool()))
    monkeypatch.setattr(module, "multiprocessing", shim)
    module.verify_dataset_integrity(str(folder), num_processes=1)  # raises on any problem


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_raw_cohort(tmp_path_factory.mktemp("nnunet") / "raw", seed=5)


def test_export_passes_verify_keeps_data_and_project_folds(cohort: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    splits = tmp_path / "splits"
    folds = create_folds(cohort, splits, n_folds=5, seed=42)
    folder = export_nnunet(cohort, tmp_path / "nnunet_raw", dataset_id=501, splits_dir=splits, progress=False)
    assert folder.name == "Dataset501_NF1WBMRI"
    verify(folder, monkeypatch)

    train = [c for s, c, _ in CASES if s == "imagesTr"]
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta == {"channel_names": {"0": "T2"}, "labels": {"background": 0, "lesion": 1},
                    "numTraining": len(train), "file_ending": ".nii.gz", "name": "NF1WBMRI"}
    assert json.loads((folder / "splits_final.json").read_text()) == [
        {"train": list(f.train), "val": list(f.val)} for f in folds
    ]
    for case in train:
        raw_image = cohort / "imagesTr" / f"{case}.nii.gz"
        assert (folder / "imagesTr" / f"{case}_0000.nii.gz").read_bytes() == raw_image.read_bytes()
        exported = nib.load(str(folder / "labelsTr" / f"{case}.nii.gz"))
        raw_label = np.asanyarray(nib.load(str(cohort / label_dir("imagesTr") / f"{case}.nii.gz")).dataobj)
        data = np.asanyarray(exported.dataobj)
        assert data.dtype == np.uint8 and set(np.unique(data)) <= {0, 1}
        assert np.array_equal(data, (raw_label > 0).astype(np.uint8))
        assert np.allclose(exported.affine, nib.load(str(raw_image)).affine)
    tests = sorted(p.name for p in (folder / "imagesTs_2").iterdir())
    assert tests == sorted(f"{c}_0000.nii.gz" for s, c, _ in CASES if s == "imagesTs_2")
    # the verify step really checks: a label value outside {0, 1} makes it fail
    bad = folder / "labelsTr" / f"{train[0]}.nii.gz"
    img = nib.load(str(bad))
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj) * 2, img.affine, img.header), str(bad))
    with pytest.raises(RuntimeError, match="unexpected labels"):
        verify(folder, monkeypatch)


def test_default_splits_and_reexport_removes_stale_cases(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "nnunet_raw"
    folder = export_nnunet(cohort, out, dataset_id=502, include_test_sets=False, progress=False)
    assert not (folder / "imagesTs_1").exists()
    mapping = {c: p for s, c, p in CASES if s == "imagesTr"}
    assert json.loads((folder / "splits_final.json").read_text()) == [
        {"train": list(f.train), "val": list(f.val)} for f in make_folds(mapping)
    ]
    stale = folder / "imagesTr" / "old_case_0000.nii.gz"
    shutil.copy(folder / "imagesTr" / f"{CASES[0][1]}_0000.nii.gz", stale)
    export_nnunet(cohort, out, dataset_id=502, include_test_sets=False, progress=False)
    assert not stale.exists()


def test_plain_nii_source_is_saved_compressed_with_equal_data(tmp_path: Path) -> None:
    raw = make_raw_cohort(tmp_path / "raw")
    case = CASES[0][1]
    gz = raw / "imagesTr" / f"{case}.nii.gz"
    nib.save(nib.load(str(gz)), str(raw / "imagesTr" / f"{case}.nii"))
    gz.unlink()
    folder = export_nnunet(raw, tmp_path / "out", dataset_id=503, progress=False)
    exported = nib.load(str(folder / "imagesTr" / f"{case}_0000.nii.gz"))
    source = nib.load(str(raw / "imagesTr" / f"{case}.nii"))
    assert np.array_equal(np.asanyarray(exported.dataobj), np.asanyarray(source.dataobj))
    assert exported.get_data_dtype() == source.get_data_dtype() and np.allclose(exported.affine, source.affine)


@pytest.mark.parametrize("dataset_id", [1, 10, 0, 1000])
def test_reserved_and_invalid_ids_rejected(cohort: Path, tmp_path: Path, dataset_id: int) -> None:
    with pytest.raises(InputError, match="--dataset-id"):
        export_nnunet(cohort, tmp_path / "out", dataset_id=dataset_id, progress=False)
    assert not (tmp_path / "out").exists()


def test_id_clash_and_bad_input_write_nothing(cohort: Path, tmp_path: Path) -> None:
    (tmp_path / "out" / "Dataset777_Other").mkdir(parents=True)
    with pytest.raises(InputError, match="already uses id 777"):
        export_nnunet(cohort, tmp_path / "out", dataset_id=777, progress=False)
    raw = Path(shutil.copytree(cohort, tmp_path / "raw"))
    corrupt_label(raw)
    with pytest.raises(InputError, match="not a readable NIfTI"):
        export_nnunet(raw, tmp_path / "out2", dataset_id=600, progress=False)
    assert not (tmp_path / "out2").exists()


def test_splits_that_do_not_match_the_training_cases_rejected(cohort: Path, tmp_path: Path) -> None:
    create_folds(cohort, tmp_path / "splits")
    val = tmp_path / "splits" / "fold_1" / "val_set.txt"
    val.write_text(val.read_text() + "ghost_case\n")
    with pytest.raises(InputError, match="ghost_case"):
        export_nnunet(cohort, tmp_path / "out", dataset_id=504, splits_dir=tmp_path / "splits", progress=False)


def test_tiny_synthetic_cohort_export_passes_verify(tiny_cohort: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = export_nnunet(tiny_cohort, tmp_path / "nnunet_raw", dataset_id=501, progress=False)
    verify(folder, monkeypatch)
    assert sorted(p.name for p in folder.iterdir()) == [
        "dataset.json", "imagesTr", "imagesTs_1", "imagesTs_2", "imagesTs_3", "imagesTs_4", "labelsTr",
        "splits_final.json",
    ]
    splits = json.loads((folder / "splits_final.json").read_text())
    assert len(splits) == 5 and sorted(c for s in splits for c in s["val"]) == sorted(
        p.name.removesuffix(".nii.gz") for p in (tiny_cohort / "imagesTr").iterdir()
    )
