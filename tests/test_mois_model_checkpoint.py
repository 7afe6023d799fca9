"""MOIS-SAM2 / SAM2 configs, builders and checkpoints: b+ key/shape list (released checkpoint), strict reloads,
official SAM2.1 checkpoints from sam2's own builder, bad files, reference YAML remapping."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from sam2.build_sam import build_sam2

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.mois_sam2 import MOISSAM2Base, build_mois_sam2, load_checkpoint, save_checkpoint
from mois_sam2_nf.models.mois_sam2.build import MOIS_CONFIG_DIR
from mois_sam2_nf.models.sam2 import build_sam2_model
from mois_sam2_nf.models.sam2.build import SAM2_CONFIG_DIR

torch.set_num_threads(1)

SAM2_PACKAGED = Path(__import__("sam2").__file__).parent / "configs" / "sam2.1"


def at_256(*modules: str) -> list[str]:
    """Overrides running a Hiera-T config at 256 px (16x16 tokens) with SAM2's real widths (hidden 256, memory 64)."""
    return ["model.image_size=256"] + [f"model.{module}.layer.{attention}.feat_sizes=[16,16]"
                                       for module in modules for attention in ("self_attention", "cross_attention")]


MOIS_T_256 = at_256("memory_attention", "exemplar_attention")
SAM2_T_256 = at_256("memory_attention")


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def num_params(model: torch.nn.Module, prefix: str = "") -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix))


def build_b_plus(*overrides: str) -> dict[str, tuple[int, ...]] | int:
    """Build the b+ MOIS model with overrides; return (state-dict shapes, parameter count) and free it."""
    model = build_mois_sam2("mois_sam2.1_hiera_b+", overrides=overrides)
    result = shapes(model), num_params(model)
    del model
    gc.collect()
    return result


def test_b_plus_keys_and_shapes_match_spec() -> None:
    model = build_mois_sam2("mois_sam2.1_hiera_b+")
    sd = shapes(model)
    assert len(sd) == 726 and num_params(model) == 87_362_690
    assert num_params(model, "exemplar_attention.") == 5_922_304
    memory = {k[len("memory_attention."):]: v for k, v in sd.items() if k.startswith("memory_attention.")}
    exemplar = {k[len("exemplar_attention."):]: v for k, v in sd.items() if k.startswith("exemplar_attention.")}
    assert len(exemplar) == 106 and exemplar == memory
    for i in range(4):
        layer = f"exemplar_attention.layers.{i}."
        assert sd[layer + "cross_attn_image.k_proj.weight"] == (256, 64)
        assert sd[layer + "cross_attn_image.q_proj.weight"] == (256, 256)
        assert sd[layer + "linear1.weight"] == (2048, 256) and sd[layer + "linear2.weight"] == (256, 2048)
    added = {k: v for k, v in sd.items() if not k.startswith("exemplar_attention.") and k.split(".")[0] in
             ("exemplar_type_enc", "no_exemplar_embed", "no_exemplar_pos_enc", "exemplar_obj_ptr_proj",
              "exemplar_obj_ptr_tpos_proj")}
    assert added == {"exemplar_type_enc": (2, 1, 1, 64), "no_exemplar_embed": (4096, 1, 64),
                     "no_exemplar_pos_enc": (4096, 1, 64), "exemplar_obj_ptr_proj.weight": (256, 256),
                     "exemplar_obj_ptr_proj.bias": (256,)}
    plain = build_sam2_model("sam2.1_hiera_b+")
    assert len(plain.state_dict()) == 615 and num_params(plain) == 80_850_178
    assert {k: v for k, v in sd.items() if k in plain.state_dict()} == shapes(plain)
    # trunc-normal(std 0.02) initialisation of the added embeddings (as sam2: truncated at +-2 absolute)
    embed = model.no_exemplar_embed.detach()
    assert 0.019 < float(embed.std()) < 0.021 and abs(float(embed.mean())) < 0.001


def test_b_plus_variants_match_spec() -> None:
    direct, direct_count = build_b_plus("model.directly_add_no_exemplar_embed=true")
    assert direct_count == 86_838_914
    assert direct["no_exemplar_embed"] == direct["no_exemplar_pos_enc"] == (1, 1, 256)
    mlp, mlp_count = build_b_plus("model.use_mlp_for_exemplar_obj_ptr_proj=true",
                                  "model.proj_tpos_enc_in_exemplar_obj_ptrs=true")
    assert mlp_count == 87_510_722
    assert {k: v for k, v in mlp.items() if k.startswith("exemplar_obj_ptr")} == {
        **{f"exemplar_obj_ptr_proj.layers.{i}.weight": (256, 256) for i in range(3)},
        **{f"exemplar_obj_ptr_proj.layers.{i}.bias": (256,) for i in range(3)},
        "exemplar_obj_ptr_tpos_proj.weight": (64, 256), "exemplar_obj_ptr_tpos_proj.bias": (64,)}
    no_ptr, no_ptr_count = build_b_plus("model.use_exemplar_obj_ptrs_in_encoder=false")
    assert not any(k.startswith("exemplar_obj_ptr") for k in no_ptr)
    assert no_ptr_count == 87_362_690 - 256 * 256 - 256


def test_plain_configs_equal_sam2_packaged() -> None:
    for name in ("sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+"):
        ours = OmegaConf.to_container(OmegaConf.load(SAM2_CONFIG_DIR / f"{name}.yaml"))
        theirs = OmegaConf.to_container(OmegaConf.load(SAM2_PACKAGED / f"{name}.yaml"))
        assert ours == theirs, name
        mois = OmegaConf.to_container(OmegaConf.load(MOIS_CONFIG_DIR / f"mois_{name}.yaml"))["model"]
        assert mois["memory_attention"]["layer"] == mois["exemplar_attention"]["layer"]
        assert {k: v for k, v in mois.items() if k in theirs["model"] and k != "_target_"} == \
            {k: v for k, v in theirs["model"].items() if k != "_target_"}


def random_frame(model: MOISSAM2Base, seed: int):
    image = torch.rand(1, 3, model.image_size, model.image_size, generator=torch.Generator().manual_seed(seed))
    _, feats, pos, sizes = model._prepare_backbone_features(model.forward_image(image))
    return feats, pos, sizes


def semantic_outputs(model: MOISSAM2Base) -> dict[str, torch.Tensor]:
    """Semantic decoding of a random frame with one prompted and one non-prompted exemplar made by the model."""
    with torch.inference_mode():
        feats, pos, sizes = random_frame(model, seed=3)
        logits = torch.full((1, 1, 64, 64), -5.0)
        logits[..., 10:30, 12:40] = 4.0
        prompted = model.exemplar_from_output(
            1, 2, {"pred_masks": logits, "obj_ptr": torch.linspace(-1, 1, 256)[None],
                   "object_score_logits": torch.ones(1, 1)}, is_prompted=True, current_vision_feats=feats,
            feat_sizes=sizes)
        step = model.track_step(5, True, feats, pos, sizes, None, None,
                                {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}, 8)
        step["pred_masks"] = logits.flip(-1)
        propagated = model.exemplar_from_output(1, 5, step, is_prompted=False)
        return model.track_semantic_exemplars(4, feats, pos, sizes, [prompted, propagated])


def test_saved_checkpoint_reloads_to_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(5)
    model = build_mois_sam2("mois_sam2.1_hiera_t", overrides=MOIS_T_256)
    path = tmp_path / "mois_demo.pt"
    save_checkpoint(model, path)
    assert [p.name for p in tmp_path.iterdir()] == ["mois_demo.pt"]
    torch.manual_seed(6)
    reloaded = build_mois_sam2("mois_sam2.1_hiera_t", checkpoint=path, overrides=MOIS_T_256)
    assert all(torch.equal(v, reloaded.state_dict()[k]) for k, v in model.state_dict().items())
    first, second = semantic_outputs(model), semantic_outputs(reloaded)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert float(first["low_res_masks"].std()) > 0 and float(first["obj_ptr"].std()) > 0
    # a MOIS checkpoint loads into plain SAM2 (MOIS-only keys dropped)
    plain = build_sam2_model("sam2.1_hiera_t", checkpoint=path, overrides=SAM2_T_256)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in plain.state_dict().items())


@pytest.fixture(scope="module")
def official_t(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """Official-format SAM2.1 Hiera-T checkpoint made by sam2's own builder (random weights)."""
    torch.manual_seed(11)
    upstream = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu")
    state = {k: v.clone() for k, v in upstream.state_dict().items()}
    path = tmp_path_factory.mktemp("official") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": state}, path)
    return path, state


def test_official_checkpoint_loads_into_sam2_and_mois(official_t) -> None:
    path, state = official_t
    plain = build_sam2_model("sam2.1_hiera_t", checkpoint=path)
    assert plain.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in plain.state_dict().items())
    mois = build_mois_sam2("mois_sam2.1_hiera_t", checkpoint=path)
    loaded = mois.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    exemplar_keys = [k for k in loaded if k.startswith("exemplar_attention.")]
    assert len(exemplar_keys) == 106
    for key in exemplar_keys:
        assert torch.equal(loaded[key], state["memory_attention." + key[len("exemplar_attention."):]])
    assert loaded["exemplar_attention.norm.weight"].data_ptr() != loaded["memory_attention.norm.weight"].data_ptr()


def test_bad_checkpoints_raise_one_line_errors(official_t, tmp_path: Path) -> None:
    path, state = official_t
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    layout = tmp_path / "layout.pt"
    torch.save(state, layout)
    missing = tmp_path / "missing_key.pt"
    torch.save({"model": {k: v for k, v in state.items() if k != "maskmem_tpos_enc"}}, missing)
    extra = tmp_path / "extra_key.pt"
    torch.save({"model": state | {"surplus.weight": torch.zeros(3)}}, extra)
    wrong_shape = tmp_path / "wrong_shape.pt"
    torch.save({"model": state | {"no_mem_embed": torch.zeros(1, 1, 7)}}, wrong_shape)
    cases = [(tmp_path / "absent.pt", "not found"), (truncated, "truncated or corrupt"),
             (layout, "{'model': state_dict}"), (missing, "missing keys: maskmem_tpos_enc"),
             (extra, "unexpected: surplus.weight"), (wrong_shape, "shape mismatch: no_mem_embed")]
    models = (build_mois_sam2("mois_sam2.1_hiera_t"), build_sam2_model("sam2.1_hiera_t"))
    for file, expected in cases:
        for model in models:
            with pytest.raises(InputError) as info:
                load_checkpoint(model, file)
            message = str(info.value)
            assert str(file) in message and expected in message and "\n" not in message
    with pytest.raises(InputError, match="missing keys: maskmem_tpos_enc"):
        build_mois_sam2("mois_sam2.1_hiera_t", checkpoint=missing)


def test_mois_checkpoint_missing_exemplar_key_is_rejected(tmp_path: Path) -> None:
    model = build_mois_sam2("mois_sam2_demo")
    state = {k: v for k, v in model.state_dict().items() if k != "exemplar_type_enc"}
    path = tmp_path / "partial_mois.pt"
    torch.save({"model": state}, path)
    with pytest.raises(InputError, match="missing keys: exemplar_type_enc"):
        build_mois_sam2("mois_sam2_demo", checkpoint=path)


def test_reference_yaml_builds_after_target_remapping(tmp_path: Path) -> None:
    text = (MOIS_CONFIG_DIR / "mois_sam2_demo.yaml").read_text()
    text = text.replace("mois_sam2_nf.models.mois_sam2.model.MOISSAM2Base", "sam2.modeling.mois_sam2_base.MOISSAM2Base")
    text = text.replace("mois_sam2_nf.models.mois_sam2.exemplar_attention.ExemplarAttention",
                        "sam2.modeling.exemplar_attention.ExemplarAttention")
    reference = tmp_path / "reference_mois.yaml"
    reference.write_text(text)
    model = build_mois_sam2(reference)
    assert type(model) is MOISSAM2Base and type(model.exemplar_attention).__name__ == "ExemplarAttention"


def test_builder_settings_and_errors() -> None:
    model = build_mois_sam2("mois_sam2_demo", mode="train")
    decoder = model.sam_mask_decoder
    assert model.training and model.binarize_mask_from_pts_for_mem_enc
    assert decoder.dynamic_multimask_via_stability and decoder.dynamic_multimask_stability_delta == 0.05
    assert decoder.dynamic_multimask_stability_thresh == 0.98
    raw = build_sam2_model("sam2_demo", apply_postprocessing=False)
    assert not raw.training and not raw.binarize_mask_from_pts_for_mem_enc
    predictor = build_sam2_model("sam2_demo", target="sam2.sam2_video_predictor.SAM2VideoPredictor")
    assert type(predictor).__name__ == "SAM2VideoPredictor" and predictor.fill_hole_area == 8
    with pytest.raises(InputError, match="unknown config"):
        build_mois_sam2("mois_sam2.1_hiera_xl")
    with pytest.raises(InputError, match="not in the config"):
        build_mois_sam2("mois_sam2_demo", overrides=["model.num_max_exemplar=3"])
    with pytest.raises(InputError, match="cannot be imported"):
        build_sam2_model("sam2_demo", target="mois_sam2_nf.nowhere.Model")
