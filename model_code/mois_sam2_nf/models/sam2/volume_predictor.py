"""In-memory volume inference for SAM2-family video predictors, with a per-scan embedding cache.

A scan is handed over as the canonical ``(H, W, F)`` float32 volume in ``[0, 1]`` (rows S->I, columns R->L, frames
P->A; docs/synthetic_data.md, Canonical view). Each coronal frame becomes one "video frame" of shape ``(3, S, S)``
with ``S = image_size``. Differences from sam2's :class:`~sam2.sam2_video_predictor.SAM2VideoPredictor`:

- no JPEG folder: frames come from memory (:func:`frames_from_volume`);
- every frame is encoded at most once per scan (:class:`EmbeddingCache`), shared by all objects, clicks and
  propagation passes (upstream keeps only the most recent frame);
- native hole filling (:mod:`.postprocess`), identical on CPU and CUDA;
- optional early stop of propagation after ``k`` consecutive frames where every object is absent;
- memory tensors are cast to the query dtype before memory attention, so CPU fp32 without autocast works.

The inference state stays the dict sam2's methods expect; what this module adds lives in one typed object,
``state["volume"]`` (:class:`VolumeState`).
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sam2.sam2_video_predictor as _upstream_video
import torch
import torch.nn.functional as F
from sam2.sam2_video_predictor import SAM2VideoPredictor

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.sam2.postprocess import fill_holes

#: ImageNet channel statistics used by the official SAM2 weights
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: key of the typed per-scan extras inside sam2's inference-state dict
VOLUME_KEY = "volume"

InferenceState = dict[str, Any]


def frames_from_volume(volume: np.ndarray, image_size: int, *, imagenet_norm: bool) -> torch.Tensor:
    """Turn a canonical volume into model input frames.

    Args:
        volume: ``(H, W, F)`` float array, values in ``[0, 1]`` (canonical coronal view).
        image_size: side ``S`` of the square model input.
        imagenet_norm: subtract the ImageNet mean and divide by its std after resizing (official SAM2 weights).

    Returns:
        ``(F, 3, S, S)`` float32 CPU tensor: each frame replicated to 3 channels, resized to ``S x S`` without keeping
        the aspect ratio (bicubic, antialias), clamped to ``[0, 1]`` and optionally normalised.
    """
    if volume.ndim != 3:
        raise InputError(f"volume must be 3-D (H, W, F), got shape {tuple(volume.shape)}")
    if volume.shape[2] == 0 or volume.shape[0] == 0 or volume.shape[1] == 0:
        raise InputError(f"volume has an empty axis: shape {tuple(volume.shape)}")
    frames = torch.from_numpy(np.ascontiguousarray(np.moveaxis(volume.astype(np.float32), 2, 0)))[:, None]
    frames = F.interpolate(frames, size=(image_size, image_size), mode="bicubic", align_corners=False,
                           antialias=True).clamp_(0.0, 1.0)
    frames = frames.repeat(1, 3, 1, 1)
    if imagenet_norm:
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[None, :, None, None]
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[None, :, None, None]
        frames = (frames - mean) / std
    return frames


@dataclass
class EmbeddingCache:
    """Backbone features of the frames of one scan (``forward_image`` output, after the SAM decoder's conv_s0/s1).

    Attributes:
        storage_device: where features are kept (the compute device, or CPU when offloading).
        capacity: most frames kept (least recently used evicted); ``None`` keeps every frame, so each frame is
            encoded at most once per scan. ``1`` mimics upstream sam2 (the "naive" path of the benchmark).
        storage_dtype: dtype the features are kept in; ``None`` keeps the encoder's dtype (exact). ``torch.bfloat16``
            halves the cache (B+ at 1024 px: 16.8 -> 8.4 MB per frame) and rounds the features, so it can change a
            mask; they are handed out again in float32.
        features: frame index -> per-level features ``[(1, C_l, h_l, w_l), ...]`` (fine to coarse).
        pos_enc: per-level position encodings ``[(1, 256, h_l, w_l), ...]``; they depend only on the shape, so one
            copy serves every frame.
        encode_count: number of frames encoded so far (cache misses).
    """

    storage_device: torch.device
    capacity: int | None = None
    storage_dtype: torch.dtype | None = None
    features: OrderedDict[int, list[torch.Tensor]] = field(default_factory=OrderedDict)
    pos_enc: list[torch.Tensor] | None = None
    encode_count: int = 0

    def lookup(self, frame_idx: int, device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]] | None:
        """Features and position encodings of ``frame_idx`` on ``device``, or ``None`` on a miss.

        Features kept in a reduced :attr:`storage_dtype` come back as float32.
        """
        levels = self.features.get(frame_idx)
        if levels is None or self.pos_enc is None:
            return None
        self.features.move_to_end(frame_idx)
        dtype = torch.float32 if self.storage_dtype is not None else None
        return ([x.to(device, dtype=dtype, non_blocking=True) for x in levels],
                [x.to(device, non_blocking=True) for x in self.pos_enc])

    def store(self, frame_idx: int, levels: list[torch.Tensor], pos_enc: list[torch.Tensor]) -> None:
        """Keep the features of a freshly encoded frame (and the shared position encodings on first use)."""
        self.encode_count += 1
        self.features[frame_idx] = [x.to(self.storage_device, dtype=self.storage_dtype, non_blocking=True)
                                    for x in levels]
        if self.pos_enc is None:
            self.pos_enc = [x.to(self.storage_device, non_blocking=True) for x in pos_enc]
        while self.capacity is not None and len(self.features) > self.capacity:
            self.features.popitem(last=False)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached features and position encodings."""
        tensors = [x for levels in self.features.values() for x in levels] + list(self.pos_enc or [])
        return sum(x.numel() * x.element_size() for x in tensors)

    def clear(self) -> None:
        """Drop every cached tensor (the encode counter is kept)."""
        self.features.clear()
        self.pos_enc = None


@dataclass
class VolumeState:
    """Typed per-scan extras stored in ``state["volume"]``.

    Attributes:
        cache: embedding cache shared by all objects, clicks and passes of the scan.
        volume_shape: canonical ``(H, W, F)`` of the scan.
        imagenet_norm: whether the frames were ImageNet-normalised.
    """

    cache: EmbeddingCache
    volume_shape: tuple[int, int, int]
    imagenet_norm: bool


def volume_state(inference_state: InferenceState) -> VolumeState:
    """The typed extras of an inference state created by :meth:`VolumeInferenceMixin.init_state`."""
    extras = inference_state.get(VOLUME_KEY)
    if not isinstance(extras, VolumeState):
        raise ValueError("inference state was not created by a volume predictor's init_state")
    return extras


def cast_memory_to_query_dtype(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook for memory attention: cast ``memory`` / ``memory_pos`` to the dtype of ``curr``.

    sam2 stores memory features as bf16; outside autocast a memory without fp32 pointer tokens would otherwise hit
    ``mat1 and mat2 must have the same dtype``. The cast equals the promotion ``torch.cat`` does when pointers exist.
    Accepts sam2's ``MemoryAttention.forward(curr, memory, curr_pos, memory_pos, ...)`` signature, positional or by
    name.
    """
    names = ("curr", "memory", "curr_pos", "memory_pos")
    bound = dict(zip(names, args)) | kwargs
    curr = bound["curr"]
    dtype = (curr[0] if isinstance(curr, (list, tuple)) else curr).dtype
    casted = {key: bound[key].to(dtype) for key in ("memory", "memory_pos")
              if isinstance(bound.get(key), torch.Tensor) and bound[key].dtype != dtype}
    if not casted:
        return args, kwargs
    args = tuple(casted.get(name, value) for name, value in zip(names, args))
    kwargs = {key: casted.get(key, value) for key, value in kwargs.items()}
    return args, kwargs


def install_memory_dtype_hook(attention: torch.nn.Module) -> None:
    """Register :func:`cast_memory_to_query_dtype` on ``attention`` once (idempotent)."""
    if getattr(attention, "_memory_dtype_hook_installed", False):
        return
    attention.register_forward_pre_hook(cast_memory_to_query_dtype, with_kwargs=True)
    attention._memory_dtype_hook_installed = True  # type: ignore[assignment]  # torch types Module attributes as Tensor | Module


class VolumeInferenceMixin(SAM2VideoPredictor):
    """Volume-inference behaviour on top of sam2's video predictor (see the module docstring).

    Constructor keywords (besides sam2's): ``fill_hole_area`` -- largest hole (pixels of the low-res mask) filled by
    the native hole filling, kept in :attr:`hole_fill_area` (sam2's own ``fill_hole_area`` stays 0 because its
    implementation needs the missing ``_C`` extension); ``early_stop_k`` -- default early stop for
    :meth:`propagate_in_video` (``None`` = exact, full propagation); ``add_all_frames_to_correct_as_cond`` --
    sam2's flag, **True** here (upstream: False): a frame that receives a correction click after it was tracked
    becomes a conditioning frame, as corrected frames are in training; with False the correction would be tracked
    over (lost) by the next propagation pass.
    """

    def __init__(self, fill_hole_area: int = 0, early_stop_k: int | None = None,
                 add_all_frames_to_correct_as_cond: bool = True, **kwargs: Any) -> None:
        super().__init__(fill_hole_area=0, add_all_frames_to_correct_as_cond=add_all_frames_to_correct_as_cond,
                         **kwargs)
        self.hole_fill_area = int(fill_hole_area)
        self.early_stop_k = early_stop_k
        install_memory_dtype_hook(self.memory_attention)

    @torch.inference_mode()
    def init_state(
        self,
        volume: np.ndarray,
        *,
        cache: EmbeddingCache | None = None,
        imagenet_norm: bool = False,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
    ) -> InferenceState:
        """Create the inference state of one scan.

        Args:
            volume: canonical ``(H, W, F)`` float32 volume in ``[0, 1]``.
            cache: embedding cache to use (a fresh, unbounded one by default); it must belong to this volume.
            imagenet_norm: ImageNet-normalise frames (plain SAM2 with official weights).
            offload_video_to_cpu: keep the input frames on the CPU.
            offload_state_to_cpu: keep tracking outputs and the embedding cache on the CPU.

        Returns:
            sam2's inference-state dict (frames = coronal slices) plus ``state["volume"]`` (:class:`VolumeState`).
            Nothing is encoded yet; frames are encoded on first use.
        """
        device = self.device
        storage = torch.device("cpu") if offload_state_to_cpu else device
        images = frames_from_volume(volume, self.image_size, imagenet_norm=imagenet_norm)
        if not offload_video_to_cpu:
            images = images.to(device)
        height, width, num_frames = (int(s) for s in volume.shape)
        state: InferenceState = {
            "images": images,
            "num_frames": num_frames,
            "offload_video_to_cpu": offload_video_to_cpu,
            "offload_state_to_cpu": offload_state_to_cpu,
            "video_height": height,
            "video_width": width,
            "device": device,
            "storage_device": storage,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": OrderedDict(),
            "obj_idx_to_id": OrderedDict(),
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }
        state[VOLUME_KEY] = VolumeState(
            cache=cache if cache is not None else EmbeddingCache(storage_device=storage),
            volume_shape=(height, width, num_frames),
            imagenet_norm=imagenet_norm,
        )
        return state

    def _get_image_feature(
        self, inference_state: InferenceState, frame_idx: int, batch_size: int
    ) -> tuple[torch.Tensor, dict, list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]]]:
        """sam2's per-frame features, read from the scan's embedding cache (encoding the frame on a miss).

        Returns ``(image (B,3,S,S), backbone_out, vision_feats [(h*w, B, C)], vision_pos [(h*w, B, C)], feat_sizes)``
        exactly as upstream does.
        """
        cache = volume_state(inference_state).cache
        device = inference_state["device"]
        image = inference_state["images"][frame_idx].to(device).float().unsqueeze(0)
        cached = cache.lookup(frame_idx, device)
        if cached is None:
            encoded = self.forward_image(image)
            cache.store(frame_idx, encoded["backbone_fpn"], encoded["vision_pos_enc"])
            # read back what was stored, so a frame's features are the same on first use as on every later use
            cached = cache.lookup(frame_idx, device)
            assert cached is not None  # the cache keeps at least the frame just stored
        levels, pos_enc = cached
        backbone_out = {
            "backbone_fpn": [x.expand(batch_size, -1, -1, -1) for x in levels],
            "vision_pos_enc": [x.expand(batch_size, -1, -1, -1) for x in pos_enc],
        }
        return (image.expand(batch_size, -1, -1, -1),) + self._prepare_backbone_features(backbone_out)

    def _run_single_frame_inference(self, inference_state: InferenceState, *args: Any,
                                    **kwargs: Any) -> tuple[dict, torch.Tensor]:
        """Upstream single-frame step followed by native hole filling of the low-res mask logits."""
        compact, pred_masks = super()._run_single_frame_inference(inference_state, *args, **kwargs)
        if self.hole_fill_area > 0:
            pred_masks = fill_holes(pred_masks, self.hole_fill_area)
            compact["pred_masks"] = pred_masks.to(inference_state["storage_device"], non_blocking=True)
        return compact, pred_masks

    def reset_objects(self, inference_state: InferenceState) -> None:
        """Drop every object (inputs, outputs, ids) but keep the scan: frames, embedding cache, exemplar bank."""
        self.reset_state(inference_state)

    def objects_absent(self, inference_state: InferenceState, frame_idx: int) -> bool:
        """True when every object's output on ``frame_idx`` has an object score <= 0 (or no output exists)."""
        for outputs in inference_state["output_dict_per_obj"].values():
            out = outputs["cond_frame_outputs"].get(frame_idx) or outputs["non_cond_frame_outputs"].get(frame_idx)
            if out is not None and bool((out["object_score_logits"] > 0).any()):
                return False
        return True

    @torch.inference_mode()
    def propagate_in_video(
        self,
        inference_state: InferenceState,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
        early_stop_k: int | None = None,
    ) -> Generator[tuple[int, list[int], torch.Tensor], None, None]:
        """sam2's propagation, optionally stopped after ``k`` consecutive frames where every object is absent.

        Args:
            early_stop_k: overrides :attr:`early_stop_k` for this call; ``None`` falls back to it (and ``None`` there
                means exact, full propagation).

        Yields:
            ``(frame_idx, obj_ids, logits (num_objects, 1, H, W))`` at frame resolution. Frames after an early stop are
            not yielded (callers treat them as empty).
        """
        k = self.early_stop_k if early_stop_k is None else early_stop_k
        frames = super().propagate_in_video(inference_state, start_frame_idx=start_frame_idx,
                                            max_frame_num_to_track=max_frame_num_to_track, reverse=reverse)
        absent = 0
        with _quiet_upstream_progress():
            for frame_idx, obj_ids, logits in frames:
                yield frame_idx, obj_ids, logits
                if k is None:
                    continue
                absent = absent + 1 if self.objects_absent(inference_state, frame_idx) else 0
                if absent >= k:
                    frames.close()
                    return


class _QuietUpstreamProgress(threading.local):
    """Per-thread depth of :func:`_quiet_upstream_progress` blocks (0 = sam2's bars as usual)."""

    depth: int = 0


_QUIET = _QuietUpstreamProgress()
#: sam2's own ``tqdm`` (also when this module is imported again and finds its wrapper installed)
_UPSTREAM_TQDM = getattr(_upstream_video.tqdm, "upstream", _upstream_video.tqdm)


def _upstream_tqdm(*args: Any, **kwargs: Any) -> Any:
    """sam2's ``tqdm``, disabled inside a :func:`_quiet_upstream_progress` block of the calling thread."""
    if _QUIET.depth:
        kwargs["disable"] = True
    return _UPSTREAM_TQDM(*args, **kwargs)


# installed once: the switch is per thread, so concurrent propagations (the app's worker threads) and any other
# thread using sam2 never see each other's setting
_upstream_tqdm.upstream = _UPSTREAM_TQDM  # type: ignore[attr-defined]
_upstream_video.tqdm = _upstream_tqdm


@contextlib.contextmanager
def _quiet_upstream_progress() -> Iterator[None]:
    """Silence sam2's per-call "propagate in video" bar (hundreds per scan) in this thread; our callers show
    scan-level progress instead."""
    _QUIET.depth += 1
    try:
        yield
    finally:
        _QUIET.depth -= 1


class SAM2VolumePredictor(VolumeInferenceMixin):
    """Plain SAM2 on in-memory volumes (use as the model ``_target_`` of a sam2 config)."""
