"""NIfTI reading and writing with validation at the boundary.

Arrays are returned exactly as nibabel loads them (voxel indices ``(i, j, k)`` of the stored grid). Every problem is
reported as one :class:`~mois_sam2_nf.errors.InputError` naming the file and the problem.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from mois_sam2_nf.atomic import atomic_path
from mois_sam2_nf.data.view import triple, voxel_spacing
from mois_sam2_nf.errors import InputError

#: largest allowed difference between image and label affines (mm)
AFFINE_TOLERANCE_MM = 1e-4

NIFTI_SUFFIX = re.compile(r"\.nii(\.gz)?$")


def case_id(path: str | os.PathLike[str]) -> str:
    """Case identity: the file name without ``.nii`` / ``.nii.gz``."""
    return NIFTI_SUFFIX.sub("", Path(path).name)


def is_nifti(path: str | os.PathLike[str]) -> bool:
    """True for ``*.nii`` and ``*.nii.gz`` file names (not temporary dot-files)."""
    name = Path(path).name
    return bool(NIFTI_SUFFIX.search(name)) and not name.startswith(".")


@dataclass(frozen=True)
class Volume:
    """One 3-D NIfTI volume.

    Attributes:
        array: shape ``(I, J, K)``, the on-disk dtype, indexed ``(i, j, k)`` as nibabel loads it.
        affine: ``(4, 4)`` float64 voxel -> world (RAS+, mm) transform.
        header: the NIfTI header (qform/sform codes, descrip, ...).
        path: where it was read from (``None`` for in-memory volumes).
    """

    array: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header
    path: Path | None = None

    @property
    def zooms(self) -> tuple[float, float, float]:
        """Voxel size in mm along ``(i, j, k)``, from the affine columns (:func:`~mois_sam2_nf.data.view.voxel_spacing`;
        not the header zooms, which may disagree with the qform / sform the affine comes from)."""
        return voxel_spacing(self.affine)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3 (product of :attr:`zooms`)."""
        return float(np.prod(self.zooms))


def _squeezed_shape(path: Path, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The 3-D grid of a stored shape: trailing singleton dimensions dropped; :class:`InputError` unless 3-D."""
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise InputError(f"{path}: expected a 3-D volume, got shape {tuple(shape)}")
    return triple(shape)


def _load_header(path: Path) -> nib.Nifti1Pair:
    """``nib.load`` (lazy: the voxels stay on disk) narrowed to the NIfTI-1/2 images (single file or pair);
    TypeError for another format nibabel can read (MGH, Analyze, ...)."""
    img = nib.load(str(path))
    if not isinstance(img, nib.Nifti1Pair):  # Nifti1Image, Nifti2Image and the .hdr/.img pairs derive from it
        raise TypeError(f"{type(img).__name__} is not a NIfTI image")
    return img


def _check_scalar_dtype(path: Path, dtype: np.dtype) -> None:
    """Only real scalar voxels (bool, integer, float): RGB / vector (structured) and complex images are refused."""
    if dtype.fields is not None or dtype.kind not in "biuf":
        shown = f"{'/'.join(dtype.names)} record of {dtype.itemsize * 8} bits" if dtype.names else str(dtype)
        raise InputError(f"{path}: voxel type {shown} is not supported (expected one real scalar value per voxel, "
                         f"not RGB, vector or complex data)")


def nifti_shape(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """Grid shape ``(I, J, K)`` of a NIfTI file from its header only (voxels are not read).

    Applies the checks of :func:`load_nifti` that need no voxels (readable header, 3-D grid, scalar voxel type).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        img = _load_header(path)
        dtype = np.dtype(img.get_data_dtype())
    except Exception as err:  # nibabel raises many types for corrupt files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: not a readable NIfTI file ({reason})") from None
    _check_scalar_dtype(path, dtype)
    return _squeezed_shape(path, tuple(int(n) for n in img.shape))


def load_nifti(path: str | os.PathLike[str]) -> Volume:
    """Read a 3-D NIfTI image; reject unreadable, non-3-D, non-scalar (RGB, complex) or non-finite data.

    Trailing singleton dimensions (``(I, J, K, 1)``) are squeezed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        img = _load_header(path)
        _check_scalar_dtype(path, np.dtype(img.get_data_dtype()))
        array = np.asanyarray(img.dataobj)
    except InputError:
        raise
    except Exception as err:  # nibabel raises many types for corrupt files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: not a readable NIfTI file ({reason})") from None
    _check_scalar_dtype(path, array.dtype)
    array = array.reshape(_squeezed_shape(path, tuple(array.shape)))
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{path}: contains NaN or infinite values")
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(f"{path}: invalid (singular or non-finite) affine")
    return Volume(array=array, affine=affine, header=img.header, path=path)


def check_same_grid(label: Volume, image: Volume) -> None:
    """Raise unless ``label`` has the shape of ``image`` and an affine equal within :data:`AFFINE_TOLERANCE_MM`."""
    if label.array.shape != image.array.shape:
        raise InputError(
            f"{label.path}: shape {label.array.shape} does not match image {image.path} shape {image.array.shape}"
        )
    diff = float(np.abs(label.affine - image.affine).max())
    if diff > AFFINE_TOLERANCE_MM:
        raise InputError(f"{label.path}: affine differs from image {image.path} by {diff:.3g} mm")


def load_label(path: str | os.PathLike[str], image: Volume | None = None) -> Volume:
    """Read a label volume: integer voxel values >= 0 (instance ids or a binary mask).

    Float files holding integral values are accepted and cast to ``int32``. With ``image`` the grid must match.
    """
    label = load_nifti(path)
    array = label.array
    if array.dtype.kind == "f":
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{label.path}: label values must be integers")
        array = array.astype(np.int32)
    elif array.dtype.kind == "b":
        array = array.astype(np.uint8)
    elif array.dtype.kind not in "iu":
        raise InputError(f"{label.path}: unsupported label dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise InputError(f"{label.path}: label values must be >= 0 (found {array.min()})")
    label = Volume(array=array, affine=label.affine, header=label.header, path=label.path)
    if image is not None:
        check_same_grid(label, image)
    return label


def save_nifti(
    path: str | os.PathLike[str],
    array: np.ndarray,
    affine: np.ndarray,
    *,
    like: nib.Nifti1Header | None = None,
    descrip: str | None = None,
) -> Path:
    """Atomically write ``array`` (dtype kept) with ``affine``; returns the final path.

    With ``like`` (the header of the image the array lies on) the file keeps that header's qform and sform matrices
    and their codes exactly (also when they differ, or when a code is 0) and its other fields, except the data type,
    shape, intensity scaling and display range (``cal_min`` / ``cal_max``), which describe the new voxels. ``affine``
    must then be the affine nibabel derives from ``like`` (``Volume.affine`` of that image); a different one is a
    programming error (``ValueError``). Without ``like`` both qform and sform are ``affine`` with code 1 (scanner).
    """
    data = np.asarray(array)
    affine = np.asarray(affine, dtype=np.float64)
    if like is not None:
        header = like.copy()
        header["cal_min"], header["cal_max"] = 0.0, 0.0
        img = nib.Nifti1Image(data, None, header=header)
        if not np.allclose(img.header.get_best_affine(), affine, rtol=0.0, atol=AFFINE_TOLERANCE_MM):
            raise ValueError("save_nifti: affine does not match the affine of the 'like' header")
    else:
        img = nib.Nifti1Image(data, affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
    img.set_data_dtype(data.dtype)
    if descrip is not None:
        img.header["descrip"] = descrip.encode()[:79]
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)
