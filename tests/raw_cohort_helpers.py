"""Small hand-made raw cohorts (a few NIfTI cases + patients.csv) for the data-layer tests.

The scans are tiny (at most 20 x 12 x 5 voxels) and come in two on-disk orientations, ``("L", "P", "S")`` for the
training set and test set 1, ``("R", "A", "S")`` for test set 2, so the canonical view is exercised.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

#: (set, case, patient) of the default cohort: 7 training scans of 5 patients, 2 + 2 test scans
CASES: list[tuple[str, str, str]] = [
    ("imagesTr", "1_2019_P_101_T2", "101"),
    ("imagesTr", "2_2021_P_101_T2", "101"),
    ("imagesTr", "1_2018_P_102_T2", "102"),
    ("imagesTr", "1_2020_P_103_T2", "103"),
    ("imagesTr", "2_2022_P_103_T2", "103"),
    ("imagesTr", "1_2017_P_104_T2", "104"),
    ("imagesTr", "1_2016_P_105_T2", "105"),
    ("imagesTs_1", "1_2019_P_201_T2", "201"),
    ("imagesTs_1", "1_2020_P_202_T2", "202"),
    ("imagesTs_2", "1_2019_P_301_T2_STIR", "301"),
    ("imagesTs_2", "1_2021_P_302_T2_STIR", "302"),
]

LPS_AFFINE = np.array([[-3.0, 0, 0, 20], [0, -8.0, 0, 30], [0, 0, 2.5, -40], [0, 0, 0, 1]])
RAS_AFFINE = np.array([[2.0, 0, 0, -10], [0, 6.0, 0, -15], [0, 0, 2.0, -30], [0, 0, 0, 1]])


def label_dir(set_name: str) -> str:
    """Raw label folder of a set (independent of the code under test)."""
    return "labelsTr_instance" if set_name == "imagesTr" else f"labelsTs_{set_name.split('_')[1]}_instance"


def random_scan(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(image int16, label uint16)``: noisy body, zero air border, 2-3 cubic lesions (edge 1-3 voxels; may touch)."""
    image = rng.integers(50, 400, size=shape).astype(np.int16)
    image[:1] = 0
    label = np.zeros(shape, dtype=np.uint16)
    for n, size in enumerate(rng.permutation([1, 2, 3])[: rng.integers(2, 4)], start=1):
        corner = [int(rng.integers(1, s - size + 1)) for s in shape]
        region = tuple(slice(c, c + size) for c in corner)
        label[region] = n
        image[region] = 900
    return image, label


def save(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    """Write a NIfTI file (plain nibabel, so the code under test reads files it did not write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def make_raw_cohort(root: Path, seed: int = 0, cases: list[tuple[str, str, str]] = CASES) -> Path:
    """Write the raw layout of ``cases`` plus ``patients.csv`` under ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    for set_name, case, _ in cases:
        shape, affine = ((12, 5, 20), LPS_AFFINE) if set_name != "imagesTs_2" else ((10, 4, 16), RAS_AFFINE)
        image, label = random_scan(rng, shape)
        save(root / set_name / f"{case}.nii.gz", image, affine)
        save(root / label_dir(set_name) / f"{case}.nii.gz", label, affine)
    table = pd.DataFrame([{"case_id": c, "patient_id": p, "set": s} for s, c, p in cases])
    table.to_csv(root / "patients.csv", index=False)
    return root



BAD_CASE = "1_2018_P_102_T2"


def _image(root: Path) -> Path:
    return root / "imagesTr" / f"{BAD_CASE}.nii.gz"


def _label(root: Path) -> Path:
    return root / "labelsTr_instance" / f"{BAD_CASE}.nii.gz"


def _rewrite_label(root: Path, array: np.ndarray | None = None, affine: np.ndarray | None = None) -> Path:
    img = nib.load(str(_label(root)))
    data = np.asanyarray(img.dataobj) if array is None else array
    return save(_label(root), data, img.affine if affine is None else affine)


def corrupt_image(root: Path) -> Path:
    _image(root).write_bytes(b"this is not a NIfTI file")
    return _image(root)


def _rewrite_image(root: Path, dtype: np.dtype) -> Path:
    img = nib.load(str(_image(root)))
    nib.save(nib.Nifti1Image(np.zeros(img.shape, dtype=dtype), img.affine), str(_image(root)))
    return _image(root)


def rgb_image(root: Path) -> Path:
    return _rewrite_image(root, np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")]))


def complex_image(root: Path) -> Path:
    return _rewrite_image(root, np.dtype(np.complex64))


def corrupt_label(root: Path) -> Path:
    _label(root).write_bytes(b"\x1f\x8b truncated gzip")
    return _label(root)


def shape_mismatch(root: Path) -> Path:
    return _rewrite_label(root, np.zeros((12, 5, 19), np.uint16))


def affine_mismatch(root: Path) -> Path:
    affine = LPS_AFFINE.copy()
    affine[0, 3] += 0.5
    return _rewrite_label(root, affine=affine)


def missing_label(root: Path) -> Path:
    _label(root).unlink()
    return _image(root)


def negative_label(root: Path) -> Path:
    label = np.asanyarray(nib.load(str(_label(root))).dataobj).astype(np.int16)
    label[0, 0, 0] = -1
    return _rewrite_label(root, label)


def float_label(root: Path) -> Path:
    return _rewrite_label(root, np.full((12, 5, 20), 0.5, np.float32))


def missing_patient(root: Path) -> Path:
    table = pd.read_csv(root / "patients.csv", dtype=str)
    table[table["case_id"] != BAD_CASE].to_csv(root / "patients.csv", index=False)
    return _image(root)


def leaked_test_patient(root: Path) -> Path:
    table = pd.read_csv(root / "patients.csv", dtype=str)
    table.loc[table["case_id"] == "1_2019_P_201_T2", "patient_id"] = "101"
    table.to_csv(root / "patients.csv", index=False)
    return root / "imagesTs_1" / "1_2019_P_201_T2.nii.gz"


#: bad-input name -> (mutation of a cohort copy returning the file the problem names, words the message must contain)
BAD_INPUTS = {
    "corrupt_image": (corrupt_image, "not a readable NIfTI"),
    "corrupt_label": (corrupt_label, "not a readable NIfTI"),
    "rgb_image": (rgb_image, "voxel type R/G/B record of 24 bits is not supported"),
    "complex_image": (complex_image, "voxel type complex64 is not supported"),
    "shape_mismatch": (shape_mismatch, "shape"),
    "affine_mismatch": (affine_mismatch, "affine differs"),
    "missing_label": (missing_label, "label file missing"),
    "negative_label": (negative_label, ">= 0"),
    "float_label": (float_label, "integers"),
    "missing_patient": (missing_patient, "missing from"),
    "test_patient_in_training": (leaked_test_patient, "also occurs in imagesTr"),
}
