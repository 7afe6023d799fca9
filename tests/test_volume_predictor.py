"""Volume predictor (plain SAM2 path): upstream parity, encode-once cache, CPU precisions, early stop, hole filling."""

from __future__ import annotations

import io
from pathlib import Path

import cc3d
import numpy as np
import pytest
import torch
from PIL import Image
from sam2.build_sam import build_sam2

from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.segmenters import Click, Scan
from mois_sam2_nf.models.sam2.postprocess import HOLE_FILL_LOGIT, fill_holes
from mois_sam2_nf.models.sam2.volume_predictor import SAM2VolumePredictor, install_memory_dtype_hook
from mois_sam2_nf.models.session import ScanSession

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMAGE_SIZE = 128
OURS = "mois_sam2_nf.models.sam2.volume_predictor.SAM2VolumePredictor"
UPSTREAM = "sam2.sam2_video_predictor.SAM2VideoPredictor"


def build(target: str, *, seed: int = 0, object_bias: float = 4.0) -> torch.nn.Module:
    """Hiera-T predictor with random weights (seeded) at IMAGE_SIZE; the object-score head is biased so objects
    are predicted present (positive bias) or absent (negative bias). Corrected frames become conditioning frames
    (our predictor's default; upstream's is set to match)."""
    torch.manual_seed(seed)
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu",
                       hydra_overrides_extra=[f"++model._target_={target}", f"++model.image_size={IMAGE_SIZE}",
                                              "++model.add_all_frames_to_correct_as_cond=true"],
                       apply_postprocessing=False)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(object_bias)
    return model


def random_volume(shape: tuple[int, int, int] = (40, 32, 5), seed: int = 0) -> np.ndarray:
    """Smooth-ish random canonical volume in [0, 1] with a bright blob per frame."""
    rng = np.random.default_rng(seed)
    vol = rng.random(shape).astype(np.float32) * 0.3
    vol[12:24, 8:20, :] += 0.6
    return np.clip(vol, 0, 1)


def _upstream_state(model: torch.nn.Module, images: torch.Tensor, shape: tuple[int, int, int], tmp: Path) -> dict:
    """Upstream state on a JPEG folder of the right frame size, then given our exact input tensor (parity set-up)."""
    height, width, frames = shape
    for f in range(frames):
        Image.fromarray(np.zeros((height, width, 3), dtype=np.uint8)).save(tmp / f"{f:05d}.jpg")
    state = model.init_state(str(tmp))
    state["images"] = images.clone()
    state["cached_features"] = {}
    return state


def _interactions(model: torch.nn.Module, state: dict) -> list[torch.Tensor]:
    """Two objects in sequence (reset between them), with a correction click and both propagation directions."""
    outputs: list[torch.Tensor] = []
    for obj_id, clicks in ((1, [(2, [[14.0, 18.0]], [1]), (3, [[12.0, 16.0], [30.0, 5.0]], [1, 0])]),
                           (2, [(1, [[5.0, 30.0]], [1])])):
        model.reset_state(state)
        for frame, points, labels in clicks:
            outputs.append(model.add_new_points_or_box(state, frame, obj_id, points=points, labels=labels)[2])
        start = min(frame for frame, _, _ in clicks)
        for reverse in (False, True):
            outputs.extend(logits for _, _, logits in model.propagate_in_video(state, start_frame_idx=start,
                                                                               reverse=reverse))
        outputs.append(model.add_new_points_or_box(state, 3, obj_id, points=[[20.0, 20.0]], labels=[0],
                                                   clear_old_points=False)[2])
        outputs.extend(logits for _, _, logits in model.propagate_in_video(state))
    return outputs


def test_parity_with_upstream_video_predictor(tmp_path: Path) -> None:
    ours = build(OURS)
    upstream = build(UPSTREAM, seed=1)
    upstream.load_state_dict(ours.state_dict())
    install_memory_dtype_hook(upstream.memory_attention)
    volume = random_volume()
    our_state = ours.init_state(volume)
    up_state = _upstream_state(upstream, our_state["images"], volume.shape, tmp_path)
    ours_out = _interactions(ours, our_state)
    up_out = _interactions(upstream, up_state)
    assert len(ours_out) == len(up_out) > 10
    for a, b in zip(ours_out, up_out):
        assert torch.equal(a, b)
    stacked = torch.cat(ours_out)
    assert (stacked > 0).any() and (stacked <= 0).any(), "degenerate masks make the parity check vacuous"


def _scan(volume: np.ndarray) -> Scan:
    """A scan whose array is already canonical (affine with I, L, A axis codes) holding ``volume`` * 1000."""
    affine = np.array([[0, -1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    view = ScanView.from_affine(affine, volume.shape)
    assert view.axcodes == ("I", "L", "A")
    return Scan("case", (volume * 1000).astype(np.int16), affine, view)


def test_each_frame_encoded_once_per_scan() -> None:
    model = build(OURS)
    calls: list[int] = []
    original = model.forward_image
    model.forward_image = lambda img: calls.append(1) or original(img)  # type: ignore[method-assign]
    volume = random_volume((40, 32, 6))
    session = ScanSession(model, _scan(volume))
    lesions = [(1, (20, 14, 2)), (2, (30, 5, 4)), (3, (10, 25, 0))]
    for lesion_id, (row, col, frame) in lesions:
        clicks: list[Click] = []
        for t in range(3):
            clicks.append(Click(row, col + t, min(frame + t, 5), True))
            mask = session.segment_lesion(lesion_id, clicks)
            assert mask.shape == volume.shape
    assert session.encode_count == volume.shape[2]
    assert len(calls) == volume.shape[2]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cpu_precisions_run_two_lesions(precision: str) -> None:
    model = build(OURS)
    session = ScanSession(model, _scan(random_volume()), precision=precision)
    first = session.segment_lesion(1, [Click(18, 14, 2, True)])
    second = session.segment_lesion(2, [Click(5, 5, 1, True), Click(30, 28, 1, False)])
    assert first.any() and second.dtype == bool
    assert first[18, 14, 2]


def _propagated_frames(model: SAM2VolumePredictor, volume: np.ndarray, k: int | None) -> list[int]:
    state = model.init_state(volume)
    model.add_new_points_or_box(state, 1, 1, points=[[14.0, 18.0]], labels=[1])
    return [frame for frame, _, _ in model.propagate_in_video(state, early_stop_k=k)]


def test_early_stop() -> None:
    volume = random_volume((40, 32, 7))
    present = build(OURS, object_bias=8.0)
    absent = build(OURS, object_bias=-8.0)
    full = list(range(1, 7))
    assert _propagated_frames(present, volume, None) == full
    assert _propagated_frames(present, volume, 2) == full
    assert _propagated_frames(absent, volume, None) == full
    assert _propagated_frames(absent, volume, 2) == [1, 2]
    absent.early_stop_k = 3
    assert _propagated_frames(absent, volume, None) == [1, 2, 3]


def _reference_fill(logits: np.ndarray, max_area: int) -> np.ndarray:
    """Independent reference: cc3d 8-connected background components of each 2-D map."""
    out = logits.copy()
    for b in range(logits.shape[0]):
        labels = cc3d.connected_components((logits[b, 0] <= 0).astype(np.uint8), connectivity=8)
        for component in range(1, int(labels.max()) + 1):
            region = labels == component
            if region.sum() <= max_area:
                out[b, 0][region] = HOLE_FILL_LOGIT
    return out


def test_fill_holes_matches_8_connectivity_reference() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0.8, 1.0, size=(3, 1, 32, 32)).astype(np.float32)
    for max_area in (1, 4, 8, 40):
        filled = fill_holes(torch.from_numpy(logits), max_area).numpy()
        np.testing.assert_array_equal(filled, _reference_fill(logits, max_area))
    # a diagonal pair of background pixels is one 8-connected hole of area 2
    toy = np.ones((1, 1, 5, 5), dtype=np.float32)
    toy[0, 0, 1, 1] = toy[0, 0, 2, 2] = -1.0
    assert (fill_holes(torch.from_numpy(toy), 1).numpy() == toy).all()
    assert (fill_holes(torch.from_numpy(toy), 2).numpy()[0, 0, [1, 2], [1, 2]] == HOLE_FILL_LOGIT).all()
    toy_tensor = torch.from_numpy(toy)
    assert fill_holes(toy_tensor, 0) is toy_tensor


def test_silencing_sam2_progress_is_per_thread() -> None:
    """A propagation in one thread (the app's worker threads) never silences, or un-silences, another thread's bars."""
    import threading

    import sam2.sam2_video_predictor as upstream

    from mois_sam2_nf.models.sam2.volume_predictor import _quiet_upstream_progress

    inside, release, seen = threading.Event(), threading.Event(), {}

    def quiet_worker() -> None:
        with _quiet_upstream_progress():
            inside.set()
            release.wait(10)
            seen["worker"] = upstream.tqdm(range(1), file=io.StringIO()).disable

    worker = threading.Thread(target=quiet_worker)
    worker.start()
    assert inside.wait(10)
    with _quiet_upstream_progress():
        pass  # a block that ends in this thread must not end the worker's
    seen["main"] = upstream.tqdm(range(1), file=io.StringIO()).disable
    release.set()
    worker.join(10)
    assert seen == {"worker": True, "main": False}
