"""Unit tests of the trainer pieces: losses on hand-made tensors, layer-decay groups, prompts, clips, configs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mois_sam2_nf.data.slicing import write_mask_png
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.training.augment import AugmentSettings
from mois_sam2_nf.training.config import load_training_config
from mois_sam2_nf.training.dataset import ClipDataset, ClipSettings
from mois_sam2_nf.training.losses import MaskLossWeights, iou_l1, mask_loss_terms, sigmoid_focal, soft_dice
from mois_sam2_nf.training.optim import OptimSettings, apply_schedule, build_optimizer, cosine_value, parameter_groups
from mois_sam2_nf.training.prompts import PromptSettings, plan_prompts, sample_error_clicks


# ----------------------------------------------------------------------------------------------------------- losses


def test_focal_equals_bce_without_modulation_and_matches_hand_value() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5])
    targets = torch.tensor([1.0, 0.0, 0.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert torch.allclose(sigmoid_focal(logits, targets, alpha=-1, gamma=0), bce)
    # x = 2, target 1: p = sigmoid(2); loss = alpha * (1 - p)^2 * -log(p)
    p = 1 / (1 + math.exp(-2.0))
    expected = 0.25 * (1 - p) ** 2 * -math.log(p)
    assert sigmoid_focal(logits, targets, alpha=0.25, gamma=2)[0].item() == pytest.approx(expected, rel=1e-6)
    # x = -1, target 0: weight (1 - alpha), p_t = 1 - sigmoid(-1)
    q = 1 / (1 + math.exp(1.0))
    expected_neg = 0.75 * q**2 * -math.log(1 - q)
    assert sigmoid_focal(logits, targets, alpha=0.25, gamma=2)[1].item() == pytest.approx(expected_neg, rel=1e-6)


def test_dice_and_iou_on_hand_made_masks() -> None:
    gt = torch.zeros(1, 1, 4, 4)
    gt[0, 0, :2, :2] = 1  # 4 pixels
    logits = torch.full((1, 1, 4, 4), -100.0)
    logits[0, 0, :2, :] = 100.0  # predicts 8 pixels, 4 of them right
    assert soft_dice(logits, gt).item() == pytest.approx(1 - (2 * 4 + 1) / (8 + 4 + 1), abs=1e-6)
    assert iou_l1(logits, gt, torch.tensor([[0.2]])).item() == pytest.approx(abs(0.2 - 4 / 8), abs=1e-6)


def test_multimask_supervises_best_candidate_and_gates_absent_objects() -> None:
    gt = torch.zeros(2, 4, 4, dtype=torch.bool)
    gt[0, 1:3, 1:3] = True  # object 1 present, object 2 absent
    perfect = torch.where(gt[0], 50.0, -50.0)
    wrong = -perfect
    logits = torch.stack([torch.stack([wrong, perfect, wrong]), torch.stack([wrong, wrong, wrong])])
    ious = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.5]])
    weights = MaskLossWeights()
    terms = mask_loss_terms(logits, ious, torch.tensor([[5.0], [5.0]]), gt, weights, num_objects=2.0)
    # best candidate of object 1 is exact: focal ~0, dice 1 - 9/9 = 0; object 2 is gated out
    assert terms["focal"].item() == pytest.approx(0.0, abs=1e-6)
    assert terms["dice"].item() == pytest.approx(0.0, abs=1e-6)
    # IoU head on all three candidates of object 1: |0 - 0| + |1 - 1| + |0 - 0| -> mean 0 (the wrong masks have IoU 0)
    assert terms["iou"].item() == pytest.approx(0.0, abs=1e-6)
    # object score: BCE(5, 1) + BCE(5, 0), over 2 objects
    expected = (math.log1p(math.exp(-5.0)) + math.log1p(math.exp(5.0))) / 2
    assert terms["object_score"].item() == pytest.approx(expected, rel=1e-5)
    ungated = mask_loss_terms(logits, ious, None, gt, MaskLossWeights(gate_by_presence=False), num_objects=2.0)
    assert ungated["dice"].item() > 0.4  # object 2's all-positive prediction now counts


# ------------------------------------------------------------------------------------------------------- optimiser


class _Trunk(torch.nn.Module):
    def __init__(self, blocks: int) -> None:
        super().__init__()
        self.patch_embed = torch.nn.Linear(2, 2)
        self.pos_embed = torch.nn.Parameter(torch.zeros(3))
        self.blocks = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.LayerNorm(2), torch.nn.Linear(2, 2)) for _ in range(blocks)
        )


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = torch.nn.Module()
        self.image_encoder.trunk = _Trunk(3)
        self.image_encoder.neck = torch.nn.Linear(2, 2)
        self.decoder = torch.nn.Linear(2, 2)
        self.frozen = torch.nn.Parameter(torch.zeros(1), requires_grad=False)


def _group_of(groups: list[dict], name: str) -> dict:
    return next(g for g in groups if name in g["names"])


def test_layer_decay_groups_and_weight_decay() -> None:
    settings = OptimSettings(lr=(1.0, 0.1), encoder_lr=(0.5, 0.05), layer_decay=0.5, weight_decay=0.1)
    groups = parameter_groups(_Model(), settings, num_blocks=3, no_decay_modules=(torch.nn.LayerNorm,))
    names = [n for g in groups for n in g["names"]]
    assert len(names) == len(set(names)) == 19  # every trainable parameter exactly once, the frozen one left out
    # blocks i -> 0.5 ** (3 - i); patch embedding 0.5 ** 4; position embedding overridden to 1
    for i in range(3):
        group = _group_of(groups, f"image_encoder.trunk.blocks.{i}.1.weight")
        assert group["lr_start"] == pytest.approx(0.5 * 0.5 ** (3 - i))
        assert group["weight_decay"] == 0.1
        assert _group_of(groups, f"image_encoder.trunk.blocks.{i}.0.weight")["weight_decay"] == 0.0  # LayerNorm
    assert _group_of(groups, "image_encoder.trunk.patch_embed.weight")["lr_start"] == pytest.approx(0.5 * 0.5**4)
    assert _group_of(groups, "image_encoder.trunk.pos_embed")["lr_start"] == pytest.approx(0.5)
    assert _group_of(groups, "image_encoder.neck.weight")["lr_start"] == pytest.approx(0.5)
    decoder = _group_of(groups, "decoder.weight")
    assert (decoder["lr_start"], decoder["lr_end"], decoder["weight_decay"]) == (1.0, 0.1, 0.1)
    assert _group_of(groups, "decoder.bias")["weight_decay"] == 0.0


def test_cosine_schedule_runs_from_start_to_end() -> None:
    assert cosine_value(1.0, 0.1, 0.0) == 1.0
    assert cosine_value(1.0, 0.1, 0.5) == pytest.approx(0.55)
    assert cosine_value(1.0, 0.1, 1.0) == pytest.approx(0.1)
    optimizer = build_optimizer(_Model(), OptimSettings(lr=(1.0, 0.1), encoder_lr=(0.5, 0.05), layer_decay=0.5),
                                num_blocks=3, no_decay_modules=(torch.nn.LayerNorm,))
    apply_schedule(optimizer, 1.0)
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(group["lr_end"])
        assert group["lr_end"] == pytest.approx(group["lr_start"] / 10)


# --------------------------------------------------------------------------------------------------------- prompts


def test_prompt_plans_respect_the_recipe() -> None:
    rng = np.random.default_rng(0)
    seen_init, seen_corr = set(), set()
    for _ in range(200):
        plan = plan_prompts(4, PromptSettings(), rng)
        assert plan.init_cond_frames[0] == 0
        assert set(plan.init_cond_frames) <= set(plan.correction_frames)
        assert sorted(plan.processing_order(4)) == [0, 1, 2, 3]
        assert plan.processing_order(4)[: len(plan.init_cond_frames)] == list(plan.init_cond_frames)
        seen_init.add(len(plan.init_cond_frames))
        seen_corr.add(len(plan.correction_frames))
    assert seen_init == {1, 2} and seen_corr == {1, 2}


def test_error_clicks_fall_in_the_error_with_the_right_label() -> None:
    gt = torch.zeros(2, 8, 8, dtype=torch.bool)
    gt[:, 2:6, 2:6] = True
    pred = torch.zeros(2, 8, 8, dtype=torch.bool)
    pred[0] = gt[0]
    pred[0, 0, 0] = True  # object 0: only a false positive at (row 0, col 0)
    pred[1, 2:6, 2:6] = True
    pred[1, 5, 5] = False  # object 1: only a miss at (row 5, col 5)
    rng = np.random.default_rng(1)
    points, labels = sample_error_clicks(gt, pred, rng)
    assert points.shape == (2, 1, 2) and labels.dtype == torch.int32
    assert points[0, 0].tolist() == [0.0, 0.0] and labels[0, 0] == 0
    assert points[1, 0].tolist() == [5.0, 5.0] and labels[1, 0] == 1
    first, first_labels = sample_error_clicks(gt, None, rng)
    for (x, y), label in zip(first[:, 0].tolist(), first_labels[:, 0].tolist()):
        assert gt[0, int(y), int(x)] and label == 1


# ----------------------------------------------------------------------------------------------------------- clips


def _fake_sliced(root: Path, cases: int = 2, frames: int = 5) -> list[str]:
    """Sliced layout with lesion 1 on frames 1-3 and lesion 2 on frames 1-4 of each case (30x20 frames)."""
    names = []
    for c in range(cases):
        name = f"case{c}"
        image_dir, label_dir = root / "imagesTr" / name, root / "labelsTr_instance" / name
        image_dir.mkdir(parents=True)
        label_dir.mkdir(parents=True)
        (image_dir / "meta.json").write_text("{}")
        for f in range(frames):
            Image.fromarray(np.full((30, 20), 40 * f, dtype=np.uint8)).save(image_dir / f"{f:05d}.jpg")
            ids = np.zeros((30, 20), dtype=np.uint8)
            if 1 <= f <= 3:
                ids[5:12, 4:10] = 1
            if f >= 1:
                ids[18:25, 8:16] = 2
            write_mask_png(label_dir / f"{f:05d}.png", ids)
        names.append(name)
    return names


def test_clip_dataset_reads_consistent_clips(tmp_path: Path) -> None:
    cases = _fake_sliced(tmp_path)
    dataset = ClipDataset(tmp_path, "imagesTr", cases, 32, ClipSettings(num_frames=3, max_objects=1, multiplier=3),
                          AugmentSettings(), seed=5)
    assert len(dataset) == 6
    clip = dataset[4]
    assert clip.images.shape == (3, 3, 32, 32) and clip.images.dtype == torch.float32
    assert 0.0 <= clip.images.min() and clip.images.max() <= 1.0
    assert torch.equal(clip.images[:, 0], clip.images[:, 2])  # greyscale replicated
    assert clip.masks.shape == (1, 3, 32, 32) and clip.masks.dtype == torch.bool
    assert clip.start in (1, 2) and clip.case == cases[0]  # lesion on the first frame, room for 3 frames
    assert clip.masks[:, 0].any()
    assert bool((clip.semantic | ~clip.masks.any(0)).all())  # semantic target covers every chosen lesion
    again = dataset[4]
    assert torch.equal(again.images, clip.images) and again.object_ids == clip.object_ids
    epoch0 = [dataset[i].images for i in range(6)]
    dataset.set_epoch(1)
    assert any(not torch.equal(dataset[i].images, epoch0[i]) for i in range(6))


def test_clip_dataset_rejects_missing_cases(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="sliced case not found"):
        ClipDataset(tmp_path, "imagesTr", ["nope"], 32, ClipSettings(), AugmentSettings(), seed=0)


# --------------------------------------------------------------------------------------------------------- configs


def test_configs_compose_with_overrides() -> None:
    cfg = load_training_config("train_mois_sam2", ["data.fold=3"])
    assert cfg.trainer.out_dir == "model_weights_finetuned/MOIS_SAM2/fold_3"
    assert cfg.loss.instance.focal == 20.0 and list(cfg.optim.lr) == [5e-6, 5e-7]
    smoke = load_training_config("finetune_sam2_smoke")
    assert smoke.model.family == "sam2" and dict(smoke.model.params) == {"image_size": 512}
    assert (smoke.data.num_frames, smoke.data.max_objects, smoke.exemplars.max_store) == (3, 2, 4)
    with pytest.raises(InputError, match="unknown training config"):
        load_training_config("no_such_config")
    with pytest.raises(InputError):
        load_training_config("train_mois_sam2", ["data.no_such_key=1"])
