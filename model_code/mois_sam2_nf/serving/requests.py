"""Validation of 3D Slicer's MONAI Label request params.

Slicer posts ``params`` as JSON, e.g. ``{"label": "lesion_3", "foreground": [[i, j, k], ...], "background": [...]}``.
Points are voxel indices ``(i, j, k)`` of the image array as nibabel loads it; Slicer resends every point placed so far
for that label, so the two lists are the label's full click history. Names that become file names on the server
(image ids, label tags, session ids) must be :func:`safe_name` s. Every problem becomes one
:class:`~mois_sam2_nf.errors.InputError` line naming the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mois_sam2_nf.segmenters import Click
from mois_sam2_nf.errors import InputError

#: lesion labels are ``lesion_<id>``; the id is the object id of the lesion
LESION_LABEL = re.compile(r"lesion_([1-9][0-9]*)")
#: label of the propagation result
PROPAGATED_LABEL = "propagated_neurofibromas"
#: names that may become file or folder names on the server: a letter or digit first, then letters, digits, ``_``,
#: ``-`` and ``.``, at most 128 characters (no separators; ``..`` is refused separately)
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
#: largest accepted ``params`` form field (characters)
MAX_PARAMS_CHARS = 1_000_000


def safe_name(what: str, value: object) -> str:
    """``value`` if it is a :data:`SAFE_NAME` without ``..``; :class:`InputError` naming ``what`` otherwise."""
    if not isinstance(value, str) or SAFE_NAME.fullmatch(value) is None or ".." in value:
        raise InputError(f"{what} {value!r} is not allowed (use letters, digits, '_', '-' and '.', starting with a "
                         f"letter or digit; no path separators or '..')")
    return value


def parse_params(text: str | None) -> dict[str, object]:
    """The ``params`` form field of a request: a JSON object (empty or missing = ``{}``)."""
    if text is None or not text.strip():
        return {}
    if len(text) > MAX_PARAMS_CHARS:
        raise InputError(f"request field 'params' is {len(text)} characters long (limit {MAX_PARAMS_CHARS})")
    try:
        params = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"request field 'params' is not valid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise InputError("request field 'params' is nested too deeply") from None
    if not isinstance(params, dict):
        raise InputError(f"request field 'params' must be a JSON object, got {type(params).__name__}")
    return params


def lesion_labels(count: int) -> dict[str, int]:
    """``{"lesion_1": 1, ..., "lesion_<count>": count}`` (the labels an interaction task offers)."""
    return {f"lesion_{n}": n for n in range(1, count + 1)}


def lesion_id(label: str, count: int) -> int:
    """Object id of a lesion label; :class:`InputError` unless it is ``lesion_1`` ... ``lesion_<count>``."""
    match = LESION_LABEL.fullmatch(label)
    if match is None or not 1 <= int(match.group(1)) <= count:
        raise InputError(f"label {label!r} is not a lesion label: pick one of lesion_1 ... lesion_{count} "
                         f"(one per lesion) before clicking")
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


def request_points(request: Mapping[str, object], field: str,
                   shape: tuple[int, int, int]) -> list[tuple[int, int, int]]:
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

    def require_foreground(self) -> None:
        """:class:`InputError` unless at least one click is positive (a lesion starts from a foreground point)."""
        if not self.positives:
            raise InputError(f"{self.label}: needs at least one foreground (positive) point")

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
