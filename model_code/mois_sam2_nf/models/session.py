"""One scan held by a SAM2-family volume predictor: the per-lesion click protocol shared by SAM2 and MOIS-SAM2.

The session takes a :class:`~mois_sam2_nf.segmenters.Scan` (original grid), maps it to the canonical coronal
view (rows S->I, cols R->L, frames P->A), scales intensities with
:func:`~mois_sam2_nf.data.intensity.percentile_scale` and creates the predictor's inference state once. The
embedding cache (and, for MOIS-SAM2, the exemplar bank) lives in that state and is shared by every lesion.

Masks returned by :meth:`ScanSession.segment_lesion` and :meth:`ScanSession.propagate` are canonical ``(H, W, F)``
bool arrays; :meth:`ScanSession.to_original` maps them back to the original ``(I, J, K)`` grid exactly.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Generator, Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch

from mois_sam2_nf.data.intensity import percentile_scale
from mois_sam2_nf.data.masks import components_at
from mois_sam2_nf.data.view import triple
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.sam2.volume_predictor import EmbeddingCache, VolumeInferenceMixin, volume_state
from mois_sam2_nf.segmenters import Click, Scan

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
#: storage dtype of the embedding cache: ``fp32`` keeps the encoder's output (exact), ``bf16`` halves the cache
CACHE_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
#: MOIS-SAM2 propagation passes: the overlap filter (reference main mode), or CoM clicks searched on every slice /
#: on the prompted slices (docs/method.md, CoM modes)
PropagationMode = Literal["overlap", "com_all", "com_prompted"]
PROPAGATION_MODES: tuple[str, ...] = ("overlap", "com_all", "com_prompted")


def check_precision(precision: str) -> Precision:
    """Return ``precision`` if it is ``"fp32"`` or ``"bf16"``; raise :class:`InputError` otherwise."""
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not supported (choose one of {', '.join(PRECISIONS)})")
    return precision  # type: ignore[return-value]


def check_cache_dtype(cache_dtype: str) -> str:
    """Return ``cache_dtype`` if it is a key of :data:`CACHE_DTYPES`; raise :class:`InputError` otherwise."""
    if cache_dtype not in CACHE_DTYPES:
        raise InputError(f"cache dtype {cache_dtype!r} is not supported (choose one of {', '.join(CACHE_DTYPES)})")
    return cache_dtype


def check_frame_count(name: str, value: int | None) -> int | None:
    """Return ``value`` if it is ``None`` or an integer >= 1 (a number of slices); else raise :class:`InputError`."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputError(f"{name}={value!r} must be null or an integer >= 1")
    return value


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


def continues_track(current: np.ndarray, previous: np.ndarray) -> bool:
    """Whether a tracked slice's mask continues the previous slice's mask of the same lesion.

    A lesion is a compact 3-D object, so on neighbouring slices its masks overlap: the current mask must be non-empty
    and cover at least half of the smaller of the two masks.

    Args:
        current: ``(H, W)`` bool mask of the slice just tracked.
        previous: ``(H, W)`` bool mask of the slice tracked before it (same pass).
    """
    area = int(current.sum())
    return area > 0 and 2 * int((current & previous).sum()) >= min(area, int(previous.sum()))


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
        correction_reuse_k: ``None`` (exact): every interaction re-tracks the lesion from its earliest conditioning
            frame, forward and in reverse. An integer k: a correction (a later interaction of the current lesion)
            re-tracks only outward from the slices it clicked (forward from the lowest, in reverse from the highest)
            and stops in a direction once k consecutive slices come out as they were; the slices beyond keep their
            previous masks and tracking outputs. Can change a mask (a new conditioning slice also enters the memory
            of slices that are not re-tracked).
        cache_dtype: ``"fp32"`` (exact) or ``"bf16"``: storage dtype of the embedding cache (see
            :class:`~mois_sam2_nf.models.sam2.volume_predictor.EmbeddingCache`).
        track_continuity: ``False`` (SAM2's tracking): a lesion is tracked as long as the predictor finds it. ``True``:
            a propagation pass ends at the first slice that is not a conditioning slice and whose mask does not
            continue the previous slice's (:func:`continues_track`): the lesion ended there, or the tracker jumped to
            another structure. Changes masks (docs/method.md, Volume inference).
        keep_clicked_components: ``True`` (default): a lesion's mask is the part of the model's mask that is connected
            to its clicks, i.e. the 26-connected 3-D components that contain one of its positive clicks (the whole
            mask when none does); blobs that do not touch the clicked lesion (neighbouring lesions, background) are
            dropped. ``False``: the model's mask as it is (the reference's output). docs/method.md, Volume inference.
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
        correction_reuse_k: int | None = None,
        cache_dtype: str = "fp32",
        track_continuity: bool = False,
        keep_clicked_components: bool = True,
    ) -> None:
        self.predictor = predictor
        self.scan = scan
        self.precision = check_precision(precision)
        self.early_stop_k = check_frame_count("early_stop_k", early_stop_k)
        self.correction_reuse_k = check_frame_count("correction_reuse_k", correction_reuse_k)
        self.track_continuity = track_continuity
        self.keep_clicked_components = keep_clicked_components
        volume = percentile_scale(scan.view.to_canonical(np.asarray(scan.image)))
        self.shape: tuple[int, int, int] = triple(int(s) for s in volume.shape)
        storage = torch.device("cpu") if offload_state_to_cpu else predictor.device
        cache = EmbeddingCache(storage_device=storage, capacity=cache_capacity,
                               storage_dtype=CACHE_DTYPES[check_cache_dtype(cache_dtype)])
        with self.autocast():
            self.state = predictor.init_state(volume, cache=cache, imagenet_norm=imagenet_norm,
                                              offload_state_to_cpu=offload_state_to_cpu)
        self._current: int | None = None
        self._interactions: dict[int, list[tuple[Click, ...]]] = {}
        #: lesion id -> canonical ``(H, W, F)`` bool mask of its latest interaction (read-only for callers)
        self.masks: dict[int, np.ndarray] = {}

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """The precision context every model call of this session runs in."""
        return precision_context(self.predictor.device, self.precision)

    @property
    def encode_count(self) -> int:
        """Frames encoded so far in this scan (each frame at most once with the default cache)."""
        return volume_state(self.state).cache.encode_count

    def segment_lesion(self, obj_id: int, clicks: Sequence[Click]) -> np.ndarray:
        """Segment one lesion from its full click history, treating later clicks as SAM2 corrections.

        The clicks already applied to this lesion form a prefix of ``clicks``; what follows the prefix is this
        interaction. When the lesion is the predictor's current object, the new clicks are added to it as SAM2
        corrections: they join the points of their frames (a frame tracked before is decoded with its previous mask
        logits as mask prompt and becomes a conditioning frame), the object's memory is kept, and the lesion is
        propagated forward and in reverse again from its earliest conditioning frame. A new lesion id starts a fresh
        object (the embedding cache and, for MOIS-SAM2, the exemplar bank survive). A lesion whose earlier
        interactions are no longer the current object (another lesion was clicked since) is replayed interaction by
        interaction, so the result equals the uninterrupted sequence. A history that changes or drops clicks restarts
        the lesion (:meth:`forget_lesion` first).

        Args:
            obj_id: object id of the lesion (MOIS-SAM2 exemplar keys use it).
            clicks: every click of this lesion so far, original-grid ``(i, j, k, positive)``.

        Returns:
            Canonical ``(H, W, F)`` bool mask: the object's conditioning frames and both propagation passes; empty
            while the history has no positive click.
        """
        clicks = tuple(Click(*click) for click in clicks)
        for click in clicks:
            self.scan.check_click(click)
        done = self._interactions.get(obj_id, [])
        applied = tuple(click for interaction in done for click in interaction)
        if clicks[: len(applied)] != applied:
            self.forget_lesion(obj_id)
            done, applied = [], ()
        new = clicks[len(applied):]
        if not new and obj_id in self.masks:
            return self.masks[obj_id].copy()
        if not any(click.positive for click in clicks):
            self.forget_lesion(obj_id)
            return np.zeros(self.shape, dtype=bool)
        interactions = [*done, new] if new else list(done)
        with self.autocast():
            previous = self.masks.get(obj_id)
            if self._current != obj_id:
                self.predictor.reset_objects(self.state)
                self._current = obj_id
                previous = None
                for count, interaction in enumerate(interactions[:-1], start=1):
                    previous = self._clicked_part(self._interact(obj_id, interaction, previous),
                                                  interactions[:count])
            mask = self._clicked_part(self._interact(obj_id, interactions[-1], previous), interactions)
        self._interactions[obj_id] = interactions
        self.masks[obj_id] = mask
        return mask.copy()

    def forget_lesion(self, obj_id: int) -> None:
        """Drop the lesion's interactions and mask (and, for MOIS-SAM2, its exemplars); the scan caches are kept."""
        self._interactions.pop(obj_id, None)
        self.masks.pop(obj_id, None)
        if self._current == obj_id:
            self._current = None
        bank = getattr(volume_state(self.state), "exemplars", None)
        if bank is not None:
            bank.remove_object(obj_id)

    def _interact(self, obj_id: int, clicks: Sequence[Click], previous: np.ndarray | None) -> np.ndarray:
        """Add ``clicks`` to the current object (frame by frame, ascending) and propagate both ways.

        Args:
            previous: canonical ``(H, W, F)`` mask of the object's previous interaction (``None`` for its first).

        Returns the canonical mask: every conditioning frame of the object plus what both passes track. With
        :attr:`correction_reuse_k` set and a ``previous`` mask, only the slices a correction reaches are re-tracked
        (:meth:`_retrack`); the others keep their ``previous`` masks.
        """
        grouped = group_clicks(clicks, self.scan)
        for frame, (points, labels) in grouped.items():
            self.predictor.add_new_points_or_box(self.state, frame, obj_id, points=points, labels=labels,
                                                 clear_old_points=False)
        if self.correction_reuse_k is None or previous is None:
            mask = np.zeros(self.shape, dtype=bool)
            for reverse in (False, True):
                for frame, foreground in self._track(obj_id, None, reverse=reverse):
                    mask[:, :, frame] |= foreground
        else:
            mask = previous.copy()
            self._retrack(obj_id, mask, min(grouped), reverse=False)
            self._retrack(obj_id, mask, max(grouped), reverse=True)
        for frame, logits in self._conditioning_logits(obj_id).items():
            mask[:, :, frame] |= self._foreground(logits)
        return mask

    def _track(self, obj_id: int, start: int | None, *,
               reverse: bool) -> Generator[tuple[int, np.ndarray], None, None]:
        """Track the current object from ``start`` (``None``: its outermost conditioning slice) in one direction.

        Yields ``(frame, (H, W) bool mask)`` per tracked slice. The predictor ends the pass after
        :attr:`early_stop_k` slices without the object; with :attr:`track_continuity` the pass also ends at the first
        slice that is not a conditioning slice and does not continue the previous slice's mask
        (:func:`continues_track`); that slice is not yielded.
        """
        conditioning = self._conditioning_frames(obj_id) if self.track_continuity else set()
        frames = self.predictor.propagate_in_video(self.state, start_frame_idx=start, reverse=reverse,
                                                   early_stop_k=self.early_stop_k)
        previous: np.ndarray | None = None
        try:
            for frame, _, logits in frames:
                foreground = self._foreground(logits)
                if (self.track_continuity and frame not in conditioning and previous is not None
                        and not continues_track(foreground, previous)):
                    return
                previous = foreground
                yield frame, foreground
        finally:
            frames.close()

    def _retrack(self, obj_id: int, mask: np.ndarray, start: int, *, reverse: bool) -> None:
        """Re-track the current object from ``start`` in one direction, updating ``mask`` ``(H, W, F)`` in place.

        Stops after :attr:`correction_reuse_k` consecutive slices whose new mask equals the one in ``mask`` (the
        correction no longer changes anything; the slices beyond keep theirs). A pass that ends for absence
        (:attr:`early_stop_k`) or a broken track (:attr:`track_continuity`) empties the slices beyond it, as the
        exact path leaves unreached slices empty.
        """
        assert self.correction_reuse_k is not None
        unchanged, last = 0, start
        frames = self._track(obj_id, start, reverse=reverse)
        for frame, foreground in frames:
            unchanged = unchanged + 1 if np.array_equal(foreground, mask[:, :, frame]) else 0
            mask[:, :, frame] = foreground
            last = frame
            if unchanged >= self.correction_reuse_k:
                frames.close()
                return
        if reverse:
            mask[:, :, :last] = False
        else:
            mask[:, :, last + 1:] = False

    def _clicked_part(self, mask: np.ndarray, interactions: Sequence[Sequence[Click]]) -> np.ndarray:
        """With :attr:`keep_clicked_components`, the components of the canonical ``(H, W, F)`` ``mask`` that contain a
        positive click of ``interactions`` (all of ``mask`` when none does); otherwise ``mask`` itself."""
        if not self.keep_clicked_components:
            return mask
        points = [tuple(int(v) for v in self.scan.view.ijk_to_canonical((click.i, click.j, click.k)))
                  for interaction in interactions for click in interaction if click.positive]
        kept = components_at(mask, points)
        return kept if kept.any() else mask

    def _conditioning_outputs(self, obj_id: int) -> dict[int, dict[str, Any]]:
        """sam2's outputs of the object's conditioning (clicked or corrected) slices, by slice index."""
        return self.state["output_dict_per_obj"][self.state["obj_id_to_idx"][obj_id]]["cond_frame_outputs"]

    def _conditioning_frames(self, obj_id: int) -> set[int]:
        """Indices of the object's conditioning slices."""
        return set(self._conditioning_outputs(obj_id))

    def _conditioning_logits(self, obj_id: int) -> dict[int, torch.Tensor]:
        """Frame-size ``(1, 1, H, W)`` logits of the object's conditioning slices."""
        device = self.state["device"]
        return {frame: self.predictor._get_orig_video_res_output(self.state, out["pred_masks"].to(device))[1]
                for frame, out in self._conditioning_outputs(obj_id).items()}

    def propagate(self, prompted: np.ndarray, mode: PropagationMode = "overlap") -> np.ndarray:
        """Semantic propagation from the exemplar bank (MOIS-SAM2 only).

        See docs/method.md, Propagation to unprompted lesions.

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
                self._current = None  # the CoM pass clicks objects of its own and resets them
        return np.asarray(result, dtype=bool) & ~prompted

    def to_original(self, mask: np.ndarray) -> np.ndarray:
        """Canonical ``(H, W, F)`` mask -> original ``(I, J, K)`` bool mask (exact permutation/flip)."""
        return np.ascontiguousarray(self.scan.view.from_canonical(mask)).astype(bool, copy=False)

    def close(self) -> None:
        """Free the embedding cache and the tracking state."""
        volume_state(self.state).cache.clear()
        self.state.clear()
        self._interactions.clear()
        self.masks.clear()
        self._current = None

    @staticmethod
    def _foreground(logits: torch.Tensor) -> np.ndarray:
        """``(1, 1, H, W)`` logits of the single tracked object -> ``(H, W)`` bool mask (logits > 0)."""
        return (logits[0, 0] > 0).cpu().numpy()
