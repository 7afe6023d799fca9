"""Click-seeded 3-D region growing on one scan (the classical "grow from seeds" peer of the learned models).

All arrays are on the scan's original grid: ``(I, J, K)`` numpy arrays indexed by voxel ``(i, j, k)`` as nibabel
loads them, with voxel sizes ``(i_mm, j_mm, k_mm)``. SimpleITK images built from such arrays with
``sitk.GetImageFromArray`` index ``(x, y, z) = (k, j, i)`` and carry the spacing ``(k_mm, j_mm, i_mm)``;
:func:`_to_sitk` and :func:`_sitk_index` are the only places where that reversal happens.

Growing one positive click (:meth:`RegionGrower.seed_region`), a seeded region growing with a local,
background-corrected intensity threshold (lesions are bright on STIR):

1. the search region is the ball of radius ``max_radius_mm`` around the click (physical, so anisotropic voxels are
   handled); nothing outside it can join;
2. the lesion level is the ``lesion_percentile``-th percentile of the intensities within ``initial_radius_mm`` of the
   click (so a click near a lesion's rim still sees the lesion's interior), the background level is the median of
   the search ball;
3. the threshold lies ``fraction`` of the way from the background level to the lesion level; the region is every
   voxel at or above it that is 6-connected (SimpleITK ``ConnectedThreshold``) to such a voxel within
   ``initial_radius_mm`` of the click (the click's *anchors*); its holes are filled;
4. without contrast (lesion level not above the background level) the region is the clicked voxel alone.

A target's mask (:meth:`RegionGrower.segment`) is the union of its positive clicks' regions. Negative clicks cut it:
every voxel of the union whose geodesically nearest click (shortest path inside the union, in mm) is a negative click
rather than a positive one is removed (a positive click below the threshold counts from its nearest anchor), so a
leak is split off where it is nearer to the negative click; negative clicks outside the union change nothing. Finally
only the 6-connected components that contain an anchor are kept.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from mois_sam2_nf.data.view import triple
from mois_sam2_nf.errors import InputError

Voxel = tuple[int, int, int]
Box = tuple[slice, slice, slice]

#: one offset of each opposite pair of the 26-neighbourhood (edges of the geodesic graph)
_HALF_NEIGHBOURHOOD: tuple[Voxel, ...] = tuple(
    triple(offset) for offset in itertools.product((-1, 0, 1), repeat=3) if offset > (0, 0, 0)
)


@dataclass(frozen=True)
class GrowParams:
    """Parameters of the region growing (defaults measured on the demo cohort's training scans).

    Attributes:
        fraction: position of the threshold between the background level (0) and the lesion level (1).
        lesion_percentile: percentile of the intensities near a click taken as the lesion level.
        initial_radius_mm: radius of the ball around a click that gives the lesion level and the anchors.
        max_radius_mm: radius of the ball around a click outside which nothing is grown (speed and leak stop).
    """

    fraction: float = 0.6
    lesion_percentile: float = 95.0
    initial_radius_mm: float = 12.0
    max_radius_mm: float = 50.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fraction) and 0 < self.fraction <= 1):
            raise InputError(f"region_growing: fraction must lie in (0, 1], got {self.fraction!r}")
        if not (math.isfinite(self.lesion_percentile) and 0 <= self.lesion_percentile <= 100):
            raise InputError(f"region_growing: lesion_percentile must lie in [0, 100], got {self.lesion_percentile!r}")
        for name in ("initial_radius_mm", "max_radius_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"region_growing: {name} must be a finite number >= 0, got {value!r}")
        if self.max_radius_mm < self.initial_radius_mm:
            raise InputError(f"region_growing: max_radius_mm ({self.max_radius_mm}) must be >= initial_radius_mm "
                             f"({self.initial_radius_mm})")


@dataclass(frozen=True)
class SeedRegion:
    """What one positive click grows, inside the bounding box of its search ball.

    Attributes:
        box: slices of the box on the original grid.
        mask: bool array of the box's shape, the grown region.
        anchors: ``(n, 3)`` int64 voxel indices ``(i, j, k)`` on the original grid of the region's voxels within
            ``initial_radius_mm`` of the click (at least one).
        source: ``(3,)`` int64 voxel index of the anchor nearest to the click (the click itself when it is in the
            region), where the click's front starts when negative clicks cut the mask.
    """

    box: Box
    mask: np.ndarray
    anchors: np.ndarray
    source: np.ndarray


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel sizes ``(i_mm, j_mm, k_mm)``: the lengths of the affine's first three columns."""
    zooms = np.sqrt((np.asarray(affine, dtype=np.float64)[:3, :3] ** 2).sum(axis=0))
    return triple(float(z) for z in zooms)


def _to_sitk(array: np.ndarray, spacing: tuple[float, float, float]) -> sitk.Image:
    """SimpleITK image of an ``(I, J, K)`` array: size ``(K, J, I)``, spacing ``(k_mm, j_mm, i_mm)``."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    return image


def _sitk_index(voxel: np.ndarray | Voxel) -> tuple[int, int, int]:
    """SimpleITK index ``(x, y, z)`` of the numpy voxel ``(i, j, k)``."""
    i, j, k = (int(v) for v in voxel)
    return k, j, i


def _ball(shape: tuple[int, ...], centre: Voxel, spacing: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """Bool ``shape`` mask of the voxels whose centres lie within ``radius_mm`` of ``centre``."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    squared = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing))
    assert isinstance(squared, np.ndarray)  # a sum of three ogrid terms, never the empty sum's 0
    return squared <= radius_mm**2


class RegionGrower:
    """Region growing on one scan; the regions of single clicks are cached, so regrowing a click history is cheap.

    Args:
        image: ``(I, J, K)`` scan intensities (any real dtype), original grid.
        spacing: voxel sizes ``(i_mm, j_mm, k_mm)``.
        params: growing parameters.
    """

    def __init__(self, image: np.ndarray, spacing: tuple[float, float, float], params: GrowParams) -> None:
        if image.ndim != 3:
            raise InputError(f"region_growing: expected a 3-D image, got shape {image.shape}")
        if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
            raise InputError(f"region_growing: voxel spacing must be three finite numbers > 0, got {spacing!r}")
        self.image = image
        self.spacing = triple(float(s) for s in spacing)
        self.params = params
        self._regions: dict[Voxel, SeedRegion] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        return triple(self.image.shape)

    def _check(self, voxel: Voxel) -> Voxel:
        checked = tuple(int(v) for v in voxel)
        if len(checked) != 3 or not all(0 <= v < n for v, n in zip(checked, self.shape)):
            raise InputError(f"region_growing: voxel {checked} outside the volume of shape {self.shape}")
        return triple(checked)

    def seed_region(self, click: Voxel) -> SeedRegion:
        """The region grown from the positive click ``click`` alone (cached per scan)."""
        click = self._check(click)
        if click not in self._regions:
            self._regions[click] = self._grow(click)
        return self._regions[click]

    def _grow(self, click: Voxel) -> SeedRegion:
        """Grow the region of one checked click (steps 1-4 of the module docstring)."""
        params = self.params
        half = [int(math.floor(params.max_radius_mm / s)) for s in self.spacing]
        box = triple(slice(max(0, c - h), min(n, c + h + 1)) for c, h, n in zip(click, half, self.shape))
        origin = np.array([b.start for b in box])
        local = triple(int(c) for c in np.asarray(click) - origin)
        crop = self.image[box].astype(np.float32)
        search = _ball(crop.shape, local, self.spacing, params.max_radius_mm)
        near = _ball(crop.shape, local, self.spacing, params.initial_radius_mm)
        lesion = float(np.percentile(crop[near], params.lesion_percentile))
        background = float(np.median(crop[search]))
        if not lesion > background:
            mask = np.zeros(crop.shape, dtype=bool)
            mask[local] = True
            return SeedRegion(box, mask, np.array([click], dtype=np.int64), np.array(click, dtype=np.int64))
        threshold = background + params.fraction * (lesion - background)
        # voxels outside the search ball never reach the threshold
        crop[~search] = -np.inf
        starts = np.argwhere(near & (crop >= threshold))
        grown = sitk.ConnectedThreshold(
            _to_sitk(crop, self.spacing), seedList=[_sitk_index(v) for v in starts], lower=threshold,
            upper=float(np.finfo(np.float32).max), replaceValue=1,
            connectivity=sitk.ConnectedThresholdImageFilter.FaceConnectivity,
        )
        mask = ndimage.binary_fill_holes(sitk.GetArrayFromImage(grown).astype(bool))
        nearest = starts[np.argmin((((starts - local) * self.spacing) ** 2).sum(axis=1))]
        return SeedRegion(box, mask, starts + origin, nearest + origin)

    def segment(self, positives: list[Voxel], negatives: list[Voxel]) -> np.ndarray:
        """Bool ``(I, J, K)`` mask grown from ``positives`` and cut by ``negatives`` (see the module docstring).

        Empty without positive clicks. Raises :class:`InputError` for a click outside the volume.
        """
        positives = [self._check(v) for v in positives]
        negatives = [self._check(v) for v in negatives]
        mask = np.zeros(self.shape, dtype=bool)
        if not positives:
            return mask
        regions = [self.seed_region(v) for v in positives]
        for region in regions:
            mask[region.box] |= region.mask
        # the rest works inside the bounding box of the (never empty) union
        box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(mask))
        origin = np.array([b.start for b in box])
        local = mask[box]
        anchors = np.concatenate([r.anchors for r in regions]) - origin
        cutting = np.array([v for v in negatives if mask[v]], dtype=np.int64).reshape(-1, 3) - origin
        if len(cutting):
            sources = np.unique(np.stack([r.source for r in regions]), axis=0) - origin
            local &= ~self._nearer_negative(local, sources, cutting)
        labels, _ = ndimage.label(local)
        keep = np.unique(labels[tuple(anchors.T)])
        out = np.zeros(self.shape, dtype=bool)
        out[box] = np.isin(labels, keep[keep > 0])
        return out

    def _nearer_negative(self, region: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
        """Bool mask of the ``region`` voxels whose geodesic nearest click (in mm, inside ``region``) is a negative.

        ``positives`` and ``negatives`` are ``(n, 3)`` voxel indices inside ``region``. Distances are shortest paths
        over the 26-neighbour graph of ``region`` with edge lengths in mm (Dijkstra); voxels that no click reaches
        are not nearer a negative.
        """
        index = np.full(region.shape, -1, dtype=np.int64)
        index[region] = np.arange(int(region.sum()))
        sources, targets, lengths = [], [], []
        for offset in _HALF_NEIGHBOURHOOD:
            near = tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(offset, region.shape))
            far = tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(offset, region.shape))
            pairs = region[near] & region[far]
            sources.append(index[near][pairs])
            targets.append(index[far][pairs])
            lengths.append(np.full(int(pairs.sum()), math.dist((0, 0, 0), np.multiply(offset, self.spacing))))
        n = int(region.sum())
        graph = sparse.csr_matrix((np.concatenate(lengths), (np.concatenate(sources), np.concatenate(targets))),
                                  shape=(n, n))
        starts = index[tuple(np.concatenate([positives, negatives]).T)]
        _, _, nearest = csgraph.dijkstra(graph, directed=False, indices=starts, min_only=True,
                                         return_predecessors=True)
        out = np.zeros(region.shape, dtype=bool)
        out[region] = np.isin(nearest, starts[len(positives):])
        return out
