"""The training objective reaches every part of the model that inference uses.

One optimiser-free forward/backward of a tiny MOIS-SAM2 (the demo architecture at 128 px, random weights) on a
hand-made two-lesion clip. Inference uses the single-mask output once a slice holds two clicks, ranks multimask
candidates by the IoU head, and gates the semantic (propagation) mask by the semantic object score; each of these must
receive gradient from the recipe's loss.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mois_sam2_nf.training import components
from mois_sam2_nf.training.config import load_training_config
from mois_sam2_nf.training.dataset import Clip, ClipBatch
from mois_sam2_nf.training.objective import TrainingStep

SIZE = 128


def _clip() -> Clip:
    """Three 128 px frames with two bright lesions on every frame (objects 1 and 2)."""
    generator = torch.Generator().manual_seed(0)
    images = 0.2 + 0.05 * torch.rand(3, 1, SIZE, SIZE, generator=generator)
    masks = torch.zeros(2, 3, SIZE, SIZE, dtype=torch.bool)
    masks[0, :, 20:44, 30:50] = True
    masks[1, :, 80:100, 70:96] = True
    images = images + 0.6 * masks.any(0).unsqueeze(1).float()
    return Clip(images=images.expand(-1, 3, -1, -1).contiguous(), masks=masks, semantic=masks.any(0), case="c",
                start=0, object_ids=(1, 2))


def _config(overrides: list[str]):
    return load_training_config("train_mois_sam2_demo", [f"++model.params.image_size={SIZE}", *overrides])


def _model(object_score_bias: float = 5.0) -> torch.nn.Module:
    """Random demo model whose object-score head is biased (positive: objects look present, so the untrained
    decoder's masks are not blanked and the clip stores exemplars)."""
    torch.manual_seed(0)
    model = components.build_model(_config([]), torch.device("cpu"), load_init_weights=False)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(object_score_bias)
    return model


def _losses(model: torch.nn.Module, overrides: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Loss terms of the recipe (with ``overrides``) for :func:`_clip`, graph kept for several gradient queries."""
    cfg = _config(overrides)
    step = TrainingStep(components.build_forward(cfg, model), components.objective_settings(cfg))
    step.train()
    return step(ClipBatch.from_clips([_clip()]), np.random.default_rng(3), 2.0)


def _grad_norm(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return float(sum(g.norm() ** 2 for g in grads if g is not None) ** 0.5)


@pytest.mark.usefixtures("one_torch_thread")
def test_recipe_loss_reaches_single_mask_token_iou_head_exemplar_attention_and_semantic_score() -> None:
    model = _model()
    losses, extras = _losses(model, [])
    assert extras["bank_size"] > 0, "the clip must store exemplars for the semantic branch to attend to"
    decoder = model.sam_mask_decoder
    # mask token 0 is the single-mask output (tokens 1..3 are the multimask candidates); the instance loss must
    # train it, as interactive inference uses it once a slice holds two clicks
    token_grad = torch.autograd.grad(losses["instance"], decoder.mask_tokens.weight, retain_graph=True)[0]
    assert float(token_grad[0].norm()) > 0
    assert _grad_norm(losses["instance"], list(decoder.iou_prediction_head.parameters())) > 0
    # the weighted semantic loss trains exemplar attention and the object score that gates propagation
    assert _grad_norm(losses["semantic"], list(model.exemplar_attention.parameters())) > 0
    assert _grad_norm(losses["semantic"], list(decoder.pred_obj_score_head.parameters())) > 0


@pytest.mark.usefixtures("one_torch_thread")
def test_the_training_gate_is_open_so_absent_looking_slices_still_train_the_semantic_branch() -> None:
    model = _model(object_score_bias=-50.0)  # every object score strongly negative: the gate blanks every mask
    attention = list(model.exemplar_attention.parameters())
    gated, _ = _losses(model, ["exemplars.object_score_gate=true"])
    assert _grad_norm(gated["semantic_focal"] + gated["semantic_dice"], attention) == 0.0
    recipe, _ = _losses(model, [])
    assert _grad_norm(recipe["semantic_focal"] + recipe["semantic_dice"], attention) > 0


@pytest.mark.usefixtures("one_torch_thread")
def test_a_batch_of_clips_is_one_object_batch_with_one_exemplar_bank_per_clip() -> None:
    model = _model()
    second = _clip()
    flipped = second.masks[:1].flip(-1)
    second = Clip(images=second.images.flip(-1), masks=flipped, semantic=flipped[0], case="d", start=4,
                  object_ids=(7,))
    batch = ClipBatch.from_clips([_clip(), second])
    assert batch.object_clip.tolist() == [0, 0, 1] and batch.objects_of(1) == [2]
    cfg = _config([])
    forward = components.build_forward(cfg, model)
    step = TrainingStep(forward, components.objective_settings(cfg))
    step.train()
    losses, extras = step(batch, np.random.default_rng(3), 3.0)
    assert {e.obj_id for e in forward.banks[0]} <= {1, 2} and {e.obj_id for e in forward.banks[1]} == {7}
    assert extras["bank_size"] == np.mean([len(bank) for bank in forward.banks])
    losses["loss"].backward()
    cross_attention = model.exemplar_attention.layers[0].cross_attn_image.q_proj.weight
    assert torch.isfinite(losses["loss"]) and float(cross_attention.grad.abs().sum()) > 0
    with torch.no_grad():
        output = forward(batch, np.random.default_rng(3))
    assert all(f.steps[0].multimask_logits.shape[0] == 3 for f in output.frames)
    assert all(f.semantic.mask_logits.shape[:2] == (2, 1) for f in output.frames)
