"""Segment one scan from a clicks file with any registered segmenter (``mois-sam2-nf segment``).

Clicks file (JSON)::

    {"lesions": [{"id": 1, "clicks": [[i, j, k, 1], [i, j, k, 0]]},
                 {"id": 2, "clicks": [[i, j, k, 1]]}]}

- ``i, j, k``: integer voxel indices of the image array as nibabel loads it (0-based, original grid).
- the fourth value: ``1`` = positive (inside the lesion), ``0`` = negative (background / remove).
- ``id``: integer >= 1, unique; it is the voxel value of that lesion in ``lesions.nii.gz``. Each lesion needs at least
  one positive click. No other keys are allowed.
- a lesion's clicks are applied in the order listed, one interaction each (the first starts the lesion, each later
  one corrects it), exactly as the evaluation's lesion-wise protocol and the Slicer app apply them.

Limits (configurable, ``segment --max-clicks-per-lesion`` / ``--max-lesions``): at most
:data:`MAX_CLICKS_PER_LESION` clicks per lesion and :data:`MAX_LESIONS` lesions per file, so a malformed or hostile
file is refused at once instead of running for hours.

Outputs in ``out_dir`` (same shape, affine, qform/sform matrices and codes as the image):

- ``lesions.nii.gz`` (int32): lesion id per voxel, 0 = background. Where two lesion masks overlap, the lesion listed
  first keeps the voxel.
- ``propagated.nii.gz`` (uint8 {0,1}): the model's propagation to unprompted lesions (only for models that
  propagate, e.g. MOIS-SAM2).
- ``combined.nii.gz`` (uint8 {0,1}): union of all lesions and the propagated mask.

The clicks, the device and the output folder are validated before the model is loaded; the files are written into a
temporary sibling folder and published together (:func:`~mois_sam2_nf.atomic.atomic_dir`), so on any error nothing is
written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mois_sam2_nf.atomic import atomic_dir, check_output_dir
from mois_sam2_nf.data.io import case_id, load_label, load_nifti, save_nifti
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.devices import check_device
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, Scan, create_segmenter

#: largest lesion id (``lesions.nii.gz`` is int32)
MAX_LESION_ID = int(np.iinfo(np.int32).max)
#: default limit on the clicks of one lesion
MAX_CLICKS_PER_LESION = 100
#: default limit on the lesions of one clicks file
MAX_LESIONS = 500
#: every file a run can write into ``--out`` (``propagated.nii.gz`` only for models that propagate)
OUTPUT_NAMES = ("lesions.nii.gz", "propagated.nii.gz", "combined.nii.gz")


@dataclass(frozen=True)
class LesionClicks:
    """The clicks of one lesion: ``lesion_id`` >= 1 and its clicks in file order (original-grid voxel indices)."""

    lesion_id: int
    clicks: tuple[Click, ...]


@dataclass(frozen=True)
class SegmentOutputs:
    """Paths written by :func:`segment_scan` (``propagated`` is ``None`` for models that do not propagate)."""

    lesions: Path
    combined: Path
    propagated: Path | None
    n_lesions: int


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_click(path: Path, lesion_id: int, index: int, raw: object, shape: tuple[int, ...]) -> Click:
    if not (isinstance(raw, list) and len(raw) == 4 and all(_is_int(v) for v in raw) and raw[3] in (0, 1)):
        raise InputError(f"{path}: lesion {lesion_id} click {index} must be [i, j, k, 1 or 0] integers (got {raw!r})")
    i, j, k, positive = raw
    if not all(0 <= v < size for v, size in zip((i, j, k), shape)):
        raise InputError(f"{path}: lesion {lesion_id} click {index} {raw!r} lies outside the volume of shape {shape}")
    return Click(i, j, k, bool(positive))


def _parse_lesion(path: Path, index: int, raw: object, shape: tuple[int, ...], max_clicks: int) -> LesionClicks:
    if not isinstance(raw, dict) or set(raw) != {"id", "clicks"}:
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise InputError(f'{path}: lesions[{index}] must be an object with exactly "id" and "clicks" (got {keys})')
    lesion_id = raw["id"]
    if not _is_int(lesion_id) or not 1 <= lesion_id <= MAX_LESION_ID:
        raise InputError(f"{path}: lesions[{index}].id must be an integer >= 1 (got {lesion_id!r})")
    clicks = raw["clicks"]
    if not isinstance(clicks, list) or not clicks:
        raise InputError(f"{path}: lesion {lesion_id} needs a non-empty list of clicks")
    if len(clicks) > max_clicks:
        raise InputError(f"{path}: lesion {lesion_id} has {len(clicks)} clicks, more than the limit of {max_clicks} "
                         f"(--max-clicks-per-lesion)")
    parsed = tuple(_parse_click(path, lesion_id, n, click, shape) for n, click in enumerate(clicks))
    if not any(click.positive for click in parsed):
        raise InputError(f"{path}: lesion {lesion_id} has no positive click")
    return LesionClicks(lesion_id, parsed)


def read_clicks(path: str | os.PathLike[str], shape: tuple[int, ...],
                max_clicks_per_lesion: int = MAX_CLICKS_PER_LESION,
                max_lesions: int = MAX_LESIONS) -> list[LesionClicks]:
    """Parse and validate a clicks file for a volume of ``shape`` ``(I, J, K)``; lesions in file order.

    Raises :class:`InputError` (one line naming the file) for a missing, non-JSON or too deeply nested file, an
    unknown layout, a bad or duplicate id, a malformed click, a click outside the volume, a lesion without a positive
    click, or more than ``max_clicks_per_lesion`` clicks on a lesion / ``max_lesions`` lesions.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply (expected lesions -> clicks -> [i, j, k, 1 or 0])") from None
    if not isinstance(data, dict) or set(data) != {"lesions"} or not isinstance(data["lesions"], list):
        raise InputError(f'{path}: expected {{"lesions": [{{"id": 1, "clicks": [[i, j, k, 1], ...]}}, ...]}}')
    if not data["lesions"]:
        raise InputError(f'{path}: "lesions" is empty')
    if len(data["lesions"]) > max_lesions:
        raise InputError(f"{path}: {len(data['lesions'])} lesions, more than the limit of {max_lesions} "
                         f"(--max-lesions)")
    lesions = [_parse_lesion(path, n, raw, shape, max_clicks_per_lesion) for n, raw in enumerate(data["lesions"])]
    seen: set[int] = set()
    for lesion in lesions:
        if lesion.lesion_id in seen:
            raise InputError(f"{path}: duplicate lesion id {lesion.lesion_id}")
        seen.add(lesion.lesion_id)
    return lesions


def segment_scan(
    image_path: str | os.PathLike[str],
    clicks_path: str | os.PathLike[str],
    model: str,
    out_dir: str | os.PathLike[str],
    label_path: str | os.PathLike[str] | None = None,
    max_clicks_per_lesion: int = MAX_CLICKS_PER_LESION,
    max_lesions: int = MAX_LESIONS,
    **segmenter_options: object,
) -> SegmentOutputs:
    """Run ``model`` on one scan with the clicks of ``clicks_path`` and write the outputs (module docstring).

    Args:
        image_path: the scan (3-D NIfTI).
        clicks_path: clicks JSON (format in the module docstring).
        model: a registered segmenter name (``create_segmenter``).
        out_dir: output folder (created; checked before the model is loaded; written all or nothing).
        label_path: ground-truth label on the image grid, passed as ``Scan.label`` (oracle segmenters only).
        max_clicks_per_lesion, max_lesions: limits of the clicks file (:func:`read_clicks`).
        segmenter_options: keyword arguments of the segmenter factory (e.g. ``checkpoint``, ``config``, ``device``;
            ``device`` must exist on this machine).
    """
    image = load_nifti(image_path)
    shape = tuple(image.array.shape)
    lesions_clicks = read_clicks(clicks_path, shape, max_clicks_per_lesion, max_lesions)
    label = load_label(label_path, image=image).array if label_path is not None else None
    if "device" in segmenter_options:
        check_device(str(segmenter_options["device"]))
    check_output_dir(out_dir, "--out folder")
    try:
        segmenter = create_segmenter(model, **segmenter_options)
    except TypeError as err:
        given = ", ".join(sorted(segmenter_options)) or "no options"
        raise InputError(f"model {model!r} cannot be created with {given} ({err})") from None
    if not getattr(segmenter, "interactive", True):
        raise InputError(f"model {model!r} is not interactive; segment needs a model that takes clicks")
    scan = Scan(case_id(image_path), image.array, image.affine, ScanView.from_affine(image.affine, shape), label)
    lesions = np.zeros(shape, dtype=np.int32)
    propagated: np.ndarray | None = None
    segmenter.start_scan(scan)
    try:
        for lesion in tqdm(lesions_clicks, desc="lesions", unit="lesion"):
            for click in lesion.clicks:
                mask = np.asarray(segmenter.add_clicks(lesion.lesion_id, [click]), dtype=bool)
            lesions[mask & (lesions == 0)] = lesion.lesion_id
        if getattr(segmenter, "propagates", False):
            result = segmenter.propagate()
            propagated = None if result is None else np.asarray(result, dtype=bool)
    finally:
        segmenter.end_scan()
    combined = lesions > 0 if propagated is None else (lesions > 0) | propagated
    out = Path(out_dir)
    outputs = {"lesions.nii.gz": lesions, "combined.nii.gz": combined.astype(np.uint8)}
    if propagated is not None:
        outputs["propagated.nii.gz"] = propagated.astype(np.uint8)
    with atomic_dir(out, owned=OUTPUT_NAMES) as tmp:
        for name, array in outputs.items():
            save_nifti(tmp / name, array, image.affine, like=image.header)
    return SegmentOutputs(
        lesions=out / "lesions.nii.gz",
        combined=out / "combined.nii.gz",
        propagated=None if propagated is None else out / "propagated.nii.gz",
        n_lesions=len(lesions_clicks),
    )
