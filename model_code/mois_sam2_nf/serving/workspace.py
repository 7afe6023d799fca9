"""Server-side state of one model for the image being annotated in 3D Slicer.

An :class:`AnnotationWorkspace` owns one segmenter (any :class:`~mois_sam2_nf.segmenters.InteractiveSegmenter`)
and the image it works on. The segmenter's per-scan caches (the SAM2 embedding cache, the
MOIS-SAM2 exemplar bank) are reused by every request on that image; they are dropped when a request names another
image, when the file's content changed since it was read (a re-upload under the same name: its inode, size or
modification time differ), or after ``idle_timeout_s`` seconds without requests. All coordinates are voxel indices
``(i, j, k)`` of the image array as nibabel loads it; masks are bool ``(I, J, K)`` arrays. Methods are thread-safe:
they hold :attr:`AnnotationWorkspace.lock` (re-entrant, one per workspace, so one model's work on its image is
serialised while other models and other requests go on), which callers also take to keep a result and its image
together.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np

from mois_sam2_nf.data.io import Volume, case_id, load_nifti
from mois_sam2_nf.data.masks import components_at
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, InteractiveSegmenter, Scan
from mois_sam2_nf.serving.requests import PROPAGATED_LABEL, ClickRequest

RemovalMode = Literal["3d", "2d"]


class NoLesionClicked(InputError):
    """Propagation was asked for before any lesion of the image was clicked."""


def file_fingerprint(path: str | os.PathLike[str]) -> tuple[str, int, int, int, int]:
    """``(real path, device, inode, size, mtime ns)`` of a file: changes when the file is replaced or rewritten."""
    stat = os.stat(path)
    return os.path.realpath(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def remove_components(mask: np.ndarray, points: Sequence[tuple[int, int, int]], view: ScanView,
                      mode: RemovalMode = "3d") -> np.ndarray:
    """Remove the connected components of ``mask`` that contain any of ``points``.

    Args:
        mask: ``(I, J, K)`` bool mask.
        points: voxel indices ``(i, j, k)``; points on background remove nothing.
        view: canonical coronal view of the grid (``"2d"`` works on its coronal slices).
        mode: ``"3d"`` removes 26-connected components of the volume; ``"2d"`` removes the 8-connected component of
            the point's coronal slice only (as the reference app did).

    Returns:
        A new ``(I, J, K)`` bool mask.
    """
    if mode == "3d":
        return mask & ~components_at(mask, points)
    if mode != "2d":
        raise ValueError(f"removal mode must be '3d' or '2d', got {mode!r}")
    canonical = view.to_canonical(mask).copy()
    for point in points:
        row, col, frame = (int(v) for v in view.ijk_to_canonical(point))
        canonical[:, :, frame] &= ~components_at(canonical[:, :, frame], [(row, col)])
    return np.ascontiguousarray(view.from_canonical(canonical)).astype(bool)


class AnnotationWorkspace:
    """One model's server state for the current image (see the module docstring).

    Args:
        segmenter: the model adapter (built once, with its weights, when the server starts).
        idle_timeout_s: free the image's caches after this many seconds without a request.
        removal_mode: false-positive removal on 3-D components (default) or on 2-D coronal components.
    """

    def __init__(self, segmenter: InteractiveSegmenter, idle_timeout_s: float = 600.0,
                 removal_mode: RemovalMode = "3d") -> None:
        if removal_mode not in ("3d", "2d"):
            raise InputError(f"removal mode {removal_mode!r} is not supported (choose 3d or 2d)")
        self.idle_timeout_s = float(idle_timeout_s)
        self.removal_mode: RemovalMode = removal_mode
        self.segmenter = segmenter
        self.lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._last_used = 0.0
        self._fingerprint: tuple[str, int, int, int, int] | None = None
        self.image_id: str | None = None
        self.image: Volume | None = None
        self.scan: Scan | None = None
        self.clicks: dict[int, tuple[Click, ...]] = {}
        self.masks: dict[str, np.ndarray] = {}

    def open(self, path: str | os.PathLike[str]) -> Volume:
        """Make the image at ``path`` the current image (the path is its id); another image, or the same path with
        other content, drops the previous state."""
        image_id = str(path)
        with self.lock:
            try:
                fingerprint = file_fingerprint(path)
            except OSError:
                raise InputError(f"{path}: file not found") from None
            if self.image_id != image_id or self._fingerprint != fingerprint:
                self.close()
                image = load_nifti(path)
                shape = tuple(image.array.shape)
                scan = Scan(case_id(path), image.array, image.affine, ScanView.from_affine(image.affine, shape))
                self.segmenter.start_scan(scan)
                self.image_id, self.image, self.scan = image_id, image, scan
                self._fingerprint = fingerprint
            self._touch()
            if self.image is None:  # unreachable: image_id and image are set and cleared together
                raise RuntimeError(f"{image_id}: the workspace has an image id but no image")
            return self.image

    def segment(self, path: str | os.PathLike[str], lesion_id: int, label: str, clicks: Sequence[Click]) -> np.ndarray:
        """Segment lesion ``lesion_id`` (label ``label``) from its full click list; returns its bool mask.

        Slicer resends a label's whole point list. A list that extends the previous one adds only the new points (a
        correction of the lesion, see :meth:`ScanSession.segment_lesion`); an unchanged list returns the stored mask;
        a list that drops or changes points restarts the lesion from all its points (the segmenter forgets the old
        ones), so edited or deleted points in Slicer are honoured.
        """
        with self.lock:
            self.open(path)
            clicks = tuple(clicks)
            ClickRequest(label, clicks).require_foreground()
            previous = self.clicks.get(lesion_id)
            if previous is None or label not in self.masks or clicks[: len(previous)] != previous:
                # the list does not extend the previous one: restart the lesion from all its points
                self.segmenter.forget_lesion(lesion_id)
                previous = ()
            if clicks != previous:
                new = clicks[len(previous):]
                self.masks[label] = np.asarray(self.segmenter.add_clicks(lesion_id, list(new)), dtype=bool)
                self.clicks[lesion_id] = clicks
            self._touch()
            return self.masks[label]

    def propagate(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Propagate the clicked lesions to the unprompted ones; returns (and stores) the propagated bool mask."""
        with self.lock:
            self.open(path)
            if not getattr(self.segmenter, "propagates", False):
                raise InputError(f"model {self.segmenter.name!r} does not propagate to unprompted lesions")
            if not self.clicks:
                raise NoLesionClicked(f"{path}: click at least one lesion (lesion_1, ...) before running propagation")
            self.masks[PROPAGATED_LABEL] = np.asarray(self.segmenter.propagate(), dtype=bool)
            self._touch()
            return self.masks[PROPAGATED_LABEL]

    def remove(self, path: str | os.PathLike[str], label: str, points: Sequence[tuple[int, int, int]]) -> np.ndarray:
        """Remove the components of ``label``'s current mask under ``points``; returns (and stores) the new mask."""
        with self.lock:
            self.open(path)
            if label not in self.masks:
                raise InputError(f"{path}: label {label!r} has no mask yet (segment or propagate it first)")
            scan = self.scan
            assert scan is not None  # set by open()
            self.masks[label] = remove_components(self.masks[label], points, scan.view, self.removal_mode)
            self._touch()
            return self.masks[label]

    def close(self) -> None:
        """Drop the current image, its caches, click lists and masks (the segmenter and its weights stay)."""
        with self.lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.image_id is not None:
                self.segmenter.end_scan()
            self.image_id, self.image, self.scan, self._fingerprint = None, None, None, None
            self.clicks, self.masks = {}, {}

    def _touch(self) -> None:
        """Restart the idle clock (called when a request starts and when it ends)."""
        self._last_used = time.monotonic()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.idle_timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self.lock:
            if time.monotonic() - self._last_used >= self.idle_timeout_s:
                self.close()
