"""Reference segmenters that read the ground truth: ``oracle`` and ``imperfect_oracle``.

They implement :class:`~mois_sam2_nf.segmenters.InteractiveSegmenter` and exist so that every protocol,
click path and metric has answers known by hand.

* ``oracle``: for a target, the union of the ground-truth lesions (26-connected components of ``label > 0``) that
  contain any of the target's positive clicks; empty without positive clicks. Negative clicks are ignored.
* ``imperfect_oracle``: the same lesion look-up, then a deterministic per-lesion distortion chosen by the lesion's
  size rank ``s`` (1 = largest, ties in canonical raster order):

  - ``s % miss_every == 0``: the lesion is missed (never returned);
  - otherwise ``s % dilate_every == 0``: dilated by ``margin`` voxels (6-connected structuring element);
  - otherwise: eroded by ``margin`` voxels (6-connected structuring element; a lesion may vanish).

  Every target that has a positive click also returns a false-positive cube of edge ``fp_edge`` voxels, placed at
  the first free spot (no ground truth within ``margin + 1`` voxels, so it never touches a dilated lesion) in
  canonical raster order of a grid of stride ``fp_edge``;
  a negative click inside the cube removes it from that target. With ``propagates=True``, :meth:`propagate` returns
  the exact masks of lesions that no positive click has touched yet and that are not missed.

Both accept ``automatic=True``, which turns on :meth:`automatic`: the exact ground truth (``oracle``) or every
lesion distorted as above plus the cube (``imperfect_oracle``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from mois_sam2_nf.data.instances import size_ordered_components
from mois_sam2_nf.data.view import triple
from mois_sam2_nf.segmenters import Click, Scan, register_segmenter
from mois_sam2_nf.errors import InputError


@register_segmenter("oracle")
class OracleSegmenter:
    """Returns the ground-truth lesions under a target's positive clicks.

    See docs/evaluation_protocol.md, Adapter contract.

    Args:
        automatic: also act as an automatic model (:meth:`automatic` returns the whole ground truth).
        **_: model options of other adapters (``device``, ``precision``, ...) are accepted and ignored.
    """

    name = "oracle"
    interactive = True
    propagates = False

    def __init__(self, automatic: bool = False, **_: Any) -> None:
        self.automatic_capable = bool(automatic)
        self._lesions: np.ndarray | None = None
        self._positives: dict[int, list[Click]] = {}
        self._negatives: dict[int, list[Click]] = {}

    def start_scan(self, scan: Scan) -> None:
        """Label the ground truth's lesions (size-ordered 26-components in the canonical view, original grid)."""
        if scan.label is None:
            raise InputError(f"{scan.case_id}: the {self.name} segmenter needs the ground-truth label")
        canonical, _ = size_ordered_components(scan.view.to_canonical(scan.label > 0), connectivity=26)
        self._lesions = np.ascontiguousarray(scan.view.from_canonical(canonical))
        self._scan = scan
        self._positives, self._negatives = {}, {}

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        """Record ``clicks`` for ``lesion_id`` and return that target's bool ``(I, J, K)`` mask."""
        lesions = self._require_scan()
        for click in clicks:
            self._scan.check_click(click)
            bucket = self._positives if click.positive else self._negatives
            bucket.setdefault(lesion_id, []).append(click)
        hit = self._hit_lesions(lesion_id)
        return self._render(lesions, hit, lesion_id)

    def forget_lesion(self, lesion_id: int) -> None:
        """Drop the clicks recorded for ``lesion_id``."""
        self._positives.pop(lesion_id, None)
        self._negatives.pop(lesion_id, None)

    def propagate(self) -> np.ndarray | None:
        """The oracle does not propagate."""
        return None

    def automatic(self) -> np.ndarray | None:
        """The whole ground truth when ``automatic=True``, else ``None``."""
        if not self.automatic_capable:
            return None
        lesions = self._require_scan()
        return self._render(lesions, np.arange(1, int(lesions.max()) + 1), None)

    def end_scan(self) -> None:
        """Drop the per-scan state."""
        self._lesions = None
        self._positives, self._negatives = {}, {}

    def _require_scan(self) -> np.ndarray:
        if self._lesions is None:
            raise RuntimeError(f"{self.name}: start_scan() must be called first")
        return self._lesions

    def _hit_lesions(self, lesion_id: int) -> np.ndarray:
        """Sorted unique lesion ids (size ranks) under the positive clicks of ``lesion_id``."""
        lesions = self._require_scan()
        ids = {int(lesions[c.i, c.j, c.k]) for c in self._positives.get(lesion_id, [])}
        return np.array(sorted(ids - {0}), dtype=np.int64)

    def _render(self, lesions: np.ndarray, ids: np.ndarray, lesion_id: int | None) -> np.ndarray:
        """Bool mask of the lesions ``ids`` (``lesion_id`` is ``None`` for the automatic call)."""
        return np.isin(lesions, ids)


@register_segmenter("imperfect_oracle")
class ImperfectOracleSegmenter(OracleSegmenter):
    """Deterministically wrong oracle; see the module docstring for the exact rules.

    Args:
        miss_every: lesions whose size rank is a multiple of this are missed (0 = none missed).
        dilate_every: of the others, size ranks that are multiples of this are dilated, the rest eroded.
        margin: dilation/erosion iterations (voxels, 6-connected).
        fp_edge: edge of the false-positive cube in voxels (0 = no cube).
        propagates: :meth:`propagate` returns the untouched, non-missed lesions.
        automatic: :meth:`automatic` returns every lesion distorted, plus the cube.
    """

    name = "imperfect_oracle"

    def __init__(
        self,
        miss_every: int = 3,
        dilate_every: int = 2,
        margin: int = 1,
        fp_edge: int = 2,
        propagates: bool = False,
        automatic: bool = False,
        **_: Any,
    ) -> None:
        super().__init__(automatic=automatic)
        if dilate_every < 1 or margin < 0 or fp_edge < 0 or miss_every < 0:
            raise InputError(
                f"imperfect_oracle: invalid options miss_every={miss_every}, dilate_every={dilate_every}, "
                f"margin={margin}, fp_edge={fp_edge}"
            )
        self.miss_every, self.dilate_every, self.margin, self.fp_edge = miss_every, dilate_every, margin, fp_edge
        self.propagates = bool(propagates)
        self._cube: tuple[slice, slice, slice] | None = None

    def start_scan(self, scan: Scan) -> None:
        """Label the lesions and place the false-positive cube."""
        super().start_scan(scan)
        self._cube = self._place_cube(scan) if self.fp_edge else None

    def propagate(self) -> np.ndarray | None:
        """Exact masks of non-missed lesions that no positive click (of any target) has touched; ``None`` if off."""
        if not self.propagates:
            return None
        lesions = self._require_scan()
        touched = {int(lesions[c.i, c.j, c.k]) for clicks in self._positives.values() for c in clicks}
        ids = [s for s in range(1, int(lesions.max()) + 1) if s not in touched and not self._missed(s)]
        return np.isin(lesions, ids)

    def _missed(self, size_rank: int) -> bool:
        return self.miss_every > 0 and size_rank % self.miss_every == 0

    def _render(self, lesions: np.ndarray, ids: np.ndarray, lesion_id: int | None) -> np.ndarray:
        """Distorted lesions ``ids`` plus the cube (unless a negative click of ``lesion_id`` removed it)."""
        out = np.zeros(lesions.shape, dtype=bool)
        cross = ndimage.generate_binary_structure(3, 1)
        for size_rank in (int(s) for s in ids):
            if self._missed(size_rank):
                continue
            lesion = lesions == size_rank
            if self.margin and size_rank % self.dilate_every == 0:
                lesion = ndimage.binary_dilation(lesion, structure=cross, iterations=self.margin)
            elif self.margin:
                lesion = ndimage.binary_erosion(lesion, structure=cross, iterations=self.margin)
            out |= lesion
        if self._cube is not None and (lesion_id is None or len(ids)) and not self._cube_removed(lesion_id):
            out[self._cube] = True
        return out

    def _cube_removed(self, lesion_id: int | None) -> bool:
        cube = self._cube
        if lesion_id is None or cube is None:
            return False
        return any(self._in_cube(cube, c) for c in self._negatives.get(lesion_id, []))

    @staticmethod
    def _in_cube(cube: tuple[slice, slice, slice], click: Click) -> bool:
        return all(s.start <= v < s.stop for s, v in zip(cube, (click.i, click.j, click.k)))

    def _place_cube(self, scan: Scan) -> tuple[slice, slice, slice] | None:
        """Original-grid slices of the first free cube in canonical raster order (``None`` if the scan is full)."""
        if scan.label is None:
            raise InputError(f"{scan.case_id}: the {self.name} segmenter needs the ground-truth label")
        edge = self.fp_edge
        view = scan.view
        near_gt = ndimage.binary_dilation(
            view.to_canonical(scan.label > 0),
            structure=ndimage.generate_binary_structure(3, 3),
            iterations=self.margin + 1,
        )
        rows, cols, frames = view.canonical_shape
        for r in range(0, rows - edge + 1, edge):
            for c in range(0, cols - edge + 1, edge):
                for f in range(0, frames - edge + 1, edge):
                    if not near_gt[r : r + edge, c : c + edge, f : f + edge].any():
                        far = (r + edge - 1, c + edge - 1, f + edge - 1)
                        corners = view.canonical_to_ijk(np.array([[r, c, f], far]))
                        lo, hi = corners.min(axis=0), corners.max(axis=0)
                        return triple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi))
        return None
