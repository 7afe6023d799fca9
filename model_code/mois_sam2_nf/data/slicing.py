"""3-D -> 2-D slice export for SAM2-style training and inspection (docs/synthetic_data.md, Slicing to 2-D).

For each case of a raw set the export writes, in the canonical coronal view (rows S->I, cols R->L, frames P->A)::

    <out>/<set>/<case>/NNNNN.jpg                 uint8 greyscale frame, round(255 * percentile-scaled value)
    <out>/<set>/<case>/meta.json                 geometry and scaling needed to map back to the original grid
    <out>/<label set>/<case>/NNNNN.png           palettised (mode "P") instance ids, 0 = background

``NNNNN`` is the five-digit frame index from ``00000``; frame ``f`` is ``canonical[:, :, f]`` (shape ``(H, W)``).
Instance ids are the 3-D 26-connected components of ``label > 0`` numbered by decreasing size (ties: first voxel in
canonical C raster order), the 255 largest kept. Each case folder is written under a temporary name and renamed when
complete, so an interrupted run leaves no partial case and a re-run skips finished cases.
"""

from __future__ import annotations

import colorsys
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from mois_sam2_nf.atomic import write_json
from mois_sam2_nf.data.instances import keep_largest, size_ordered_components
from mois_sam2_nf.data.intensity import percentile_bounds, percentile_scale
from mois_sam2_nf.data.io import load_label, load_nifti
from mois_sam2_nf.data.layout import CaseFiles, label_dir_name, require_valid_layout, select_sets
from mois_sam2_nf.data.view import CANONICAL_CODES, ScanView, triple
from mois_sam2_nf.errors import InputError

LOG = logging.getLogger(__name__)

MAX_INSTANCES = 255
DEFAULT_JPEG_QUALITY = 95
META_FILE = "meta.json"
META_VERSION = 1


def _make_palette() -> list[int]:
    """Fixed 256-colour RGB palette: index 0 black, ids 1..255 spread over the hue circle (golden-ratio steps)."""
    palette = [0, 0, 0]
    for index in range(1, 256):
        hue = (index * 0.6180339887) % 1.0
        value = 1.0 if index % 2 else 0.75
        palette += [round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, value)]
    return palette


#: flat ``[r0, g0, b0, r1, ...]`` palette written into every mask PNG
PALETTE: list[int] = _make_palette()


def frame_name(index: int, suffix: str) -> str:
    """``00042.jpg`` style frame file name (five digits, from 0)."""
    return f"{index:05d}{suffix}"


def to_uint8(scaled: np.ndarray) -> np.ndarray:
    """``round(255 * x)`` of a float array in ``[0, 1]`` as uint8 (same shape)."""
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_mask_png(path: Path, ids: np.ndarray) -> None:
    """Write a ``(H, W)`` uint8 id map as a palettised PNG (mode ``"P"``, :data:`PALETTE`, pixel value = id)."""
    ids = np.ascontiguousarray(ids, dtype=np.uint8)
    image = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.tobytes())
    image.putpalette(PALETTE)
    image.save(path, format="PNG", optimize=False)


def read_mask_png(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a mask frame as a ``(H, W)`` uint8 id map; accepts mode ``"P"`` (palette indices) and ``"L"``."""
    with Image.open(path) as image:
        if image.mode not in ("P", "L"):
            raise InputError(f"{path}: mask PNG must be mode 'P' or 'L', got {image.mode!r}")
        return np.array(image, dtype=np.uint8)


def read_frame_jpg(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image frame as a ``(H, W)`` uint8 greyscale array."""
    with Image.open(path) as image:
        return np.array(image.convert("L"), dtype=np.uint8)


def view_from_meta(meta: dict) -> ScanView:
    """The :class:`ScanView` recorded in a ``meta.json`` (maps canonical frames back to the original grid)."""
    return ScanView(
        triple(int(s) for s in meta["original_shape"]),
        np.asarray(meta["affine"], dtype=np.float64),
        np.asarray(meta["orientation_transform"], dtype=np.float64),
    )


@dataclass
class SliceSummary:
    """Outcome of :func:`slice_dataset`: case counts per set and instances dropped over the 255 limit."""

    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SlicedCase:
    """A sliced case read back from disk.

    Attributes:
        frames: ``(H, W, F)`` uint8 canonical image frames (JPEG-decoded).
        masks: ``(H, W, F)`` uint8 canonical instance ids (0 = background, 1 = largest lesion).
        meta: the case's ``meta.json`` content.
    """

    frames: np.ndarray
    masks: np.ndarray
    meta: dict

    @property
    def view(self) -> ScanView:
        """Mapping back to the original ``(i, j, k)`` grid."""
        return view_from_meta(self.meta)


def case_dirs(out_root: str | os.PathLike[str], set_name: str, case: str) -> tuple[Path, Path]:
    """``(image frames folder, mask frames folder)`` of a case under a processed root."""
    out_root = Path(out_root)
    return out_root / set_name / case, out_root / label_dir_name(set_name) / case


def is_sliced(out_root: str | os.PathLike[str], set_name: str, case: str) -> bool:
    """True when both folders of the case are complete (the image folder, holding ``meta.json``, is renamed last)."""
    image_dir, label_dir = case_dirs(out_root, set_name, case)
    return (image_dir / META_FILE).is_file() and label_dir.is_dir()


def _clear_stale(final: Path) -> None:
    """Remove leftovers of an interrupted run for one case folder (temporary siblings; a final folder to redo)."""
    if final.parent.is_dir():
        prefix = f".{final.name}.tmp"
        for stale in [p for p in final.parent.iterdir() if p.name.startswith(prefix)]:
            shutil.rmtree(stale)
    if final.exists():
        shutil.rmtree(final)


def slice_case(case: CaseFiles, out_root: str | os.PathLike[str], quality: int = DEFAULT_JPEG_QUALITY) -> dict:
    """Slice one validated case into its two folders under ``out_root``; returns the written ``meta.json`` dict."""
    image = load_nifti(case.image)
    label_path = case.require_label()
    label = load_label(label_path, image=image)
    view = ScanView.from_affine(image.affine, image.array.shape)
    lo, hi = percentile_bounds(image.array)
    frames = to_uint8(percentile_scale(view.to_canonical(image.array), (lo, hi)))
    ids, sizes = size_ordered_components(view.to_canonical(label.array) > 0, connectivity=26)
    ids, dropped = keep_largest(ids, MAX_INSTANCES)
    if dropped:
        LOG.warning("%s: %d instance(s) beyond the %d largest dropped", case.image, dropped, MAX_INSTANCES)
    meta = {
        "version": META_VERSION,
        "case_id": case.case_id,
        "set": case.set_name,
        "image_file": case.image.name,
        "label_file": label_path.name,
        "original_shape": list(view.original_shape),
        "affine": view.affine.tolist(),
        "axcodes": list(view.axcodes),
        "canonical_codes": list(CANONICAL_CODES),
        "orientation_transform": view.transform.astype(int).tolist(),
        "canonical_shape": list(view.canonical_shape),
        "canonical_spacing": list(view.spacing),
        "lo": lo,
        "hi": hi,
        "n_frames": int(view.canonical_shape[2]),
        "n_instances": int(min(len(sizes), MAX_INSTANCES)),
        "n_dropped": int(dropped),
        "jpeg_quality": int(quality),
    }
    image_dir, label_dir = case_dirs(out_root, case.set_name, case.case_id)
    for final in (image_dir, label_dir):
        _clear_stale(final)
    tmp_image = image_dir.with_name(f".{image_dir.name}.tmp{os.getpid()}")
    tmp_label = label_dir.with_name(f".{label_dir.name}.tmp{os.getpid()}")
    try:
        tmp_image.mkdir(parents=True)
        tmp_label.mkdir(parents=True)
        for f in range(frames.shape[2]):
            Image.fromarray(np.ascontiguousarray(frames[:, :, f])).save(
                tmp_image / frame_name(f, ".jpg"), format="JPEG", quality=int(quality)
            )
            write_mask_png(tmp_label / frame_name(f, ".png"), ids[:, :, f].astype(np.uint8))
        write_json(tmp_image / META_FILE, meta)
        os.replace(tmp_label, label_dir)
        os.replace(tmp_image, image_dir)
    finally:
        for tmp in (tmp_image, tmp_label):
            if tmp.exists():
                shutil.rmtree(tmp)
    return meta


def slice_dataset(
    raw_root: str | os.PathLike[str],
    out_root: str | os.PathLike[str],
    *,
    sets: list[str] | None = None,
    quality: int = DEFAULT_JPEG_QUALITY,
    patient_regex: str | None = None,
    progress: bool = True,
) -> SliceSummary:
    """Slice every case of the chosen raw sets (default: all) into ``out_root``; finished cases are skipped.

    The cases still to do are validated first (:func:`~mois_sam2_nf.data.layout.check_raw_layout`); any problem
    raises one :class:`InputError` before anything is written.
    """
    if not 1 <= quality <= 100:
        raise InputError(f"--quality {quality}: JPEG quality must be within 1..100")
    chosen = select_sets(raw_root, sets)
    done = {(s.name, c.case_id) for s in chosen for c in s.cases if is_sliced(out_root, s.name, c.case_id)}
    require_valid_layout(
        raw_root, patient_regex=patient_regex, sets=[s.name for s in chosen], skip_voxels=done, progress=progress
    )
    summary = SliceSummary()
    todo = [c for s in chosen for c in s.cases if (s.name, c.case_id) not in done]
    for scan_set in chosen:
        summary.written[scan_set.name] = 0
        summary.dropped[scan_set.name] = 0
        summary.skipped[scan_set.name] = sum(1 for name, _ in done if name == scan_set.name)
    for case in tqdm(todo, desc="slicing", unit="scan", disable=None if progress else True):
        meta = slice_case(case, out_root, quality)
        summary.written[case.set_name] += 1
        summary.dropped[case.set_name] += meta["n_dropped"]
    return summary


def load_sliced_case(out_root: str | os.PathLike[str], set_name: str, case: str) -> SlicedCase:
    """Read a sliced case back: frames and masks stacked to ``(H, W, F)`` uint8 plus its ``meta.json``."""
    image_dir, label_dir = case_dirs(out_root, set_name, case)
    if not is_sliced(out_root, set_name, case):
        raise InputError(f"{image_dir}: not a sliced case (missing {META_FILE} or {label_dir})")
    meta = json.loads((image_dir / META_FILE).read_text(encoding="utf-8"))
    n = int(meta["n_frames"])
    frames = np.stack([read_frame_jpg(image_dir / frame_name(f, ".jpg")) for f in range(n)], axis=-1)
    masks = np.stack([read_mask_png(label_dir / frame_name(f, ".png")) for f in range(n)], axis=-1)
    return SlicedCase(frames=frames, masks=masks, meta=meta)
