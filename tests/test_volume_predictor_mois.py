"""MOIS-SAM2 volume predictor: instance parity with upstream sam2, exemplar creation, bank lifetime, overlap filter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mois_sam2_nf.errors import InputError
from PIL import Image
from sam2.build_sam import build_sam2

from mois_sam2_nf.models.mois_sam2 import build_mois_sam2
from mois_sam2_nf.models.mois_sam2.predictor import (
    MOISSAM2Predictor,
    component_click_points,
    component_overlap_keep,
    exemplar_bank,
)
from mois_sam2_nf.models.sam2.volume_predictor import install_memory_dtype_hook

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMAGE_SIZE = 128
TARGET = "mois_sam2_nf.models.mois_sam2.predictor.MOISSAM2Predictor"


@pytest.fixture(scope="module")
def predictor() -> MOISSAM2Predictor:
    """Hiera-T MOIS-SAM2 predictor at 128 px, random weights, object-score head biased towards 'present'."""
    torch.manual_seed(0)
    model = build_mois_sam2("mois_sam2.1_hiera_t", device="cpu", target=TARGET, apply_postprocessing=False,
                            overrides=[f"++model.image_size={IMAGE_SIZE}"])
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(4.0)
    return model


def _volume(shape: tuple[int, int, int] = (40, 32, 5)) -> np.ndarray:
    rng = np.random.default_rng(0)
    vol = rng.random(shape).astype(np.float32) * 0.3
    vol[12:24, 8:20, :] += 0.6
    return np.clip(vol, 0, 1)


def _session_calls(model: torch.nn.Module, state: dict) -> list[torch.Tensor]:
    outputs = []
    for obj_id, frame, point in ((1, 2, [14.0, 18.0]), (2, 1, [5.0, 30.0])):
        getattr(model, "reset_objects", model.reset_state)(state)  # MOIS keeps its exemplar bank
        outputs.append(model.add_new_points_or_box(state, frame, obj_id, points=[point], labels=[1])[2])
        for reverse in (False, True):
            outputs.extend(logits for _, _, logits in model.propagate_in_video(state, start_frame_idx=frame,
                                                                               reverse=reverse))
    return outputs


def test_instance_outputs_equal_upstream_with_exemplars_on(predictor: MOISSAM2Predictor, tmp_path: Path) -> None:
    upstream = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu", apply_postprocessing=False,
                          hydra_overrides_extra=["++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor",
                                                 f"++model.image_size={IMAGE_SIZE}"])
    sam2_keys = set(upstream.state_dict())
    upstream.load_state_dict({k: v for k, v in predictor.state_dict().items() if k in sam2_keys})
    install_memory_dtype_hook(upstream.memory_attention)
    volume = _volume()
    ours = predictor.init_state(volume)
    for f in range(volume.shape[2]):
        Image.fromarray(np.zeros((*volume.shape[:2], 3), dtype=np.uint8)).save(tmp_path / f"{f:05d}.jpg")
    theirs = upstream.init_state(str(tmp_path))
    theirs["images"] = ours["images"].clone()
    theirs["cached_features"] = {}
    ours_out, theirs_out = _session_calls(predictor, ours), _session_calls(upstream, theirs)
    assert len(exemplar_bank(ours)) > 2, "exemplar creation must run during this comparison"
    assert all(torch.equal(a, b) for a, b in zip(ours_out, theirs_out, strict=True))


def test_exemplar_keys_and_bank_lifetime(predictor: MOISSAM2Predictor) -> None:
    state = predictor.init_state(_volume())
    predictor.add_new_points_or_box(state, 2, 7, points=[[14.0, 18.0]], labels=[1])
    bank = exemplar_bank(state)
    assert bank.keys() == ["7_2_prompted"]
    frames = [f for f, _, _ in predictor.propagate_in_video(state, start_frame_idx=2)]
    assert frames == [2, 3, 4]
    assert set(bank.keys()) <= {"7_2_prompted", "7_3_nonprompted", "7_4_nonprompted"} and "7_2_prompted" in bank
    predictor.reset_objects(state)
    kept = len(bank)
    predictor.add_new_points_or_box(state, 0, 8, points=[[14.0, 18.0]], labels=[1], add_exemplar=False)
    assert len(bank) == kept
    _, _, logits, _ = predictor.find_exemplars_in_slice(state, 1)
    assert logits.shape == (1, 1, 40, 32)
    predictor.reset_state(state)
    assert len(bank) == 0
    with pytest.raises(InputError, match="mask prompts"):
        predictor.add_new_mask(state, 0, 1, np.ones((40, 32), dtype=bool))


def test_propagate_exemplars_keeps_prompted_and_adds_components(predictor: MOISSAM2Predictor) -> None:
    volume = _volume()
    state = predictor.init_state(volume)
    predictor.add_new_points_or_box(state, 2, 1, points=[[14.0, 18.0]], labels=[1])
    prompted = np.zeros(volume.shape, dtype=bool)
    prompted[14:20, 10:16, 2] = True
    result = predictor.propagate_exemplars(state, prompted)
    assert result.shape == volume.shape and result.dtype == bool
    assert (result >= prompted).all()
    assert state["volume"].cache.encode_count == volume.shape[2]


def test_component_overlap_filter() -> None:
    semantic = np.zeros((8, 12), dtype=bool)
    semantic[0:4, 0:4] = True      # component a, 16 px
    semantic[0:4, 6:10] = True     # component b, 16 px
    prompted = np.zeros_like(semantic)
    prompted[0:2, 0:4] = True      # covers half of a (one prompted component)
    prompted[0:2, 6:8] = True      # covers 4/16 of b ...
    prompted[3, 6:10] = True       # ... plus another 4/16 of b through a second prompted component
    kept = component_overlap_keep(semantic, prompted, 0.5, "per_component")
    assert not kept[0:4, 0:4].any() and kept[0:4, 6:10].all()
    kept_union = component_overlap_keep(semantic, prompted, 0.5, "union")
    assert not kept_union.any()
    assert component_overlap_keep(semantic, np.zeros_like(semantic), 0.5).sum() == 32
    with pytest.raises(ValueError):
        component_overlap_keep(semantic, prompted, 0.5, "bogus")  # type: ignore[arg-type]


def _with_fixed_com_points(predictor: MOISSAM2Predictor, points: list[tuple[float, float]],
                           monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every slice report ``points`` as CoM clicks (semantic logits stay real); return the searched frames."""
    searched: list[int] = []
    find = predictor.find_exemplars_in_slice

    def fixed(state: dict, frame_idx: int, *args: object) -> tuple:
        searched.append(frame_idx)
        return (*find(state, frame_idx, *args)[:3], points)

    monkeypatch.setattr(predictor, "find_exemplars_in_slice", fixed)
    return searched


def test_com_pass_clicks_components_outside_the_prediction(predictor: MOISSAM2Predictor,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    volume = _volume()
    state = predictor.init_state(volume)
    predictor.add_new_points_or_box(state, 2, 1, points=[[14.0, 18.0]], labels=[1])
    bank_before = exemplar_bank(state).keys()
    prompted = np.zeros(volume.shape, dtype=bool)
    prompted[16:22, 12:18, :] = True       # covers the first CoM point (x=14, y=18) on every slice
    searched = _with_fixed_com_points(predictor, [(14.0, 18.0), (4.0, 4.0)], monkeypatch)
    clicks: list[tuple[int, list, bool]] = []
    add = predictor.add_new_points_or_box
    monkeypatch.setattr(predictor, "add_new_points_or_box", lambda state, frame, obj_id, **kw: (
        clicks.append((frame, kw["points"], kw["is_com"])) or add(state, frame, obj_id, **kw)))

    result = predictor.propagate_exemplars_com(state, prompted, slices="all")
    assert searched == list(range(volume.shape[2]))
    assert clicks == [(f, [[4.0, 4.0]], True) for f in range(volume.shape[2])]  # the covered point is skipped
    assert (result >= prompted).all() and result[4, 4, :].all()   # each CoM object covers its click
    assert exemplar_bank(state).keys() == bank_before             # CoM objects add no exemplars
    assert state["obj_ids"] == []

    clicks.clear()
    searched.clear()
    result = predictor.propagate_exemplars_com(state, np.zeros_like(prompted), slices="prompted")
    assert searched == [2] and {c[0] for c in clicks} == {2}      # only the user-clicked slice is searched
    assert result[:, :, [0, 1, 3, 4]].any()                       # ... and its objects are propagated both ways
    with pytest.raises(ValueError, match="slices"):
        predictor.propagate_exemplars_com(state, prompted, slices="some")  # type: ignore[arg-type]


def test_com_click_points_are_distance_maxima_of_large_components() -> None:
    probability = np.zeros((20, 30))
    probability[2:9, 3:10] = 0.9    # 7 x 7 block -> unique distance maximum at its centre (row 5, col 6)
    probability[12:14, 20:22] = 0.9  # 4 px: below the area threshold
    probability[15:18, 25:28] = 0.4  # below the binarisation threshold
    assert component_click_points(probability, 0.5, min_area=5) == [(6.0, 5.0)]
    assert component_click_points(probability, 0.5, min_area=1) == [(6.0, 5.0), (20.0, 12.0)]


def test_com_detection_on_frame_size_masks(predictor: MOISSAM2Predictor, monkeypatch: pytest.MonkeyPatch) -> None:
    state = predictor.init_state(_volume())
    predictor.add_new_points_or_box(state, 2, 1, points=[[14.0, 18.0]], labels=[1])
    monkeypatch.setattr(predictor, "use_low_res_masks_for_com_detection", False)
    _, _, logits, points = predictor.find_exemplars_in_slice(state, 2, 0.5, 1)
    expected = component_click_points(torch.sigmoid(logits[0, 0]).numpy(), 0.5, 1)
    assert points == expected and len(points) > 0
