"""MOIS-SAM2: SAM2 plus an exemplar memory bank for semantic (multi-lesion) propagation (docs/method.md).

:class:`MOISSAM2Base` subclasses sam2's :class:`~sam2.modeling.sam2_base.SAM2Base` and leaves every SAM2 behaviour
(instance tracking, memory attention, memory encoder, SAM heads) unchanged. It adds:

- ``exemplar_attention``: an :class:`~.exemplar_attention.ExemplarAttention` (same structure as memory attention);
- ``exemplar_type_enc`` ``(2, 1, 1, mem_dim)``: added to the position encoding of exemplar memory tokens
  (index 1 = prompted, 0 = non-prompted);
- ``no_exemplar_embed`` / ``no_exemplar_pos_enc``: used when a semantic call has no exemplars -- a dummy memory of
  ``(T, 1, mem_dim)`` tokens with ``T = (image_size / backbone_stride)^2`` (4096 at 1024) that the slice attends to,
  or ``(1, 1, hidden_dim)`` embeddings added directly (``directly_add_no_exemplar_embed``);
- ``exemplar_obj_ptr_proj`` (Linear or 3-layer MLP, or Identity without pointers): kept for checkpoint
  compatibility with the reference but **never applied** -- pointer tokens are SAM2's own ``obj_ptr``;
- ``exemplar_obj_ptr_tpos_proj``: Linear(hidden_dim -> mem_dim) for the slice-distance encoding, or Identity.

Shapes in this module follow sam2's conventions: token sequences are sequence-first ``(L, B, C)``; feature maps are
``(B, C, H, W)``; ``H = W = image_size / backbone_stride`` for the lowest-resolution level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from sam2.modeling.sam2_base import SAM2Base
from sam2.modeling.sam2_utils import MLP, get_1d_sine_pe
from torch import nn
from torch.nn.init import trunc_normal_

from mois_sam2_nf.models.mois_sam2.exemplar_bank import Exemplar, select_exemplars
from mois_sam2_nf.models.sam2.volume_predictor import install_memory_dtype_hook

#: dtype exemplar memory features are stored in (as sam2's video predictor stores memories)
EXEMPLAR_FEATURE_DTYPE = torch.bfloat16


class MOISSAM2Base(SAM2Base):
    """SAM2 with exemplar-based semantic segmentation (see the module docstring).

    Besides SAM2Base's arguments (passed through ``**kwargs``, so a predictor subclass can add its own), the
    keyword-only MOIS-SAM2 flags (docs/method.md):

    Args:
        exemplar_attention: the fusion module (an ``ExemplarAttention``); always present (its keys are part of every
            checkpoint), used only if ``use_dedicated_exemplar_attention``.
        use_dedicated_exemplar_attention: fuse with ``exemplar_attention``; False reuses ``memory_attention``.
        use_automatic_segmentation_prob: probability that a semantic call ignores the exemplars (no-exemplar path,
            object-score gating off): 1 always, 0 never, otherwise one Bernoulli draw per call (global torch RNG).
        num_max_exemplars: exemplars used per call; 0 decodes the raw backbone features.
        exemplar_use_only_prompted: select prompted exemplars only.
        use_exemplar_obj_ptrs_in_encoder: append ``hidden_dim / mem_dim`` (= 4) pointer tokens per exemplar.
        add_tpos_enc_to_exemplar_obj_ptrs: sine encoding of the normalised signed slice distance on pointer tokens
            (zeros if False).
        proj_tpos_enc_in_exemplar_obj_ptrs: build that encoding with ``hidden_dim`` channels and project it to
            ``mem_dim`` with ``exemplar_obj_ptr_tpos_proj``.
        use_mlp_for_exemplar_obj_ptr_proj: shape of the (unused) ``exemplar_obj_ptr_proj``: 3-layer MLP vs Linear.
        use_signed_tpos_enc_to_exemplar_obj_ptrs: stored for config compatibility; distances are always signed.
        max_exemplar_obj_ptrs_in_encoder: stored for config compatibility; unused.
        directly_add_no_exemplar_embed: no-exemplar path adds ``no_exemplar_embed`` (``(1,1,hidden_dim)``) instead of
            attending to a dummy memory of ``no_exemplar_embed_dim``-channel tokens.
        no_exemplar_embed_dim: channels of the dummy memory; must equal ``mem_dim``.
        switch_off_object_score_check_flag: do not replace semantic masks of slices with object score <= 0 by -1024.
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        memory_attention: nn.Module,
        memory_encoder: nn.Module,
        exemplar_attention: nn.Module,
        *,
        use_dedicated_exemplar_attention: bool,
        use_automatic_segmentation_prob: float,
        num_max_exemplars: int = 10,
        exemplar_use_only_prompted: bool = False,
        use_exemplar_obj_ptrs_in_encoder: bool = False,
        add_tpos_enc_to_exemplar_obj_ptrs: bool = True,
        proj_tpos_enc_in_exemplar_obj_ptrs: bool = False,
        use_mlp_for_exemplar_obj_ptr_proj: bool = False,
        use_signed_tpos_enc_to_exemplar_obj_ptrs: bool = True,
        max_exemplar_obj_ptrs_in_encoder: int = 16,
        directly_add_no_exemplar_embed: bool = False,
        no_exemplar_embed_dim: int = 64,
        switch_off_object_score_check_flag: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_encoder=image_encoder, memory_attention=memory_attention,
                         memory_encoder=memory_encoder, **kwargs)
        if not 0.0 <= use_automatic_segmentation_prob <= 1.0:
            raise ValueError(
                f"use_automatic_segmentation_prob must be in [0, 1], got {use_automatic_segmentation_prob}")
        if num_max_exemplars < 0:
            raise ValueError(f"num_max_exemplars must be >= 0, got {num_max_exemplars}")
        if proj_tpos_enc_in_exemplar_obj_ptrs and not add_tpos_enc_to_exemplar_obj_ptrs:
            raise ValueError("proj_tpos_enc_in_exemplar_obj_ptrs needs add_tpos_enc_to_exemplar_obj_ptrs")
        if use_exemplar_obj_ptrs_in_encoder and self.hidden_dim % self.mem_dim:
            raise ValueError(
                f"pointer tokens need hidden_dim ({self.hidden_dim}) divisible by mem_dim ({self.mem_dim})")
        if not directly_add_no_exemplar_embed and no_exemplar_embed_dim != self.mem_dim:
            raise ValueError(f"no_exemplar_embed_dim ({no_exemplar_embed_dim}) must equal mem_dim ({self.mem_dim})")

        self.use_dedicated_exemplar_attention = use_dedicated_exemplar_attention
        self.use_automatic_segmentation_prob = float(use_automatic_segmentation_prob)
        self.num_max_exemplars = num_max_exemplars
        self.exemplar_use_only_prompted = exemplar_use_only_prompted
        self.use_exemplar_obj_ptrs_in_encoder = use_exemplar_obj_ptrs_in_encoder
        self.add_tpos_enc_to_exemplar_obj_ptrs = add_tpos_enc_to_exemplar_obj_ptrs
        self.proj_tpos_enc_in_exemplar_obj_ptrs = proj_tpos_enc_in_exemplar_obj_ptrs
        self.use_mlp_for_exemplar_obj_ptr_proj = use_mlp_for_exemplar_obj_ptr_proj
        self.use_signed_tpos_enc_to_exemplar_obj_ptrs = use_signed_tpos_enc_to_exemplar_obj_ptrs
        self.max_exemplar_obj_ptrs_in_encoder = max_exemplar_obj_ptrs_in_encoder
        self.directly_add_no_exemplar_embed = directly_add_no_exemplar_embed
        self.no_exemplar_embed_dim = no_exemplar_embed_dim
        self.switch_off_object_score_check_flag = switch_off_object_score_check_flag

        self.exemplar_attention = exemplar_attention
        self.exemplar_type_enc = nn.Parameter(torch.zeros(2, 1, 1, self.mem_dim))
        if directly_add_no_exemplar_embed:
            embed_shape = (1, 1, self.hidden_dim)
        else:
            embed_shape = (self.num_feature_tokens, 1, no_exemplar_embed_dim)
        self.no_exemplar_embed = nn.Parameter(torch.zeros(embed_shape))
        self.no_exemplar_pos_enc = nn.Parameter(torch.zeros(embed_shape))
        for parameter in (self.exemplar_type_enc, self.no_exemplar_embed, self.no_exemplar_pos_enc):
            trunc_normal_(parameter, std=0.02)

        self.exemplar_obj_ptr_proj: nn.Module = nn.Identity()
        if use_exemplar_obj_ptrs_in_encoder:
            self.exemplar_obj_ptr_proj = (MLP(self.hidden_dim, self.hidden_dim, self.hidden_dim, 3)
                                          if use_mlp_for_exemplar_obj_ptr_proj
                                          else nn.Linear(self.hidden_dim, self.hidden_dim))
        self.exemplar_obj_ptr_tpos_proj: nn.Module = (nn.Linear(self.hidden_dim, self.mem_dim)
                                                      if proj_tpos_enc_in_exemplar_obj_ptrs else nn.Identity())
        install_memory_dtype_hook(self.memory_attention)

    @property
    def num_feature_tokens(self) -> int:
        """Tokens of the lowest-resolution feature map: ``(image_size // backbone_stride) ** 2`` (4096 at 1024)."""
        return (self.image_size // self.backbone_stride) ** 2

    # ------------------------------------------------------------------------------------------------------------
    # exemplar memory
    # ------------------------------------------------------------------------------------------------------------

    def build_exemplar_memory(
        self, exemplars: Sequence[Exemplar], frame_idx: int
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Memory tokens and their position encoding for semantic decoding of slice ``frame_idx``.

        See docs/method.md, Exemplar attention.

        Args:
            exemplars: the N >= 1 exemplars to attend to, in order (already selected).
            frame_idx: index of the slice being segmented.

        Returns:
            ``(memory, memory_pos, num_obj_ptr_tokens)``: ``memory`` and ``memory_pos`` are ``(N*T + P, 1, mem_dim)``
            with ``T = h*w`` spatial tokens per exemplar (4096 at image size 1024) followed by ``P`` pointer tokens
            (``P = 4N`` with pointers on, else 0). Spatial tokens carry the flattened ``maskmem_pos_enc`` plus
            ``exemplar_type_enc[is_prompted]``; pointer tokens carry the sine encoding of the signed slice distance
            ``frame_idx - exemplar.frame_idx`` divided by ``max(1, max distance - min distance)`` and get no rotary
            encoding (the caller passes ``num_obj_ptr_tokens = P``). ``memory`` keeps the dtype promotion of its
            parts (bf16 features + fp32 pointers -> fp32).
        """
        if not exemplars:
            raise ValueError("build_exemplar_memory needs at least one exemplar")
        device = self.exemplar_type_enc.device
        tokens, positions = [], []
        for exemplar in exemplars:
            tokens.append(exemplar.maskmem_features.to(device).flatten(2).permute(2, 0, 1))
            type_enc = self.exemplar_type_enc[int(exemplar.is_prompted)]
            positions.append(exemplar.maskmem_pos_enc.to(device).flatten(2).permute(2, 0, 1) + type_enc)
        num_ptr_tokens = 0
        if self.use_exemplar_obj_ptrs_in_encoder:
            ptr_tokens, ptr_pos = self._pointer_tokens(exemplars, frame_idx)
            tokens.append(ptr_tokens)
            positions.append(ptr_pos)
            num_ptr_tokens = ptr_tokens.shape[0]
        return torch.cat(tokens, dim=0), torch.cat(positions, dim=0), num_ptr_tokens

    def _pointer_tokens(self, exemplars: Sequence[Exemplar], frame_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pointer tokens ``(k*N, 1, mem_dim)`` (``k = hidden_dim / mem_dim``) and their encoding, same shape.

        Each ``(1, hidden_dim)`` pointer is cut into ``k`` consecutive ``mem_dim`` chunks; each exemplar's encoding
        is repeated for its ``k`` tokens.
        """
        device = self.exemplar_type_enc.device
        chunks = self.hidden_dim // self.mem_dim
        pointers = torch.stack([e.obj_ptr.to(device) for e in exemplars])  # (N, 1, hidden_dim)
        num = pointers.shape[0]
        ptr_tokens = pointers.reshape(num, 1, chunks, self.mem_dim).transpose(1, 2).reshape(num * chunks, 1,
                                                                                            self.mem_dim)
        if self.add_tpos_enc_to_exemplar_obj_ptrs:
            distance = torch.tensor([frame_idx - e.frame_idx for e in exemplars], dtype=torch.float32, device=device)
            scale = max(1.0, float(distance.max() - distance.min()))
            pe_dim = self.hidden_dim if self.proj_tpos_enc_in_exemplar_obj_ptrs else self.mem_dim
            encoding = self.exemplar_obj_ptr_tpos_proj(get_1d_sine_pe(distance / scale, dim=pe_dim))
            ptr_pos = encoding[:, None, :].repeat_interleave(chunks, dim=0)
        else:
            ptr_pos = ptr_tokens.new_zeros(ptr_tokens.shape)
        return ptr_tokens, ptr_pos

    def exemplar_from_output(
        self,
        obj_id: int,
        frame_idx: int,
        current_out: Mapping[str, Any],
        *,
        is_prompted: bool,
        current_vision_feats: Sequence[torch.Tensor] | None = None,
        feat_sizes: Sequence[tuple[int, int]] | None = None,
    ) -> Exemplar | None:
        """Create the exemplar of one object on one frame from its tracking output (docs/method.md, Exemplar bank).

        Args:
            obj_id, frame_idx: identity of the exemplar.
            current_out: the frame's per-object output of ``track_step`` (batch 1): ``pred_masks`` low-res logits
                ``(1, 1, 4h, 4w)`` and ``obj_ptr`` ``(1, hidden_dim)``; for a prompted frame also
                ``object_score_logits`` ``(1, 1)``; for a non-prompted frame also ``maskmem_features``
                ``(1, mem_dim, h, w)`` and ``maskmem_pos_enc`` (list of levels, the last one is used).
            is_prompted: the frame was clicked. Its memory is then re-encoded from the low-res logits upsampled to
                ``image_size`` with ``is_mask_from_pts=True`` (binarised in eval when
                ``binarize_mask_from_pts_for_mem_enc``).
            current_vision_feats, feat_sizes: the frame's backbone tokens as from ``_prepare_backbone_features``
                (needed only when ``is_prompted``).

        Returns:
            The exemplar (tensors detached, features as bfloat16), or ``None`` if the upsampled mask has no logit > 0.
        """
        low_res = current_out["pred_masks"]
        if low_res.shape[0] != 1:
            raise ValueError(
                f"exemplar_from_output expects a single object (batch 1), got pred_masks {tuple(low_res.shape)}")
        high_res = F.interpolate(low_res.float(), size=(self.image_size, self.image_size), mode="bilinear",
                                 align_corners=False)
        if not bool((high_res > 0).any()):
            return None
        if is_prompted:
            if current_vision_feats is None or feat_sizes is None:
                raise ValueError("a prompted exemplar needs current_vision_feats and feat_sizes to re-encode memory")
            features, pos_levels = self._encode_new_memory(
                current_vision_feats=list(current_vision_feats), feat_sizes=list(feat_sizes),
                pred_masks_high_res=high_res, object_score_logits=current_out["object_score_logits"],
                is_mask_from_pts=True)
        else:
            features, pos_levels = current_out["maskmem_features"], current_out["maskmem_pos_enc"]
        return Exemplar(obj_id=obj_id, frame_idx=frame_idx, is_prompted=is_prompted,
                        maskmem_features=features.detach().to(EXEMPLAR_FEATURE_DTYPE),
                        maskmem_pos_enc=pos_levels[-1].detach(), obj_ptr=current_out["obj_ptr"].detach())

    # ------------------------------------------------------------------------------------------------------------
    # semantic decoding
    # ------------------------------------------------------------------------------------------------------------

    def draw_automatic(self) -> bool:
        """Whether one semantic call runs in automatic mode (``use_automatic_segmentation_prob``)."""
        probability = self.use_automatic_segmentation_prob
        if probability in (0.0, 1.0):
            return probability == 1.0
        return bool(torch.rand(()) < probability)

    def track_semantic_exemplars(
        self,
        frame_idx: int,
        current_vision_feats: Sequence[torch.Tensor],
        current_vision_pos_embeds: Sequence[torch.Tensor],
        feat_sizes: Sequence[tuple[int, int]],
        exemplars: Sequence[Exemplar],
        automatic: bool | None = None,
        gate_by_object_score: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        """Segment everything that looks like the exemplars on one slice (docs/method.md, Semantic pass).

        The slice's lowest-level tokens (no memory conditioning, no ``no_mem_embed``) attend to the selected
        exemplars' memory; the fused map is decoded by SAM2's own prompt encoder and mask decoder with one padding
        point (label -1), no mask prompt, single-mask output and the high-resolution skip features.

        Args:
            frame_idx: slice index (for the pointer distance encoding).
            current_vision_feats: backbone tokens per level, fine to coarse, ``(h_l*w_l, B, C)`` each, as returned
                by ``_prepare_backbone_features`` (levels 0-1 already projected by the decoder's conv_s0/s1).
            current_vision_pos_embeds: their position encodings, same shapes.
            feat_sizes: ``(h_l, w_l)`` per level.
            exemplars: candidates in bank order; ``num_max_exemplars`` of them are selected prompted-first.
            automatic: ignore the exemplars and skip object-score gating; ``None`` draws it with
                ``use_automatic_segmentation_prob``.
            gate_by_object_score: replace the masks of a slice whose object score is <= 0 by -1024; ``None`` follows
                ``switch_off_object_score_check_flag``. Training passes ``False``: a gated mask carries no gradient.

        Returns:
            ``low_res_masks`` ``(B, 1, 4h, 4w)`` logits (``(1,1,256,256)`` at 1024), ``high_res_masks``
            ``(B, 1, image_size, image_size)``, ``ious`` ``(B, 1)``, ``object_score_logits`` ``(B, 1)`` and
            ``obj_ptr`` ``(B, hidden_dim)``. Unless automatic or ``switch_off_object_score_check_flag``, masks of a
            slice whose object score is <= 0 are -1024 everywhere.
        """
        if automatic is None:
            automatic = self.draw_automatic()
        curr, curr_pos = current_vision_feats[-1], current_vision_pos_embeds[-1]
        batch, height, width = curr.shape[1], *feat_sizes[-1]
        if automatic:
            fused = self._fuse_without_exemplars(curr, curr_pos)
        elif self.num_max_exemplars == 0:
            fused = curr
        else:
            selected = select_exemplars(exemplars, self.num_max_exemplars, self.exemplar_use_only_prompted)
            fused = (self._fuse_with_exemplars(curr, curr_pos, selected, frame_idx) if selected
                     else self._fuse_without_exemplars(curr, curr_pos))
        pix_feat = fused.permute(1, 2, 0).reshape(batch, self.hidden_dim, height, width)
        high_res_features = None
        if len(current_vision_feats) > 1:
            high_res_features = [x.permute(1, 2, 0).reshape(batch, x.shape[2], *size)
                                 for x, size in zip(current_vision_feats[:-1], feat_sizes[:-1])]
        if gate_by_object_score is None:
            gate_by_object_score = not self.switch_off_object_score_check_flag
        gate = gate_by_object_score and not automatic
        return self._decode_without_prompts(pix_feat, high_res_features, gate_by_object_score=gate)

    def _fuse_with_exemplars(self, curr: torch.Tensor, curr_pos: torch.Tensor, exemplars: Sequence[Exemplar],
                             frame_idx: int) -> torch.Tensor:
        """Exemplar attention of ``curr`` ``(HW, B, C)`` over the exemplar memory; returns ``(HW, B, C)``."""
        memory, memory_pos, num_ptr_tokens = self.build_exemplar_memory(exemplars, frame_idx)
        batch = curr.shape[1]
        return self._exemplar_fusion_module(curr=[curr], curr_pos=[curr_pos],
                                            memory=memory.expand(-1, batch, -1),
                                            memory_pos=memory_pos.expand(-1, batch, -1),
                                            num_obj_ptr_tokens=num_ptr_tokens)

    def _fuse_without_exemplars(self, curr: torch.Tensor, curr_pos: torch.Tensor) -> torch.Tensor:
        """No-exemplar path: add ``no_exemplar_embed``, or attend to the dummy memory; ``(HW, B, C)`` in and out."""
        if self.directly_add_no_exemplar_embed:
            return curr + self.no_exemplar_embed
        batch = curr.shape[1]
        return self._exemplar_fusion_module(curr=[curr], curr_pos=[curr_pos],
                                            memory=self.no_exemplar_embed.expand(-1, batch, -1),
                                            memory_pos=self.no_exemplar_pos_enc.expand(-1, batch, -1),
                                            num_obj_ptr_tokens=0)

    @property
    def _exemplar_fusion_module(self) -> nn.Module:
        return self.exemplar_attention if self.use_dedicated_exemplar_attention else self.memory_attention

    def _decode_without_prompts(self, pix_feat: torch.Tensor, high_res_features: list[torch.Tensor] | None,
                                *, gate_by_object_score: bool) -> dict[str, torch.Tensor]:
        """Run SAM2's ``_forward_sam_heads`` with only a padding point and a single output mask.

        ``_forward_sam_heads`` replaces the masks of absent objects (score <= 0) by -1024 whenever
        ``pred_obj_scores``; without gating, the decoder's own mask logits are captured by a forward hook and
        upsampled the same way instead.
        """
        captured: list[torch.Tensor] = []
        handle = None
        if not gate_by_object_score and self.pred_obj_scores:
            handle = self.sam_mask_decoder.register_forward_hook(lambda _m, _a, out: captured.append(out[0]))
        try:
            _, _, ious, low_res, high_res, obj_ptr, object_score_logits = self._forward_sam_heads(
                backbone_features=pix_feat, point_inputs=None, mask_inputs=None,
                high_res_features=high_res_features, multimask_output=False)
        finally:
            if handle is not None:
                handle.remove()
        if captured:
            low_res = captured[0].float()
            high_res = F.interpolate(low_res, size=(self.image_size, self.image_size), mode="bilinear",
                                     align_corners=False)
        return {"low_res_masks": low_res, "high_res_masks": high_res, "ious": ious,
                "object_score_logits": object_score_logits, "obj_ptr": obj_ptr}
