"""Validation of 3D Slicer's MONAI Label request params.

Slicer posts ``params`` as JSON, e.g. ``{"label": "lesion_3", "foreground": [[i, j, k], ...], "background": [...]}``.
Points are voxel indices ``(i, j, k)`` of the image array as nibabel loads it; Slicer resends every point placed so far
for that label, so the two lists are the label's full click history. Every problem becomes one
:class:`~mois_sam2_nf.errors.InputError` line naming the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mois_sam2_nf.evaluation.interface import Click
from mois_sam2_nf.errors import InputError

#: lesion labels are ``lesion_<id>``; the id is the object id of the lesion
LESION_LABEL = re.compile(r"lesion_([1-9][0-9]*)")
#: label of the propagation result
PROPAGATED_LABEL = "propagated_neurofibromas"


def lesion_labels(count: int) -> dict[str, int]:
    """``{"lesion_1": 1, ..., "lesion_<count>": count}`` (the labels an interaction task offers)."""
    return {f"lesion_{n}": n for n in range(1, count + 1)}


def lesion_id(label: str, count: int) -> int:
    """Object id of a lesion label; :class:`InputError` unless it is ``lesion_1`` ... ``lesion_<count>``."""
    match = LESION_LABEL.fullmatch(label)
    if match is None or not 1 <= int(match.group(1)) <= count:
        raise InputError(f"label {label!r} is not a lesion label (expected lesion_1 ... lesion_{count})")
    return int(match.group(1))


def request_label(request: Mapping[str, object]) -> str:
    """The ``label`` param: a non-empty string."""
    label = request.get("label")
    if not isinstance(label, str) or not label:
        raise InputError(f"request param 'label' must be a label name, got {label!r}")
    return label


def _voxel(field: str, index: int, raw: object, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    if not (isinstance(raw, (list, tuple)) and len(raw) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw)):
        raise InputError(f"request param '{field}' point {index} must be [i, j, k] numbers, got {raw!r}")
    voxel = tuple(int(round(v)) for v in raw)
    if not all(0 <= v < size for v, size in zip(voxel, shape)):
        raise InputError(f"request param '{field}' point {index} {list(raw)} lies outside the image of shape {shape}")
    return voxel  # type: ignore[return-value]


def request_points(request: Mapping[str, object], field: str, shape: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """The ``foreground`` or ``background`` param as voxel indices (missing = empty); coordinates are rounded."""
    raw = request.get(field, [])
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise InputError(f"request param '{field}' must be a list of [i, j, k] points, got {type(raw).__name__}")
    return [_voxel(field, n, point, shape) for n, point in enumerate(raw)]


@dataclass(frozen=True)
class ClickRequest:
    """A validated click request: the label and its full click history (positives first, then negatives)."""

    label: str
    clicks: tuple[Click, ...]

    @property
    def positives(self) -> tuple[Click, ...]:
        return tuple(c for c in self.clicks if c.positive)

    @property
    def negatives(self) -> tuple[Click, ...]:
        return tuple(c for c in self.clicks if not c.positive)


def parse_click_request(request: Mapping[str, object], shape: tuple[int, int, int]) -> ClickRequest:
    """Validate ``label``, ``foreground`` and ``background`` of a request for an image of ``shape``."""
    label = request_label(request)
    clicks = [Click(*p, True) for p in request_points(request, "foreground", shape)]
    clicks += [Click(*p, False) for p in request_points(request, "background", shape)]
    return ClickRequest(label, tuple(clicks))
