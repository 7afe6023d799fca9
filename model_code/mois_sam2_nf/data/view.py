"""The canonical coronal scan view and its exact inverse.

SAM2-family models (and every retrained baseline) see a scan as a stack of coronal frames. The canonical array has
shape ``(H, W, F)``:

==========  ==========================  ===============
axis        direction                   nibabel code
==========  ==========================  ===============
rows        superior -> inferior         ``"I"``
columns     patient right -> left        ``"L"``
frames      posterior -> anterior        ``"A"``
==========  ==========================  ===============

The mapping is a pure axis permutation plus flips, chosen by :func:`nibabel.orientations.io_orientation` (nearest
world axis per voxel axis, as MONAI does), so any affine -- flipped, permuted or oblique -- round-trips bit-exactly
and voxel indices map exactly in both directions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import SupportsIndex, TypeVar

import nibabel.orientations as nio
import numpy as np

CANONICAL_CODES: tuple[str, str, str] = ("I", "L", "A")

_T = TypeVar("_T")


def triple(values: Iterable[_T]) -> tuple[_T, _T, _T]:
    """The items of ``values`` (exactly three, else ValueError) as a 3-tuple: the typed form of ``tuple(values)``
    for the package's ``(i, j, k)`` / ``(row, col, frame)`` / ``(z, x, y)`` indices, shapes and spacings."""
    first, second, third = values
    return first, second, third


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along the array axes ``(i, j, k)``: the norms of the first three columns of the ``(4, 4)``
    voxel -> world ``affine`` (the one source of voxel spacing; the header zooms may disagree with the affine)."""
    return triple(float(z) for z in np.sqrt((np.asarray(affine, dtype=np.float64)[:3, :3] ** 2).sum(axis=0)))


@dataclass(frozen=True)
class ScanView:
    """Maps arrays and voxel indices between an original grid ``(i, j, k)`` and the canonical ``(row, col, frame)``.

    Attributes:
        original_shape: ``(I, J, K)`` of the array as nibabel loads it.
        affine: ``(4, 4)`` original voxel -> world affine.
        transform: ``(3, 2)`` nibabel orientation transform original -> canonical: row ``a`` is
            ``[canonical axis of original axis a, +1 or -1 (flip)]``.
    """

    original_shape: tuple[int, int, int]
    affine: np.ndarray
    transform: np.ndarray

    @classmethod
    def from_affine(cls, affine: np.ndarray, shape: tuple[int, ...]) -> ScanView:
        """Build the view of an array of ``shape`` (3-D) with voxel -> world ``affine``."""
        if len(shape) != 3:
            raise ValueError(f"ScanView needs a 3-D shape, got {tuple(shape)}")
        affine = np.asarray(affine, dtype=np.float64)
        start = nio.io_orientation(affine)
        transform = nio.ornt_transform(start, nio.axcodes2ornt(CANONICAL_CODES))
        return cls(triple(int(s) for s in shape), affine, transform)

    @classmethod
    def of_canonical(cls, shape: tuple[int, ...]) -> ScanView:
        """The view of an array of ``shape`` that already is canonical ``(row, col, frame)`` with 1 mm voxels: the
        identity mapping (``to_canonical`` returns the array as it is, indices map to themselves)."""
        affine = np.eye(4)
        affine[:3, :3] = 0.0
        for axis, (world_axis, sign) in enumerate(nio.axcodes2ornt(CANONICAL_CODES)):
            affine[int(world_axis), axis] = sign
        return cls.from_affine(affine, shape)

    @property
    def axcodes(self) -> tuple[str, str, str]:
        """nibabel axis codes of the original array (e.g. ``("L", "P", "S")``)."""
        return tuple(nio.aff2axcodes(self.affine))

    @property
    def canonical_shape(self) -> tuple[int, int, int]:
        """``(H, W, F)``."""
        shape = [0, 0, 0]
        for axis, (new_axis, _) in enumerate(self.transform):
            shape[int(new_axis)] = self.original_shape[axis]
        return triple(shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm in canonical order ``(row_mm, col_mm, frame_mm)``."""
        zooms = voxel_spacing(self.affine)
        spacing = [0.0, 0.0, 0.0]
        for axis, (new_axis, _) in enumerate(self.transform):
            spacing[int(new_axis)] = zooms[axis]
        return triple(spacing)

    @property
    def canonical_affine(self) -> np.ndarray:
        """``(4, 4)`` canonical voxel ``(row, col, frame)`` -> world affine."""
        return self.affine @ nio.inv_ornt_aff(self.transform, self.original_shape)

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        """Original ``(I, J, K, ...)`` -> canonical ``(H, W, F, ...)`` (a view where possible; values untouched)."""
        if tuple(array.shape[:3]) != self.original_shape:
            raise ValueError(f"array shape {array.shape[:3]} != original shape {self.original_shape}")
        return nio.apply_orientation(array, self.transform)

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        """Canonical ``(H, W, F, ...)`` -> original ``(I, J, K, ...)``; exact inverse of :meth:`to_canonical`."""
        if tuple(array.shape[:3]) != self.canonical_shape:
            raise ValueError(f"array shape {array.shape[:3]} != canonical shape {self.canonical_shape}")
        inverse = nio.ornt_transform(nio.axcodes2ornt(CANONICAL_CODES), nio.io_orientation(self.affine))
        return nio.apply_orientation(array, inverse)

    def ijk_to_canonical(self, ijk: np.ndarray | Sequence[SupportsIndex]) -> np.ndarray:
        """Voxel indices ``(..., 3)`` ``(i, j, k)`` -> ``(..., 3)`` ``(row, col, frame)`` (int64, exact)."""
        ijk = np.asarray(ijk, dtype=np.int64)
        out = np.empty_like(ijk)
        for axis, (new_axis, flip) in enumerate(self.transform):
            idx = ijk[..., axis]
            out[..., int(new_axis)] = idx if flip > 0 else self.original_shape[axis] - 1 - idx
        return out

    def canonical_to_ijk(self, rcf: np.ndarray | Sequence[SupportsIndex]) -> np.ndarray:
        """``(..., 3)`` ``(row, col, frame)`` -> ``(..., 3)`` ``(i, j, k)`` (int64, exact)."""
        rcf = np.asarray(rcf, dtype=np.int64)
        out = np.empty_like(rcf)
        for axis, (new_axis, flip) in enumerate(self.transform):
            idx = rcf[..., int(new_axis)]
            out[..., axis] = idx if flip > 0 else self.original_shape[axis] - 1 - idx
        return out
