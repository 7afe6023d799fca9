"""MOIS-SAM2 volume predictor: instance tracking as SAM2, plus exemplar creation and semantic propagation.

:class:`MOISSAM2Predictor` combines :class:`~.model.MOISSAM2Base` (exemplar attention, semantic decoding) with the
in-memory volume behaviour of :class:`~mois_sam2_nf.models.sam2.volume_predictor.VolumeInferenceMixin` (embedding
cache, native hole filling, early stop). Its API (docs/method.md, Volume inference):

- clicks (:meth:`add_new_points_or_box`) add *prompted* exemplars, propagation (:meth:`propagate_in_video`) adds
  *non-prompted* ones, to the exemplar bank kept in ``state["volume"].exemplars`` (:class:`MOISVolumeState`);
- :meth:`find_exemplars_in_slice` decodes one slice from the bank (semantic logits at frame size);
- :meth:`propagate_exemplars` runs the no-CoM semantic pass with the per-component overlap filter
  (docs/method.md, Overlap mode);
- :meth:`propagate_exemplars_com` runs the optional CoM pass: centre clicks on semantic components become new objects.

Creating exemplars never changes instance outputs. Frames are canonical coronal slices; masks are ``(H, W)`` per
frame, volumes ``(H, W, F)``; SAM2 points are ``(x, y) = (col, row)``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from tqdm import tqdm

from mois_sam2_nf.data.masks import distance_transform
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.mois_sam2.exemplar_bank import ExemplarBank
from mois_sam2_nf.models.mois_sam2.model import MOISSAM2Base
from mois_sam2_nf.models.sam2.postprocess import fill_holes
from mois_sam2_nf.models.sam2.volume_predictor import (
    VOLUME_KEY,
    EmbeddingCache,
    InferenceState,
    VolumeInferenceMixin,
    VolumeState,
    volume_state,
)

OverlapMode = Literal["per_component", "union"]
#: where the CoM pass looks for components: every slice (segmented there only), or the user-prompted slices
#: (each found object then propagated both ways)
ComSlices = Literal["all", "prompted"]

#: smallest component (pixels of the map the CoM clicks are detected on) that yields a CoM click: 40 x 16, the
#: reference's threshold scaled to 256^2 low-res masks (docs/method.md, CoM modes)
COM_MIN_AREA = 40 * 16
#: object ids of CoM objects start here, far from lesion ids (they never enter the exemplar bank)
COM_FIRST_OBJECT_ID = 1_000_000

#: 8-connectivity in 2-D (components of binarised semantic masks for the CoM clicks)
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass
class MOISVolumeState(VolumeState):
    """Per-scan extras of MOIS-SAM2: the embedding cache (inherited fields) plus the exemplar bank of the scan."""

    exemplars: ExemplarBank = field(default_factory=ExemplarBank)


def exemplar_bank(inference_state: InferenceState) -> ExemplarBank:
    """The exemplar bank of a MOIS-SAM2 inference state."""
    extras = volume_state(inference_state)
    if not isinstance(extras, MOISVolumeState):
        raise ValueError("inference state has no exemplar bank (not created by MOISSAM2Predictor.init_state)")
    return extras.exemplars


def component_overlap_keep(semantic: np.ndarray, prompted: np.ndarray, threshold: float,
                           mode: OverlapMode = "per_component") -> np.ndarray:
    """Semantic components of one slice that survive the overlap filter (docs/method.md, Overlap mode).

    Args:
        semantic: ``(H, W)`` bool semantic mask.
        prompted: ``(H, W)`` bool mask of the interactive lesions on the same slice.
        threshold: a component ``c`` is removed when ``|p ∩ c| / |c| >= threshold`` for some 4-connected component
            ``p`` of ``prompted`` (``"per_component"``), or for ``p = prompted`` as a whole (``"union"``).
        mode: ``"per_component"`` (reference) or ``"union"``.

    Returns:
        ``(H, W)`` bool mask of the kept 4-connected components of ``semantic``.
    """
    sem_labels, count = ndimage.label(semantic)
    if count == 0:
        return np.zeros(semantic.shape, dtype=bool)
    sizes = np.bincount(sem_labels.ravel(), minlength=count + 1)
    if mode == "union":
        overlap = np.bincount(sem_labels[prompted], minlength=count + 1)
    elif mode == "per_component":
        prompt_labels, prompt_count = ndimage.label(prompted)
        both = (sem_labels > 0) & (prompt_labels > 0)
        pairs = np.bincount(sem_labels[both] * (prompt_count + 1) + prompt_labels[both],
                            minlength=(count + 1) * (prompt_count + 1)).reshape(count + 1, prompt_count + 1)
        overlap = pairs.max(axis=1)
    else:
        raise ValueError(f"overlap_mode must be 'per_component' or 'union', got {mode!r}")
    removed = overlap >= threshold * np.maximum(sizes, 1)
    removed[0] = True
    return ~removed[sem_labels]


def component_click_points(probability: np.ndarray, threshold: float, min_area: int) -> list[tuple[float, float]]:
    """Centre clicks of the semantic components of one low-res slice.

    Args:
        probability: ``(h, w)`` sigmoid of the semantic logits.
        threshold: binarisation threshold (``probability >= threshold``).
        min_area: smallest 8-connected component area (pixels of this map) that yields a click.

    Returns:
        ``(x, y)`` points in this map's pixel coordinates: the distance-transform maximum of each component (first in
        raster order on ties; the map's border is no boundary, so a component that fills the whole map has infinite
        distances and gets the first pixel), in component label order.
    """
    labels, count = ndimage.label(probability >= threshold, structure=_EIGHT_CONNECTED)
    points: list[tuple[float, float]] = []
    for component in range(1, count + 1):
        region = labels == component
        if int(region.sum()) < min_area:
            continue
        distance = distance_transform(region)
        row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
        points.append((float(col), float(row)))
    return points


class MOISSAM2Predictor(MOISSAM2Base, VolumeInferenceMixin):
    """MOIS-SAM2 on in-memory volumes (the model ``_target_`` of a MOIS-SAM2 config for inference).

    Constructor keywords (besides the model's and :class:`VolumeInferenceMixin`'s):
    ``use_low_res_masks_for_com_detection`` -- detect CoM clicks on the low-res semantic mask (default, as the
    reference) instead of the mask upsampled to frame size.
    """

    def __init__(self, *args: Any, use_low_res_masks_for_com_detection: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.use_low_res_masks_for_com_detection = bool(use_low_res_masks_for_com_detection)

    @torch.inference_mode()
    def init_state(
        self,
        volume: np.ndarray,
        *,
        cache: EmbeddingCache | None = None,
        imagenet_norm: bool = False,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        exemplars: ExemplarBank | None = None,
    ) -> InferenceState:
        """As :meth:`VolumeInferenceMixin.init_state`, plus the scan's exemplar bank (a fresh, empty one by default)."""
        state = super().init_state(volume, cache=cache, imagenet_norm=imagenet_norm,
                                   offload_video_to_cpu=offload_video_to_cpu,
                                   offload_state_to_cpu=offload_state_to_cpu)
        base = volume_state(state)
        state[VOLUME_KEY] = MOISVolumeState(cache=base.cache, volume_shape=base.volume_shape,
                                            imagenet_norm=base.imagenet_norm,
                                            exemplars=exemplars if exemplars is not None else ExemplarBank())
        return state

    @torch.inference_mode()
    def reset_state(self, inference_state: InferenceState, reset_exemplars: bool = True) -> None:
        """Remove every object; also empty the exemplar bank unless ``reset_exemplars`` is False."""
        super().reset_state(inference_state)
        if reset_exemplars:
            exemplar_bank(inference_state).clear()

    def reset_objects(self, inference_state: InferenceState) -> None:
        """Drop every object but keep the scan caches and the exemplar bank."""
        self.reset_state(inference_state, reset_exemplars=False)

    def add_new_mask(self, *args: Any, **kwargs: Any) -> Any:
        """Reject mask prompts: MOIS-SAM2 volume inference takes point or box prompts only.

        See docs/method.md, Volume inference.
        """
        raise InputError("MOISSAM2Predictor: mask prompts are not accepted (use point or box prompts)")

    @torch.inference_mode()
    def add_new_points_or_box(
        self,
        inference_state: InferenceState,
        frame_idx: int,
        obj_id: int,
        points: Any = None,
        labels: Any = None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box: Any = None,
        add_exemplar: bool = True,
        is_com: bool = False,
    ) -> tuple[int, list[int], torch.Tensor]:
        """sam2's click step; then, if ``add_exemplar`` and the mask is non-empty, store a prompted exemplar.

        ``is_com`` marks a click made by the CoM pass (:meth:`propagate_exemplars_com`) rather than by the user: it
        never stores a prompted exemplar, so the bank keeps describing user-confirmed lesions only.

        Returns ``(frame_idx, obj_ids, logits (num_objects, 1, H, W))`` exactly as sam2 does.
        """
        result = super().add_new_points_or_box(inference_state, frame_idx, obj_id, points=points, labels=labels,
                                               clear_old_points=clear_old_points, normalize_coords=normalize_coords,
                                               box=box)
        if add_exemplar and not is_com:
            obj_idx = inference_state["obj_id_to_idx"][obj_id]
            temp = inference_state["temp_output_dict_per_obj"][obj_idx]
            out = temp["cond_frame_outputs"].get(frame_idx) or temp["non_cond_frame_outputs"][frame_idx]
            _, _, feats, _, sizes = self._get_image_feature(inference_state, frame_idx, batch_size=1)
            exemplar = self.exemplar_from_output(obj_id, frame_idx, out, is_prompted=True,
                                                 current_vision_feats=feats, feat_sizes=sizes)
            if exemplar is not None:
                exemplar_bank(inference_state).add(exemplar)
        return result

    @torch.inference_mode()
    def propagate_in_video(
        self,
        inference_state: InferenceState,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
        early_stop_k: int | None = None,
        obj_id: int | None = None,
        add_exemplar: bool = True,
    ) -> Generator[tuple[int, list[int], torch.Tensor], None, None]:
        """Instance propagation (with optional early stop); each propagated frame with a non-empty mask adds a
        non-prompted exemplar of every object (or only of ``obj_id``) when ``add_exemplar``.

        Yields ``(frame_idx, obj_ids, logits (num_objects, 1, H, W))``.
        """
        frames = super().propagate_in_video(inference_state, start_frame_idx=start_frame_idx,
                                            max_frame_num_to_track=max_frame_num_to_track, reverse=reverse,
                                            early_stop_k=early_stop_k)
        for frame_idx, obj_ids, logits in frames:
            if add_exemplar:
                self._add_nonprompted_exemplars(inference_state, frame_idx, obj_id)
            yield frame_idx, obj_ids, logits

    def _add_nonprompted_exemplars(self, inference_state: InferenceState, frame_idx: int, obj_id: int | None) -> None:
        bank = exemplar_bank(inference_state)
        for obj_idx, outputs in inference_state["output_dict_per_obj"].items():
            current_id = inference_state["obj_idx_to_id"][obj_idx]
            out = outputs["non_cond_frame_outputs"].get(frame_idx)
            if out is None or (obj_id is not None and current_id != obj_id):
                continue
            exemplar = self.exemplar_from_output(current_id, frame_idx, out, is_prompted=False)
            if exemplar is not None:
                bank.add(exemplar)

    @torch.inference_mode()
    def find_exemplars_in_slice(
        self,
        inference_state: InferenceState,
        frame_idx: int,
        binarization_threshold: float = 0.5,
        min_area_threshold: int = 1,
    ) -> tuple[int, list[int], torch.Tensor, list[tuple[float, float]]]:
        """Semantic segmentation of one slice from the scan's exemplar bank.

        Args:
            frame_idx: slice index.
            binarization_threshold: sigmoid threshold for the component clicks (CoM mode).
            min_area_threshold: smallest component area that yields a click, in pixels of the map the clicks are
                detected on (the low-res mask, or the frame-size mask when ``use_low_res_masks_for_com_detection`` is
                off).

        Returns:
            ``(frame_idx, obj_ids, logits (1, 1, H, W) float32 at frame size, points)``; ``points`` are centre clicks
            ``(x, y)`` in frame pixels, one per component of the binarised semantic mask (see
            :func:`component_click_points`).
        """
        _, _, feats, pos, sizes = self._get_image_feature(inference_state, frame_idx, batch_size=1)
        exemplars = list(exemplar_bank(inference_state))
        out = self.track_semantic_exemplars(frame_idx, feats, pos, sizes, exemplars)
        low_res = fill_holes(out["low_res_masks"].float(), self.hole_fill_area)
        height, width = inference_state["video_height"], inference_state["video_width"]
        logits = F.interpolate(low_res, size=(height, width), mode="bilinear", align_corners=False)
        detection = low_res if self.use_low_res_masks_for_com_detection else logits
        probability = torch.sigmoid(detection[0, 0]).cpu().numpy()
        scale = np.array([width / detection.shape[-1], height / detection.shape[-2]])
        upper = np.array([width - 1, height - 1])
        points: list[tuple[float, float]] = []
        for p in component_click_points(probability, binarization_threshold, min_area_threshold):
            x, y = np.clip((np.array(p) + 0.5) * scale - 0.5, 0, upper)
            points.append((float(x), float(y)))
        return frame_idx, inference_state["obj_ids"], logits, points

    @torch.inference_mode()
    def propagate_exemplars(
        self,
        inference_state: InferenceState,
        prev_mask: np.ndarray,
        overlap_threshold: float = 0.5,
        overlap_mode: OverlapMode = "per_component",
    ) -> np.ndarray:
        """No-CoM semantic propagation over every slice (docs/method.md, Overlap mode).

        Args:
            prev_mask: canonical ``(H, W, F)`` bool union ``G`` of the interactive lesion masks.
            overlap_threshold: semantic components overlapping a prompted component by at least this fraction of their
                own area are dropped.
            overlap_mode: ``"per_component"`` (reference) or ``"union"``.

        Returns:
            ``(H, W, F)`` bool: ``G`` OR the kept semantic components of every slice.
        """
        prompted = _check_prev_mask(inference_state, prev_mask)
        result = prompted.copy()
        for frame_idx in tqdm(range(inference_state["num_frames"]), desc="semantic propagation", leave=False):
            logits = self.find_exemplars_in_slice(inference_state, frame_idx)[2]
            semantic = (logits[0, 0] > 0).cpu().numpy()
            result[:, :, frame_idx] |= component_overlap_keep(semantic, prompted[:, :, frame_idx], overlap_threshold,
                                                              overlap_mode)
        return result

    @torch.inference_mode()
    def propagate_exemplars_com(
        self,
        inference_state: InferenceState,
        prev_mask: np.ndarray,
        slices: ComSlices = "all",
        binarization_threshold: float = 0.5,
        min_area_threshold: int = COM_MIN_AREA,
        early_stop_k: int | None = None,
    ) -> np.ndarray:
        """CoM semantic propagation (docs/method.md, CoM modes): semantic components become clicked objects.

        On each searched slice the bank's semantic mask is binarised (sigmoid >= ``binarization_threshold``) and every
        8-connected component of at least ``min_area_threshold`` pixels gives one positive click at its
        distance-transform maximum (:meth:`find_exemplars_in_slice`). A click inside the current prediction (``G`` plus
        what this pass has found so far) is skipped; any other starts a new object, clicked with ``is_com=True``.

        Args:
            prev_mask: canonical ``(H, W, F)`` bool union ``G`` of the interactive lesion masks.
            slices: ``"all"`` searches every slice and segments each object on its own slice only; ``"prompted"``
                searches the slices the user clicked (the prompted exemplars' frames) and propagates each object
                forward and in reverse from its slice.
            early_stop_k: early stop of those propagations (``None`` = the predictor's default).

        Returns:
            ``(H, W, F)`` bool: ``G`` OR the masks of the CoM objects. The objects are removed afterwards; the exemplar
            bank is not changed (CoM objects add no exemplars), so every slice is decoded from the same bank.
        """
        prompted = _check_prev_mask(inference_state, prev_mask)
        if slices == "all":
            frames = list(range(inference_state["num_frames"]))
        elif slices == "prompted":
            frames = sorted({e.frame_idx for e in exemplar_bank(inference_state) if e.is_prompted})
        else:
            raise ValueError(f"slices must be 'all' or 'prompted', got {slices!r}")
        result = prompted.copy()
        obj_id = COM_FIRST_OBJECT_ID
        for frame_idx in tqdm(frames, desc="CoM propagation", leave=False):
            points = self.find_exemplars_in_slice(inference_state, frame_idx, binarization_threshold,
                                                  min_area_threshold)[3]
            for x, y in points:
                if result[round(y), round(x), frame_idx]:
                    continue
                self.reset_objects(inference_state)
                logits = self.add_new_points_or_box(inference_state, frame_idx, obj_id, points=[[x, y]], labels=[1],
                                                    is_com=True)[2]
                result[:, :, frame_idx] |= (logits[0, 0] > 0).cpu().numpy()
                if slices == "prompted":
                    for reverse in (False, True):
                        for frame, _, frame_logits in self.propagate_in_video(
                                inference_state, start_frame_idx=frame_idx, reverse=reverse,
                                early_stop_k=early_stop_k, add_exemplar=False):
                            result[:, :, frame] |= (frame_logits[0, 0] > 0).cpu().numpy()
                obj_id += 1
        self.reset_objects(inference_state)
        return result


def _check_prev_mask(inference_state: InferenceState, prev_mask: np.ndarray) -> np.ndarray:
    """``prev_mask`` as a bool array; ``ValueError`` unless its shape is the scan's canonical ``(H, W, F)``."""
    prompted = np.asarray(prev_mask, dtype=bool)
    expected = volume_state(inference_state).volume_shape
    if prompted.shape != expected:
        raise ValueError(f"prev_mask shape {prompted.shape} != volume shape {expected}")
    return prompted
