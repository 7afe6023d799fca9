"""Prompted lesions and their visiting order (docs/evaluation_protocol.md, Lesions and prompt order).

The ground truth is binarised (``> 0``); its lesions are the 26-connected components of the unfiltered mask (their
number is ``n``). ``K = num_lesions`` targets are prompted, built in the canonical view so that ties are broken in
canonical raster order, then mapped back to the original grid:

* ``size_desc`` (default): the K largest components, largest first (ties: first voxel in canonical raster order).
* ``label_order`` (reference): keep the K largest 26-components, relabel the kept mask with ``scipy.ndimage.label``
  (6-connectivity), visit ids ``1..K`` in that label order. A 26-component can split into several targets and ids
  above K are never visited.

In both orders the target of rank ``r`` is the component with id ``r`` of the prompting lesion map, so
``target_label == target_rank``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mois_sam2_nf.data.instances import keep_largest, size_ordered_components
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError

LESION_ORDERS: tuple[str, ...] = ("size_desc", "label_order")


@dataclass(frozen=True)
class PromptPlan:
    """The prompted targets of one scan.

    Attributes:
        rank_map: ``(I, J, K)`` int32 on the original grid; voxel value = rank (1..m) of the prompted target that
            contains it, 0 elsewhere (also 0 on unprompted lesions).
        volumes_ml: ``(m,)`` float64, volume of target ``r`` at index ``r - 1``.
        n_lesions: ``n``, the number of 26-connected components of the unfiltered ground truth.
        num_lesions: ``K``, the number of targets asked for.
    """

    rank_map: np.ndarray
    volumes_ml: np.ndarray
    n_lesions: int
    num_lesions: int

    @property
    def n_targets(self) -> int:
        """``m``: number of prompted targets (``min(K, n)`` for ``size_desc``)."""
        return int(len(self.volumes_ml))

    @property
    def ranks(self) -> range:
        """Target ranks in visiting order, ``1..m``."""
        return range(1, self.n_targets + 1)

    @property
    def fewer_than_k(self) -> bool:
        """True when the scan offered fewer than ``K`` targets, i.e. every lesion was prompted."""
        return self.n_targets < self.num_lesions

    def mask(self, rank: int) -> np.ndarray:
        """Bool ``(I, J, K)`` mask of the target of ``rank``."""
        return self.rank_map == rank


def plan_targets(
    gt: np.ndarray, view: ScanView, num_lesions: int, order: str, voxel_volume_ml: float
) -> PromptPlan:
    """Choose and order the prompted targets of ``gt``.

    Args:
        gt: ``(I, J, K)`` label array on the original grid (any integer dtype; ``> 0`` is lesion).
        view: the scan's canonical view (tie-breaks use canonical raster order).
        num_lesions: ``K >= 1``.
        order: one of :data:`LESION_ORDERS`.
        voxel_volume_ml: volume of one voxel in ml (``data.io.Volume.voxel_volume_mm3 / 1000``).
    """
    if order not in LESION_ORDERS:
        raise InputError(f"protocol.lesion_order={order!r} is not one of {', '.join(LESION_ORDERS)}")
    if num_lesions < 1:
        raise InputError(f"protocol.num_lesions={num_lesions} must be >= 1")
    components, sizes = size_ordered_components(view.to_canonical(gt > 0), connectivity=26)
    kept, _ = keep_largest(components, num_lesions)
    if order == "size_desc":
        prompt = kept
    else:
        prompt, _ = ndimage.label(kept > 0)
        prompt = np.where(prompt <= num_lesions, prompt, 0)
    counts = np.bincount(prompt.ravel(), minlength=1)[1:]
    rank_map = np.ascontiguousarray(view.from_canonical(prompt.astype(np.int32)))
    return PromptPlan(
        rank_map=rank_map,
        volumes_ml=counts.astype(np.float64) * voxel_volume_ml,
        n_lesions=int(len(sizes)),
        num_lesions=int(num_lesions),
    )
