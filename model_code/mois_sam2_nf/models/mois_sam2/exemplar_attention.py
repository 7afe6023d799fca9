"""Exemplar attention: fuses a slice's image tokens with the tokens of stored lesion exemplars.

Structurally it is sam2's :class:`~sam2.modeling.memory_attention.MemoryAttention` (``num_layers`` clones of one
:class:`~sam2.modeling.memory_attention.MemoryAttentionLayer` followed by a final ``LayerNorm(d_model)``), so the
state-dict keys under ``exemplar_attention.*`` mirror ``memory_attention.*`` one to one and an official SAM2.1
checkpoint can initialise it by copying. It is built from YAML via ``_target_`` exactly like sam2's module.

The only behavioural addition: ``memory`` and ``memory_pos`` are cast to the dtype of the query tokens before
attending. Exemplar memory features are stored as bfloat16 (docs/method.md, Exemplar bank); outside autocast an fp32
query would otherwise fail with ``mat1 and mat2 must have the same dtype``. The cast is lossless (bf16 -> fp32) and
equals the promotion ``torch.cat`` performs whenever fp32 pointer tokens are part of the memory.
"""

from __future__ import annotations

import torch
from sam2.modeling.memory_attention import MemoryAttention


class ExemplarAttention(MemoryAttention):
    """Exemplar attention (see the module docstring).

    Constructor arguments are sam2's ``MemoryAttention`` ones: ``d_model`` (256), ``pos_enc_at_input`` (True),
    ``layer`` (a ``MemoryAttentionLayer`` that is cloned), ``num_layers`` (4), ``batch_first`` (True).
    """

    def forward(
        self,
        curr: torch.Tensor | list[torch.Tensor],
        memory: torch.Tensor,
        curr_pos: torch.Tensor | list[torch.Tensor] | None = None,
        memory_pos: torch.Tensor | None = None,
        num_obj_ptr_tokens: int = 0,
    ) -> torch.Tensor:
        """Attend from the current slice's tokens to the exemplar memory.

        Args:
            curr: query tokens ``(HW, B, d_model)`` (or a one-element list of it), sequence first.
            memory: exemplar tokens ``(M, B, mem_dim)``; the last ``num_obj_ptr_tokens`` are pointer tokens.
            curr_pos: position encoding of ``curr``, same shape (or one-element list).
            memory_pos: position encoding of ``memory``, same shape as ``memory``.
            num_obj_ptr_tokens: number of trailing memory tokens that get no rotary position encoding.

        Returns:
            Fused tokens ``(HW, B, d_model)`` in the dtype of ``curr``.
        """
        query = curr[0] if isinstance(curr, (list, tuple)) else curr
        memory = memory.to(query.dtype)
        if memory_pos is not None:
            memory_pos = memory_pos.to(query.dtype)
        return super().forward(curr=curr, memory=memory, curr_pos=curr_pos, memory_pos=memory_pos,
                               num_obj_ptr_tokens=num_obj_ptr_tokens)
