"""MOIS-SAM2 model behaviour on Hiera-T at 256 px: exemplar bank, exemplar tokens, semantic decoding, dtypes."""

from __future__ import annotations

import pytest
import torch
from sam2.modeling.sam2_utils import get_1d_sine_pe

from mois_sam2_nf.models.mois_sam2 import Exemplar, ExemplarBank, MOISSAM2Base, build_mois_sam2, select_exemplars

torch.set_num_threads(1)


def make_exemplar(obj_id: int, frame: int, prompted: bool, grid: int = 4, seed: int = 0) -> Exemplar:
    """Random exemplar with a ``grid x grid`` token map (shapes as the model produces, small)."""
    gen = torch.Generator().manual_seed(seed)
    return Exemplar(obj_id, frame, prompted, torch.randn(1, 64, grid, grid, generator=gen).to(torch.bfloat16),
                    torch.randn(1, 64, grid, grid, generator=gen), torch.randn(1, 256, generator=gen))


#: Hiera-T MOIS-SAM2 at 256 px: SAM2's real widths (hidden 256, memory 64) with 16x16 tokens, cheap on the CPU
HIERA_T_256 = ["model.image_size=256"] + [
    f"model.{module}.layer.{attention}.feat_sizes=[16,16]"
    for module in ("memory_attention", "exemplar_attention")
    for attention in ("self_attention", "cross_attention")
]


@pytest.fixture(scope="module")
def model() -> MOISSAM2Base:
    torch.manual_seed(0)
    built = build_mois_sam2("mois_sam2.1_hiera_t", overrides=HIERA_T_256)
    assert isinstance(built, MOISSAM2Base)
    return built


@pytest.fixture(scope="module")
def frame(model: MOISSAM2Base) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]]]:
    """Backbone tokens of one random 256 px frame: (vision feats, pos embeds, feat sizes)."""
    image = torch.rand(1, 3, model.image_size, model.image_size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        _, feats, pos, sizes = model._prepare_backbone_features(model.forward_image(image))
    return feats, pos, sizes


def model_exemplar(model: MOISSAM2Base, frame, obj_id: int, frame_idx: int, prompted: bool, seed: int) -> Exemplar:
    """Exemplar created by the model's own helper from a synthetic tracking output (a square mask)."""
    feats, _, sizes = frame
    logits = torch.full((1, 1, 64, 64), -8.0)
    offset = 8 + 4 * seed
    logits[..., offset:offset + 12, offset:offset + 12] = 6.0
    gen = torch.Generator().manual_seed(seed)
    out = {"pred_masks": logits, "obj_ptr": torch.randn(1, 256, generator=gen), "object_score_logits": torch.ones(1, 1)}
    if not prompted:
        out["maskmem_features"] = torch.randn(1, 64, 16, 16, generator=gen).to(torch.bfloat16)
        out["maskmem_pos_enc"] = [torch.randn(1, 64, 16, 16, generator=gen)]
    with torch.inference_mode():
        exemplar = model.exemplar_from_output(obj_id, frame_idx, out, is_prompted=prompted,
                                              current_vision_feats=feats, feat_sizes=sizes)
    assert exemplar is not None
    return exemplar


def test_bank_keys_and_overwrite_keep_position() -> None:
    bank = ExemplarBank()
    for obj_id, frame, prompted in [(1, 4, True), (1, 5, False), (2, 4, True)]:
        assert bank.add(make_exemplar(obj_id, frame, prompted))
    assert bank.keys() == ["1_4_prompted", "1_5_nonprompted", "2_4_prompted"]
    replacement = make_exemplar(1, 4, True, seed=7)
    bank.add(replacement)
    assert bank.keys() == ["1_4_prompted", "1_5_nonprompted", "2_4_prompted"]
    assert bank["1_4_prompted"] is replacement
    bank.remove_object(1)
    assert bank.keys() == ["2_4_prompted"]


def test_selection_is_prompted_first_in_insertion_order() -> None:
    order = [(1, 0, False), (1, 1, True), (2, 3, False), (3, 2, True), (4, 5, True)]
    bank = ExemplarBank()
    for obj_id, frame, prompted in order:
        bank.add(make_exemplar(obj_id, frame, prompted))
    assert [e.key for e in bank.select(4)] == ["1_1_prompted", "3_2_prompted", "4_5_prompted", "1_0_nonprompted"]
    assert [e.key for e in bank.select(2)] == ["1_1_prompted", "3_2_prompted"]
    assert [e.key for e in bank.select(10, only_prompted=True)] == ["1_1_prompted", "3_2_prompted", "4_5_prompted"]
    chosen = bank.select(4)
    assert select_exemplars(chosen, 4) == chosen
    assert bank.select(0) == []


def test_bank_cap_keeps_earliest_but_allows_overwrite() -> None:
    bank = ExemplarBank(max_size=2)
    assert bank.add(make_exemplar(1, 0, True)) and bank.add(make_exemplar(2, 0, True))
    assert not bank.add(make_exemplar(3, 0, True))
    assert bank.add(make_exemplar(1, 0, True, seed=3))
    assert bank.keys() == ["1_0_prompted", "2_0_prompted"] and len(bank) == 2


def test_no_exemplar_memory_follows_image_size(model: MOISSAM2Base) -> None:
    assert model.num_feature_tokens == (256 // 16) ** 2
    assert model.no_exemplar_embed.shape == (256, 1, 64) == model.no_exemplar_pos_enc.shape


def test_exemplar_memory_layout(model: MOISSAM2Base) -> None:
    exemplars = [make_exemplar(1, 2, True, seed=1), make_exemplar(2, 9, False, seed=2),
                 make_exemplar(3, 4, True, seed=3)]
    memory, memory_pos, num_ptr = model.build_exemplar_memory(exemplars, frame_idx=6)
    spatial = 16
    assert num_ptr == 12 and memory.shape == memory_pos.shape == (3 * spatial + 12, 1, 64)
    for n, ex in enumerate(exemplars):
        block = slice(n * spatial, (n + 1) * spatial)
        assert torch.equal(memory[block, 0], ex.maskmem_features.float().flatten(2)[0].T)
        expected_pos = ex.maskmem_pos_enc.flatten(2)[0].T + model.exemplar_type_enc[int(ex.is_prompted), 0, 0]
        assert torch.allclose(memory_pos[block, 0], expected_pos)
    pointers = memory[3 * spatial:, 0]
    assert torch.equal(pointers.reshape(3, 256), torch.cat([e.obj_ptr for e in exemplars]))
    distance = torch.tensor([4.0, -3.0, 2.0]) / 7.0  # t - frame, divided by max - min = 7
    expected = get_1d_sine_pe(distance, dim=64).repeat_interleave(4, dim=0)
    assert torch.allclose(memory_pos[3 * spatial:, 0], expected)


def test_pointer_tokens_get_no_rope(model: MOISSAM2Base, frame) -> None:
    feats, pos, sizes = frame
    exemplars = [model_exemplar(model, frame, i, i, True, seed=i) for i in range(3)]
    seen: list[tuple[int, int]] = []

    def record(_module, args, kwargs):
        seen.append((kwargs["num_k_exclude_rope"], kwargs["k"].shape[-2]))

    handles = [layer.cross_attn_image.register_forward_pre_hook(record, with_kwargs=True)
               for layer in model.exemplar_attention.layers]
    try:
        with torch.inference_mode():
            model.track_semantic_exemplars(5, feats, pos, sizes, exemplars)
    finally:
        for handle in handles:
            handle.remove()
    assert seen == [(12, 3 * 256 + 12)] * 4


def test_exemplar_obj_ptr_proj_is_never_called(model: MOISSAM2Base, frame) -> None:
    feats, pos, sizes = frame
    calls: list[int] = []
    handle = model.exemplar_obj_ptr_proj.register_forward_hook(lambda *_: calls.append(1))
    try:
        exemplars = [model_exemplar(model, frame, 1, 2, True, seed=0),
                     model_exemplar(model, frame, 1, 3, False, seed=1)]
        with torch.inference_mode():
            for chosen, automatic in ((exemplars, False), ([], False), (exemplars, True)):
                model.track_semantic_exemplars(4, feats, pos, sizes, chosen, automatic=automatic)
    finally:
        handle.remove()
    assert isinstance(model.exemplar_obj_ptr_proj, torch.nn.Linear) and calls == []


def test_semantic_outputs_fp32_and_bf16_autocast(model: MOISSAM2Base, frame) -> None:
    feats, pos, sizes = frame
    exemplars = [model_exemplar(model, frame, 1, 2, True, seed=0), model_exemplar(model, frame, 2, 7, False, seed=1)]
    assert all(e.maskmem_features.dtype == torch.bfloat16 for e in exemplars)
    with torch.inference_mode():
        fp32 = model.track_semantic_exemplars(4, feats, pos, sizes, exemplars)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model.track_semantic_exemplars(4, feats, pos, sizes, exemplars)
    shapes = {"low_res_masks": (1, 1, 64, 64), "high_res_masks": (1, 1, 256, 256), "ious": (1, 1),
              "object_score_logits": (1, 1), "obj_ptr": (1, 256)}
    for out in (fp32, bf16):
        assert {k: tuple(v.shape) for k, v in out.items()} == shapes
        assert all(torch.isfinite(v.float()).all() for v in out.values())
    assert fp32["low_res_masks"].dtype == torch.float32 and fp32["ious"].dtype == torch.float32


def test_shared_memory_attention_variant_runs_in_fp32(frame) -> None:
    torch.manual_seed(0)
    shared = build_mois_sam2("mois_sam2.1_hiera_t",
                             overrides=[*HIERA_T_256, "model.use_dedicated_exemplar_attention=false"])
    feats, pos, sizes = frame
    calls: list[int] = []
    handle = shared.memory_attention.register_forward_hook(lambda *_: calls.append(1))
    try:
        with torch.inference_mode():
            out = shared.track_semantic_exemplars(3, feats, pos, sizes, [make_exemplar(1, 1, True, grid=16)])
    finally:
        handle.remove()
    assert calls == [1] and out["low_res_masks"].dtype == torch.float32


def test_object_score_gating_and_its_switches(model: MOISSAM2Base, frame) -> None:
    feats, pos, sizes = frame
    exemplars = [model_exemplar(model, frame, 1, 2, True, seed=0)]
    head = model.sam_mask_decoder.pred_obj_score_head.layers[-1]
    original = head.bias.detach().clone()
    try:
        with torch.no_grad():
            head.bias.fill_(-1e4)  # every object score <= 0
        with torch.inference_mode():
            gated = model.track_semantic_exemplars(4, feats, pos, sizes, exemplars)
            model.switch_off_object_score_check_flag = True
            ungated = model.track_semantic_exemplars(4, feats, pos, sizes, exemplars)
            model.switch_off_object_score_check_flag = False
            automatic = model.track_semantic_exemplars(4, feats, pos, sizes, exemplars, automatic=True)
    finally:
        model.switch_off_object_score_check_flag = False
        with torch.no_grad():
            head.bias.copy_(original)
    assert bool((gated["object_score_logits"] <= 0).all())
    assert bool((gated["low_res_masks"] == -1024).all()) and bool((gated["high_res_masks"] == -1024).all())
    for out in (ungated, automatic):
        assert not bool((out["low_res_masks"] == -1024).all())
        assert out["high_res_masks"].shape == (1, 1, 256, 256)
    assert not torch.equal(ungated["low_res_masks"], automatic["low_res_masks"])


def test_automatic_mode_ignores_exemplars(model: MOISSAM2Base, frame) -> None:
    feats, pos, sizes = frame
    exemplars = [model_exemplar(model, frame, 1, 2, True, seed=0)]
    with torch.inference_mode():
        with_ex = model.track_semantic_exemplars(4, feats, pos, sizes, exemplars, automatic=True)
        without = model.track_semantic_exemplars(4, feats, pos, sizes, [], automatic=True)
        fused = model.track_semantic_exemplars(4, feats, pos, sizes, exemplars, automatic=False)
        model.use_automatic_segmentation_prob = 1.0
        try:
            drawn = model.track_semantic_exemplars(4, feats, pos, sizes, exemplars)
        finally:
            model.use_automatic_segmentation_prob = 0.0
    assert torch.equal(with_ex["low_res_masks"], without["low_res_masks"])
    assert torch.equal(drawn["low_res_masks"], with_ex["low_res_masks"])
    assert not torch.equal(fused["low_res_masks"], with_ex["low_res_masks"])


def test_prompted_exemplar_memory_is_binarised(model: MOISSAM2Base, frame) -> None:
    feats, _, sizes = frame
    logits = torch.full((1, 1, 64, 64), -3.0)
    logits[..., 20:40, 20:40] = 2.0
    base = {"obj_ptr": torch.zeros(1, 256), "object_score_logits": torch.ones(1, 1)}
    with torch.inference_mode():
        weak = model.exemplar_from_output(1, 0, base | {"pred_masks": logits}, is_prompted=True,
                                          current_vision_feats=feats, feat_sizes=sizes)
        strong = model.exemplar_from_output(1, 0, base | {"pred_masks": 5 * logits}, is_prompted=True,
                                            current_vision_feats=feats, feat_sizes=sizes)
        empty = model.exemplar_from_output(1, 0, base | {"pred_masks": -logits.abs() - 1}, is_prompted=True,
                                           current_vision_feats=feats, feat_sizes=sizes)
        model.binarize_mask_from_pts_for_mem_enc = False
        try:
            soft = model.exemplar_from_output(1, 0, base | {"pred_masks": logits}, is_prompted=True,
                                              current_vision_feats=feats, feat_sizes=sizes)
        finally:
            model.binarize_mask_from_pts_for_mem_enc = True
    assert empty is None and weak is not None and strong is not None and soft is not None
    assert weak.key == "1_0_prompted" and weak.maskmem_features.shape == (1, 64, 16, 16)
    assert torch.equal(weak.maskmem_features, strong.maskmem_features)
    assert not torch.equal(weak.maskmem_features, soft.maskmem_features)
