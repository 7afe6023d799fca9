"""One scan held by a SAM2-family volume predictor: the per-lesion click protocol shared by SAM2 and MOIS-SAM2.

The session takes a :class:`~mois_sam2_nf.evaluation.interface.Scan` (original grid), maps it to the canonical coronal
view (rows S->I, cols R->L, frames P->A), scales intensities with
:func:`~mois_sam2_nf.data.intensity.percentile_scale` and creates the predictor's inference state once. The
embedding cache (and, for MOIS-SAM2, the exemplar bank) lives in that state and is shared by every lesion.

Masks returned by :meth:`ScanSession.segment_lesion` and :meth:`ScanSession.propagate` are canonical ``(H, W, F)``
bool arrays; :meth:`ScanSession.to_original` maps them back to the original ``(I, J, K)`` grid exactly.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import torch

from mois_sam2_nf.data.intensity import percentile_scale
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.interface import Click, Scan
from mois_sam2_nf.models.sam2.volume_predictor import EmbeddingCache, VolumeInferenceMixin, volume_state

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
#: MOIS-SAM2 propagation passes: the overlap filter (reference main mode), or CoM clicks searched on every slice /
#: on the prompted slices (model spec section 6.4)
PropagationMode = Literal["overlap", "com_all", "com_prompted"]
PROPAGATION_MODES: tuple[str, ...] = ("overlap", "com_all", "com_prompted")


def check_precision(precision: str) -> Precision:
    """Return ``precision`` if it is ``"fp32"`` or ``"bf16"``; raise :class:`InputError` otherwise."""
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not supported (choose one of {', '.join(PRECISIONS)})")
    return precision  # type: ignore[return-value]


def check_propagation_mode(mode: str) -> PropagationMode:
    """Return ``mode`` if it is one of :data:`PROPAGATION_MODES`; raise :class:`InputError` otherwise."""
    if mode not in PROPAGATION_MODES:
        raise InputError(f"propagation mode {mode!r} is not supported (choose one of {', '.join(PROPAGATION_MODES)})")
    return mode  # type: ignore[return-value]


@contextlib.contextmanager
def precision_context(device: torch.device, precision: Precision) -> Iterator[None]:
    """Autocast context for model calls: nothing for ``fp32``, bf16 autocast on the device's type for ``bf16``.

    On CUDA with bf16, TF32 matmuls are enabled as well when the compute capability is >= 8 (as in the reference).
    """
    if precision == "fp32":
        yield
        return
    if device.type == "cuda" and torch.cuda.get_device_properties(device).major >= 8:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    with torch.autocast(device.type, dtype=torch.bfloat16):
        yield


def group_clicks(clicks: Sequence[Click], scan: Scan) -> dict[int, tuple[list[list[float]], list[int]]]:
    """Group clicks by canonical frame: ``frame -> (points [(col, row), ...], labels [1.., 0..])``.

    Positive clicks come first, then negatives, each in the order given. Raises :class:`InputError` for a click
    outside the volume.
    """
    for click in clicks:
        scan.check_click(click)
    grouped: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for positive_first in (True, False):
        for click in clicks:
            if bool(click.positive) == positive_first:
                row, col, frame = (int(v) for v in scan.view.ijk_to_canonical((click.i, click.j, click.k)))
                grouped[frame].append((col, row, int(positive_first)))
    return {frame: ([[float(c), float(r)] for c, r, _ in items], [label for _, _, label in items])
            for frame, items in sorted(grouped.items())}


class ScanSession:
    """Per-scan inference with a :class:`VolumeInferenceMixin` predictor (plain SAM2 or MOIS-SAM2).

    Args:
        predictor: the volume predictor (its device is the compute device).
        scan: the scan; only ``image`` and ``view`` are read.
        precision: ``"fp32"`` (exact) or ``"bf16"`` (autocast on the predictor's device).
        imagenet_norm: ImageNet-normalise frames (plain SAM2 with official weights).
        early_stop_k: stop each propagation direction after this many consecutive absent frames (``None`` = exact).
        offload_state_to_cpu: keep tracking outputs and the embedding cache on the CPU.
        cache_capacity: frames kept by the embedding cache; ``None`` (default) encodes each frame once per scan,
            ``1`` re-encodes like upstream sam2 (the benchmark's naive path).
    """

    def __init__(
        self,
        predictor: VolumeInferenceMixin,
        scan: Scan,
        *,
        precision: Precision = "fp32",
        imagenet_norm: bool = False,
        early_stop_k: int | None = None,
        offload_state_to_cpu: bool = False,
        cache_capacity: int | None = None,
    ) -> None:
        self.predictor = predictor
        self.scan = scan
        self.precision = check_precision(precision)
        self.early_stop_k = early_stop_k
        volume = percentile_scale(scan.view.to_canonical(np.asarray(scan.image)))
        self.shape: tuple[int, int, int] = tuple(int(s) for s in volume.shape)
        storage = torch.device("cpu") if offload_state_to_cpu else predictor.device
        cache = EmbeddingCache(storage_device=storage, capacity=cache_capacity)
        with self.autocast():
            self.state = predictor.init_state(volume, cache=cache, imagenet_norm=imagenet_norm,
                                              offload_state_to_cpu=offload_state_to_cpu)

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """The precision context every model call of this session runs in."""
        return precision_context(self.predictor.device, self.precision)

    @property
    def encode_count(self) -> int:
        """Frames encoded so far in this scan (each frame at most once with the default cache)."""
        return volume_state(self.state).cache.encode_count

    def segment_lesion(self, obj_id: int, clicks: Sequence[Click]) -> np.ndarray:
        """Segment one lesion from its full click history (model spec section 6.3).

        The predictor's objects are reset (scan caches and exemplar bank kept); the clicks are sent frame by frame in
        ascending order, then the object is propagated forward and in reverse from the earliest clicked frame.

        Args:
            obj_id: object id of the lesion (MOIS-SAM2 exemplar keys use it).
            clicks: every click of this lesion so far, original-grid ``(i, j, k, positive)``.

        Returns:
            Canonical ``(H, W, F)`` bool mask: union of the clicked-frame masks and both propagation passes.
        """
        mask = np.zeros(self.shape, dtype=bool)
        grouped = group_clicks(clicks, self.scan)
        if not any(1 in labels for _, labels in grouped.values()):
            return mask
        with self.autocast():
            self.predictor.reset_objects(self.state)
            for frame, (points, labels) in grouped.items():
                _, _, logits = self.predictor.add_new_points_or_box(self.state, frame, obj_id, points=points,
                                                                    labels=labels, clear_old_points=True)
                mask[:, :, frame] |= self._foreground(logits)
            start = min(grouped)
            for reverse in (False, True):
                for frame, _, logits in self.predictor.propagate_in_video(self.state, start_frame_idx=start,
                                                                          reverse=reverse,
                                                                          early_stop_k=self.early_stop_k):
                    mask[:, :, frame] |= self._foreground(logits)
        return mask

    def propagate(self, prompted: np.ndarray, mode: PropagationMode = "overlap") -> np.ndarray:
        """Semantic propagation from the exemplar bank (MOIS-SAM2 only; model spec section 6.4).

        Args:
            prompted: canonical ``(H, W, F)`` bool union of the interactive lesion masks.
            mode: ``"overlap"`` (semantic components minus those overlapping a prompted lesion), ``"com_all"`` or
                ``"com_prompted"`` (centre clicks on semantic components of every / the prompted slices).

        Returns:
            Canonical bool mask of the propagated lesions that were kept (``prompted`` not included).
        """
        if not hasattr(self.predictor, "propagate_exemplars"):
            raise TypeError(f"{type(self.predictor).__name__} has no semantic propagation")
        with self.autocast():
            if check_propagation_mode(mode) == "overlap":
                result = self.predictor.propagate_exemplars(self.state, prompted)
            else:
                result = self.predictor.propagate_exemplars_com(self.state, prompted, slices=mode.removeprefix("com_"),
                                                                early_stop_k=self.early_stop_k)
        return np.asarray(result, dtype=bool) & ~prompted

    def to_original(self, mask: np.ndarray) -> np.ndarray:
        """Canonical ``(H, W, F)`` mask -> original ``(I, J, K)`` bool mask (exact permutation/flip)."""
        return np.ascontiguousarray(self.scan.view.from_canonical(mask)).astype(bool, copy=False)

    def close(self) -> None:
        """Free the embedding cache and the tracking state."""
        volume_state(self.state).cache.clear()
        self.state.clear()

    @staticmethod
    def _foreground(logits: torch.Tensor) -> np.ndarray:
        """``(1, 1, H, W)`` logits of the single tracked object -> ``(H, W)`` bool mask (logits > 0)."""
        return (logits[0, 0] > 0).cpu().numpy()
