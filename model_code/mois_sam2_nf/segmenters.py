"""The seam between the users of a model and every model adapter: :class:`InteractiveSegmenter` and its registry.

The users are the evaluation, ``segment`` (:mod:`mois_sam2_nf.segment_scan`) and the MONAI Label app. This module
sits below them and below ``models/``: adapters import it to register themselves, and nothing in ``models/`` imports
the evaluation (docs/architecture.md).

Coordinates at this interface are voxel indices ``(i, j, k)`` of the image array as nibabel loads it (the original
grid); masks are ``bool`` arrays of the original shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from mois_sam2_nf.data.view import ScanView, triple
from mois_sam2_nf.errors import InputError


class Click(NamedTuple):
    """One simulated or user click: voxel indices on the original grid and its polarity."""

    i: int
    j: int
    k: int
    positive: bool


@dataclass(frozen=True)
class Scan:
    """A scan handed to a segmenter.

    Attributes:
        case_id: file name without ``.nii(.gz)``.
        image: ``(I, J, K)`` array as stored (any numeric dtype), original grid.
        affine: ``(4, 4)`` voxel -> world affine.
        view: canonical coronal view of this grid.
        label: optional ``(I, J, K)`` int instance/binary label (oracle segmenters only; real models never read it).
    """

    case_id: str
    image: np.ndarray
    affine: np.ndarray
    view: ScanView
    label: np.ndarray | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return triple(self.image.shape)

    def check_click(self, click: Click) -> None:
        """Raise :class:`InputError` if ``click`` lies outside the volume."""
        for value, size, axis in zip((click.i, click.j, click.k), self.shape, "ijk"):
            if not 0 <= value < size:
                raise InputError(f"{self.case_id}: click {tuple(click)} outside the volume "
                                 f"({axis} must be in [0, {size}))")


@runtime_checkable
class InteractiveSegmenter(Protocol):
    """What every model adapter implements (docs/evaluation_protocol.md, Adapter contract).

    Capability flags: ``interactive`` (accepts clicks), ``automatic`` (has :meth:`automatic`), ``propagates``
    (:meth:`propagate` returns a mask).
    """

    name: str
    interactive: bool
    automatic_capable: bool
    propagates: bool

    def start_scan(self, scan: Scan) -> None:
        """Load the image and build per-scan caches (e.g. the SAM2 embedding cache)."""

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        """Add this interaction's new clicks for target ``lesion_id``; return its bool mask (original grid).

        The adapter keeps the click history per ``lesion_id``. A new ``lesion_id`` starts a fresh object (scan cache
        and exemplar bank are kept). ``lesion_id = 0`` is the whole-mask target of the global modes.
        """

    def forget_lesion(self, lesion_id: int) -> None:
        """Drop the click history and mask of ``lesion_id``; its next :meth:`add_clicks` starts a fresh object.

        Used when a user edits earlier clicks (the MONAI Label app receives the full click list on every request).
        Unknown ids are ignored.
        """

    def propagate(self) -> np.ndarray | None:
        """MOIS-SAM2: bool mask of the propagated lesions (original grid); other models ``None``."""

    def automatic(self) -> np.ndarray | None:
        """Automatic models: bool mask without clicks; interactive-only models ``None``."""

    def end_scan(self) -> None:
        """Free per-scan caches."""


SegmenterFactory = Callable[..., InteractiveSegmenter]

_REGISTRY: dict[str, SegmenterFactory] = {}


def register_segmenter(name: str) -> Callable[[SegmenterFactory], SegmenterFactory]:
    """Class/function decorator adding a segmenter factory to the registry under ``name``."""

    def decorate(factory: SegmenterFactory) -> SegmenterFactory:
        _REGISTRY[name] = factory
        return factory

    return decorate


#: adapters that live in other modules; imported on first use so that ``import mois_sam2_nf`` stays light
ADAPTER_MODULES: dict[str, str] = {
    "oracle": "mois_sam2_nf.evaluation.oracle",
    "imperfect_oracle": "mois_sam2_nf.evaluation.oracle",
    "mois_sam2": "mois_sam2_nf.models.mois_sam2.adapter",
    "sam2": "mois_sam2_nf.models.sam2.adapter",
    "nnunet": "mois_sam2_nf.models.nnunet.adapter",
    "sw_fastedit": "mois_sam2_nf.models.sw_fastedit.adapter",
    "dins": "mois_sam2_nf.models.dins.adapter",
    "region_growing": "mois_sam2_nf.models.region_growing.adapter",
    "vista3d": "mois_sam2_nf.models.vista3d.adapter",
    "nninteractive": "mois_sam2_nf.models.nninteractive.adapter",
}


def create_segmenter(name: str, **kwargs: object) -> InteractiveSegmenter:
    """Instantiate the adapter registered as ``name`` with ``kwargs`` (config + checkpoint path, ...)."""
    import importlib

    if name not in _REGISTRY and name in ADAPTER_MODULES:
        importlib.import_module(ADAPTER_MODULES[name])
    if name not in _REGISTRY:
        known = sorted(set(_REGISTRY) | set(ADAPTER_MODULES))
        raise InputError(f"unknown model {name!r} (known: {', '.join(known)})")
    return _REGISTRY[name](**kwargs)
