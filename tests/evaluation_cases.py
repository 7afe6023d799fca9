"""Hand-made raw cohorts with box-shaped lesions whose metrics can be computed by hand (evaluation tests).

Every scan has shape ``(24, 12, 36)`` with an LPS-oriented affine (voxel 4 x 10 x 4 mm = 0.16 ml), so the canonical
view permutes and flips the axes. The four lesions of :data:`LESIONS` are boxes at least 4 voxels apart (volumes
392, 216, 27 and 8 voxels); other cases drop some of them.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE: tuple[int, int, int] = (24, 12, 36)
AFFINE = np.array([[-4.0, 0, 0, 40], [0, -10.0, 0, 60], [0, 0, 4.0, -70], [0, 0, 0, 1]])
VOXEL_ML = 0.16

#: lesion boxes (slices along i, j, k), in decreasing size: 7x8x7, 6x6x6, 3x3x3, 2x2x2 voxels
LESIONS: tuple[tuple[slice, slice, slice], ...] = (
    (slice(1, 8), slice(2, 10), slice(1, 8)),
    (slice(12, 18), slice(2, 8), slice(1, 7)),
    (slice(1, 4), slice(2, 5), slice(12, 15)),
    (slice(12, 14), slice(2, 4), slice(12, 14)),
)

#: case id -> indices into LESIONS present in that scan
COHORT: dict[str, tuple[int, ...]] = {
    "1_2020_P_2001_T2": (0, 1, 2, 3),
    "1_2020_P_2002_T2": (0, 2),
    "1_2021_P_2003_T2": (1, 2, 3),
}


def lesion_mask(indices: tuple[int, ...]) -> np.ndarray:
    """Bool ``SHAPE`` mask of the chosen lesions."""
    mask = np.zeros(SHAPE, dtype=bool)
    for index in indices:
        mask[LESIONS[index]] = True
    return mask


def write_case(root: Path, case: str, indices: tuple[int, ...], *, label_affine: np.ndarray | None = None) -> None:
    """Write image + instance label of one case into ``imagesTs_1``/``labelsTs_1_instance`` (plain nibabel)."""
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    label = np.zeros(SHAPE, dtype=np.uint16)
    for n, index in enumerate(indices, start=1):
        label[LESIONS[index]] = n
    image = rng.integers(100, 300, size=SHAPE).astype(np.int16)
    image[label > 0] = 900
    for folder, array, affine in (("imagesTs_1", image, AFFINE), ("labelsTs_1_instance", label, label_affine)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(array, AFFINE if affine is None else affine), str(root / folder / f"{case}.nii.gz"))


def make_cohort(root: Path, cohort: dict[str, tuple[int, ...]] = COHORT) -> Path:
    """Raw layout with test set ``ts1`` holding ``cohort`` plus ``patients.csv``; returns ``root``."""
    for case, indices in cohort.items():
        write_case(root, case, indices)
    lines = ["case_id,patient_id"] + [f"{case},{case.split('_')[3]}" for case in cohort]
    (root / "patients.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
