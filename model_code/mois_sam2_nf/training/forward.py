"""Training-mode forward of SAM2 and MOIS-SAM2 over one clip (interactive tracking with simulated clicks).

The model is a sam2 ``SAM2Base`` (or a subclass); only its documented building blocks are called
(``forward_image``, ``_prepare_backbone_features``, ``_track_step``, ``_forward_sam_heads``, ``_use_multimask``,
``_encode_memory_in_output``). The objects of all clips of a :class:`ClipBatch` form SAM2's batch dimension ``N``
(each object reads its own clip's frame features), so a step of ``B`` clips costs one backbone call on ``B·T`` frames
and one tracking pass per frame -- what keeps a GPU busy. The clips of a batch share one prompt plan. Frames are
processed one at a time in the order of :meth:`PromptPlan.processing_order` (initial conditioning frames first, then
the rest in ascending order), each frame seeing the memories of the frames processed before it.

Per frame: one tracking/decoding pass (with the initial click on an initial conditioning frame), then, on corrected
frames, ``num_correction_points`` extra passes, each adding one click drawn from the current error and feeding the
previous low-res logits back as mask prompt. The memory of the frame is encoded from the last pass; corrected frames
are stored as conditioning frames.

MOIS-SAM2 (:class:`MOISClipForward`, the reference's "stream" mode): every clip of the batch has its own exemplar bank,
empty at the start; after each frame's tracking step every object with a non-empty mask on that frame becomes a detached
exemplar of its clip's bank (prompted on initial conditioning frames), as long as the bank holds fewer than
``max_store``; then each clip's semantic mask of the frame is predicted from its bank as it stands. The semantic
object-score gate is off in training by default (``semantic_gate=False``): a gated mask is a constant, so the semantic
branch and exemplar attention would get no gradient on any frame whose semantic object score is negative; the object
score itself is learned by its own loss term and gates at inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sam2.modeling.sam2_base import SAM2Base

from mois_sam2_nf.models.mois_sam2.exemplar_bank import ExemplarBank
from mois_sam2_nf.models.mois_sam2.model import MOISSAM2Base
from mois_sam2_nf.training.dataset import ClipBatch
from mois_sam2_nf.training.outputs import FrameOutput, StepOutput
from mois_sam2_nf.training.prompts import (
    PromptPlan,
    PromptSettings,
    append_clicks,
    correction_source,
    plan_prompts,
    sample_error_clicks,
)


@dataclass
class ClipOutput:
    """Result of one clip pass: per-frame outputs (ascending frame order) and the prompt plan used."""

    frames: list[FrameOutput]
    plan: PromptPlan
    extras: dict[str, float] = field(default_factory=dict)


def _step(sam_outputs: tuple) -> StepOutput:
    _, high_multi, ious, _, high, _, obj_scores = sam_outputs
    return StepOutput(multimask_logits=high_multi, ious=ious, object_score_logits=obj_scores, mask_logits=high)


@dataclass(frozen=True)
class FrameFeatures:
    """Backbone features of one frame gathered for a batch of objects (sam2's flattened ``(HW, N, C)`` layout)."""

    vision_feats: list[torch.Tensor]
    vision_pos: list[torch.Tensor]
    feat_sizes: list[tuple[int, int]]


class ClipForward(torch.nn.Module):
    """A ``torch.nn.Module`` around a SAM2 model whose ``forward`` runs a whole clip (the unit DDP wraps).

    Args:
        model: a sam2 ``SAM2Base`` in training mode (``model.train()``).
        prompts: click-simulation settings.
    """

    def __init__(self, model: SAM2Base, prompts: PromptSettings) -> None:
        super().__init__()
        self.model = model
        self.prompts = prompts

    def encode_clip(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]]]:
        """Backbone of all frames of all clips at once: ``images`` ``(B, T, 3, S, S)`` -> flattened ``(HW, B·T, C)``
        levels (frame ``t`` of clip ``b`` at index ``b·T + t``)."""
        backbone_out = self.model.forward_image(images.flatten(0, 1))
        _, feats, pos, sizes = self.model._prepare_backbone_features(backbone_out)
        return feats, pos, sizes

    @staticmethod
    def frame_features(
        feats: list[torch.Tensor], pos: list[torch.Tensor], sizes: list[tuple[int, int]], index: torch.Tensor
    ) -> FrameFeatures:
        """Features at the flat frame indices ``index`` ``(K,)`` (one per batch entry; copies, contiguous)."""
        return FrameFeatures(
            vision_feats=[x.index_select(1, index) for x in feats],
            vision_pos=[x.index_select(1, index) for x in pos],
            feat_sizes=list(sizes),
        )

    def track_frame(
        self,
        frame: int,
        plan: PromptPlan,
        features: FrameFeatures,
        gt: torch.Tensor,
        output_dict: dict,
        num_frames: int,
        rng: np.random.Generator,
    ) -> tuple[dict, list[StepOutput]]:
        """Track, click and correct one frame; returns sam2's per-frame output dict and the decoder passes.

        Args:
            gt: bool ``(N, S, S)`` targets of the frame (clicks are simulated from them).
            output_dict: sam2 memory dict (``cond_frame_outputs`` / ``non_cond_frame_outputs``); not modified here.
        """
        model = self.model
        is_init = frame in plan.init_cond_frames
        point_inputs = None
        if is_init:
            points, labels = sample_error_clicks(gt, None, rng)
            point_inputs = append_clicks(None, points, labels)
        current_out, sam_outputs, high_res_features, pix_feat = model._track_step(
            frame, is_init, features.vision_feats, features.vision_pos, features.feat_sizes,
            point_inputs, None, output_dict, num_frames, False, None,
        )
        steps = [_step(sam_outputs)]
        if frame in plan.correction_frames:
            for _ in range(self.prompts.num_correction_points):
                points, labels = sample_error_clicks(gt, correction_source(sam_outputs[4], self.prompts, rng), rng)
                point_inputs = append_clicks(point_inputs, points, labels)
                sam_outputs = model._forward_sam_heads(
                    backbone_features=pix_feat,
                    point_inputs=point_inputs,
                    mask_inputs=sam_outputs[3],
                    high_res_features=high_res_features,
                    multimask_output=model._use_multimask(is_init, point_inputs),
                )
                steps.append(_step(sam_outputs))
        _, _, _, low_res, high_res, obj_ptr, obj_scores = sam_outputs
        current_out.update(pred_masks=low_res, pred_masks_high_res=high_res, obj_ptr=obj_ptr)
        current_out["point_inputs"] = point_inputs
        model._encode_memory_in_output(
            features.vision_feats, features.feat_sizes, point_inputs, True, high_res, obj_scores, current_out
        )
        current_out["object_score_logits"] = obj_scores
        return current_out, steps

    def forward(self, clip: ClipBatch, rng: np.random.Generator) -> ClipOutput:
        """Run the clips; every random choice (prompt plan, clicks) comes from ``rng``."""
        num_frames = clip.num_frames
        plan = plan_prompts(num_frames, self.prompts, rng)
        feats, pos, sizes = self.encode_clip(clip.images)
        output_dict: dict[str, dict[int, dict]] = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        frames: dict[int, FrameOutput] = {}
        for frame in plan.processing_order(num_frames):
            features = self.frame_features(feats, pos, sizes, clip.object_clip * num_frames + frame)
            current_out, steps = self.track_frame(
                frame, plan, features, clip.masks[:, frame], output_dict, num_frames, rng
            )
            kind = "cond_frame_outputs" if frame in plan.correction_frames else "non_cond_frame_outputs"
            output_dict[kind][frame] = current_out
            frames[frame] = FrameOutput(frame=frame, steps=steps)
            self.after_frame(frame, plan, current_out, frames[frame], clip, feats, pos, sizes)
        return ClipOutput(frames=[frames[t] for t in sorted(frames)], plan=plan, extras=self.clip_extras())

    def after_frame(
        self,
        frame: int,
        plan: PromptPlan,
        current_out: dict,
        frame_output: FrameOutput,
        clip: ClipBatch,
        feats: list[torch.Tensor],
        pos: list[torch.Tensor],
        sizes: list[tuple[int, int]],
    ) -> None:
        """Hook run after each frame's tracking step (MOIS-SAM2 adds exemplars and the semantic pass here)."""

    def clip_extras(self) -> dict[str, float]:
        """Scalars to log for the finished clip (none for plain SAM2)."""
        return {}


class MOISClipForward(ClipForward):
    """:class:`ClipForward` for a ``MOISSAM2Base``: adds exemplars and one semantic prediction per frame.

    Args:
        model: a ``MOISSAM2Base`` in training mode.
        prompts: click-simulation settings.
        max_store: most exemplars stored per clip (the bank cap; the model's ``num_max_exemplars`` caps how many a
            semantic call uses).
        semantic_gate: apply the semantic object-score gate in training (blocks the mask gradient of gated frames).
    """

    def __init__(
        self, model: MOISSAM2Base, prompts: PromptSettings, max_store: int, semantic_gate: bool = False
    ) -> None:
        super().__init__(model, prompts)
        self.max_store = max_store
        self.semantic_gate = semantic_gate
        self.banks: list[ExemplarBank] = []

    def forward(self, clip: ClipBatch, rng: np.random.Generator) -> ClipOutput:
        """Give every clip an empty bank, then run the clips (see :meth:`ClipForward.forward`)."""
        self.banks = [ExemplarBank(max_size=self.max_store) for _ in range(clip.num_clips)]
        return super().forward(clip, rng)

    def after_frame(
        self,
        frame: int,
        plan: PromptPlan,
        current_out: dict,
        frame_output: FrameOutput,
        clip: ClipBatch,
        feats: list[torch.Tensor],
        pos: list[torch.Tensor],
        sizes: list[tuple[int, int]],
    ) -> None:
        """Store the frame's exemplars in their clips' banks (no gradient), then decode each clip's semantic mask;
        ``frame_output.semantic`` holds the ``B`` clips' predictions along its object axis."""
        steps = []
        for b, bank in enumerate(self.banks):
            flat = torch.tensor([b * clip.num_frames + frame], device=clip.images.device)
            single = self.frame_features(feats, pos, sizes, flat)
            with torch.no_grad():
                for n in clip.objects_of(b):
                    per_object = {
                        "pred_masks": current_out["pred_masks"][n : n + 1],
                        "obj_ptr": current_out["obj_ptr"][n : n + 1],
                        "object_score_logits": current_out["object_score_logits"][n : n + 1],
                        "maskmem_features": current_out["maskmem_features"][n : n + 1],
                        "maskmem_pos_enc": [level[n : n + 1] for level in current_out["maskmem_pos_enc"]],
                    }
                    exemplar = self.model.exemplar_from_output(
                        clip.object_ids[n], frame, per_object, is_prompted=frame in plan.init_cond_frames,
                        current_vision_feats=single.vision_feats, feat_sizes=single.feat_sizes,
                    )
                    if exemplar is not None:
                        bank.add(exemplar)
            semantic = self.model.track_semantic_exemplars(
                frame, single.vision_feats, single.vision_pos, single.feat_sizes, list(bank),
                gate_by_object_score=self.semantic_gate,
            )
            steps.append(semantic)
        frame_output.semantic = StepOutput(
            multimask_logits=torch.cat([s["high_res_masks"] for s in steps]),
            ious=torch.cat([s["ious"] for s in steps]),
            object_score_logits=torch.cat([s["object_score_logits"] for s in steps]),
            mask_logits=torch.cat([s["high_res_masks"] for s in steps]),
        )

    def clip_extras(self) -> dict[str, float]:
        """Mean number of exemplars the clips stored (``bank_size``)."""
        return {"bank_size": float(np.mean([len(bank) for bank in self.banks]))}
