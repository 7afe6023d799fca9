"""Interactive shortcuts of the SAM2-family scan session and the speed profiles of `segment` and the Slicer app.

The early stop keeps the masks of every slice it reaches, a large correction-reuse k equals the exact path, replay
stays deterministic with reuse, the bf16 embedding cache halves the features, and the `interactive` / `exact`
profiles give the documented options. Model: the shipped demo MOIS-SAM2 weights on a crop of a demo scan (the only
weights whose object score says where a lesion is absent); the scan is rendered by the synthetic generator (demo preset,
seed 0), so the tests need no generated cohort on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mois_sam2_nf.data.synthetic.patient import SyntheticPatient, plan_cohort
from mois_sam2_nf.data.synthetic.presets import get_preset
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, Scan, create_segmenter
from mois_sam2_nf.models.interactive import conf_overrides, interactive_settings
from mois_sam2_nf.models.session import ScanSession

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "model_weights" / "demo" / "mois_sam2_demo.pt"
CASE = "1_2009_P_2002_T2"
#: affine whose voxel axes already are the canonical (I, L, A) axes: clicks (i, j, k) = (row, col, frame)
CANONICAL_AFFINE = np.array([[0, -1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
#: canonical rows x cols, and frames, of the crop around the lesion
CROP = 192
FRAMES = 10


@pytest.fixture(scope="module")
def lesion_scan() -> tuple[Scan, list[list[Click]]]:
    """A canonical crop of a demo test scan around its largest lesion, and three interactions on that lesion:
    a centre click, a second positive click on the same slice, a positive click on the next lesion slice."""
    preset = get_preset("demo")
    plan = next(plan for plan in plan_cohort(preset, 0) if CASE in plan.case_ids(0))
    rendered = next(scan for scan in SyntheticPatient(preset, 0, plan).scans() if scan.case_id == CASE)
    view = ScanView.from_affine(rendered.affine, rendered.image.shape)
    volume, labels = view.to_canonical(rendered.image), view.to_canonical(rendered.label)
    lesion = np.bincount(labels[labels > 0].ravel()).argmax()
    rows, cols, frames = np.nonzero(labels == lesion)
    top = int(np.clip(rows.mean() - CROP // 2, 0, volume.shape[0] - CROP))
    left = int(np.clip(cols.mean() - CROP // 2, 0, volume.shape[1] - CROP))
    first = int(np.clip(np.median(frames) - FRAMES // 2, 0, volume.shape[2] - FRAMES))
    window = (slice(top, top + CROP), slice(left, left + CROP), slice(first, first + FRAMES))
    crop = np.ascontiguousarray(volume[window])
    inside = labels[window] == lesion
    slices = np.argsort(inside.sum(axis=(0, 1)))[::-1]
    points = []
    for frame in (slices[0], slices[0], min(slices[1], slices[0] + 1)):
        r, c = np.nonzero(inside[:, :, frame])
        pick = len(r) // 2 if not points or frame != points[-1][2] else len(r) // 5
        points.append((int(r[pick]), int(c[pick]), int(frame)))
    scan = Scan(CASE, crop, CANONICAL_AFFINE, ScanView.from_affine(CANONICAL_AFFINE, crop.shape))
    return scan, [[Click(*point, True)] for point in points]


def _segmenter(**options: object):
    return create_segmenter("mois_sam2", checkpoint=str(WEIGHTS), device="cpu", **options)


def _run(scan: Scan, interactions: list[list[Click]], **options: object) -> tuple[list[np.ndarray], int]:
    """Masks after each interaction (original grid) and the number of tracking steps the model ran."""
    segmenter = _segmenter(**options)
    steps = [0]
    track_step = segmenter.predictor.track_step

    def counting(*args: object, **kwargs: object) -> dict:
        steps[0] += 1
        return track_step(*args, **kwargs)

    segmenter.predictor.track_step = counting
    segmenter.start_scan(scan)
    masks = [segmenter.add_clicks(1, clicks) for clicks in interactions]
    segmenter.end_scan()
    return masks, steps[0]


def test_early_stop_keeps_the_mask_of_every_slice_its_first_pass_reaches(lesion_scan) -> None:
    scan, interactions = lesion_scan
    exact, exact_steps = _run(scan, interactions)
    fast, fast_steps = _run(scan, interactions, early_stop_k=2)
    assert fast_steps < exact_steps
    assert all(mask.any() for mask in fast)
    # the forward pass from the clicked slice is the exact one until it stops; the slices beyond are empty (the
    # reverse pass and later interactions also see a shorter memory, so they may differ slightly)
    start = interactions[0][0].k
    a, b = exact[0][:, :, start:], fast[0][:, :, start:]
    differing = [f for f in range(a.shape[2]) if not np.array_equal(a[:, :, f], b[:, :, f])]
    assert not b[:, :, differing].any()
    # k as large as the scan never stops early: the exact path
    same, _ = _run(scan, interactions, early_stop_k=scan.image.shape[2] + 1)
    for a, b in zip(exact, same):
        np.testing.assert_array_equal(a, b)


def test_correction_reuse_with_a_large_k_equals_the_exact_path(lesion_scan) -> None:
    scan, interactions = lesion_scan
    on_the_clicked_slice = interactions[:2]  # the correction clicks the lesion's only conditioning slice
    exact, exact_steps = _run(scan, on_the_clicked_slice)
    large, large_steps = _run(scan, on_the_clicked_slice, correction_reuse_k=scan.image.shape[2] + 1)
    for a, b in zip(exact, large):
        np.testing.assert_array_equal(a, b)
    assert large_steps == exact_steps
    _, reuse_steps = _run(scan, interactions, correction_reuse_k=1)
    _, all_steps = _run(scan, interactions)
    assert reuse_steps < all_steps


def test_a_resumed_lesion_with_correction_reuse_equals_its_uninterrupted_sequence(lesion_scan) -> None:
    scan, interactions = lesion_scan
    options = {"early_stop_k": 2, "correction_reuse_k": 1}
    straight, _ = _run(scan, interactions, **options)
    segmenter = _segmenter(**options)
    segmenter.start_scan(scan)
    segmenter.add_clicks(1, interactions[0])
    segmenter.add_clicks(2, [Click(10, 10, 1, True)])
    segmenter.add_clicks(1, interactions[1])
    segmenter.add_clicks(2, [Click(12, 12, 1, True)])
    resumed = segmenter.add_clicks(1, interactions[2])
    segmenter.end_scan()
    np.testing.assert_array_equal(resumed, straight[-1])


def test_bf16_cache_keeps_features_in_half_the_bytes(lesion_scan) -> None:
    scan, interactions = lesion_scan
    sessions = {}
    for dtype in ("fp32", "bf16"):
        segmenter = _segmenter(cache_dtype=dtype)
        segmenter.start_scan(scan)
        mask = segmenter.add_clicks(1, interactions[0])
        sessions[dtype] = (segmenter.session, mask)
    cache32, cache16 = (sessions[d][0].state["volume"].cache for d in ("fp32", "bf16"))
    features = {d: sum(x.numel() * x.element_size() for levels in c.features.values() for x in levels)
                for d, c in (("fp32", cache32), ("bf16", cache16))}
    assert features["bf16"] * 2 == features["fp32"] > 0
    assert all(x.dtype == torch.bfloat16 for levels in cache16.features.values() for x in levels)
    assert sessions["bf16"][1].any()
    # a frame's features are the rounded ones from its first use on: a second session repeats the mask exactly
    again = ScanSession(sessions["bf16"][0].predictor, scan, cache_dtype="bf16")
    repeated = again.to_original(again.segment_lesion(1, interactions[0]))
    np.testing.assert_array_equal(repeated, sessions["bf16"][1])
    with pytest.raises(InputError, match="cache dtype"):
        ScanSession(again.predictor, scan, cache_dtype="fp16")
    with pytest.raises(InputError, match="correction_reuse_k"):
        ScanSession(again.predictor, scan, correction_reuse_k=0)


def test_speed_profiles_of_segment_and_the_app() -> None:
    interactive = interactive_settings("mois_sam2")
    assert interactive.options == {"early_stop_k": 3, "correction_reuse_k": 2, "cache_dtype": "fp32",
                                   "precision": "fp32", "track_continuity": False}
    assert interactive.threads is not None and interactive.threads >= 1
    assert interactive_settings("sam2").options == interactive.options
    assert interactive_settings("region_growing").options == {}
    exact = interactive_settings("mois_sam2", "exact")
    assert exact.options == {} and exact.threads is None
    changed = interactive_settings("sam2", overrides=["options.early_stop_k=null", "threads=1"])
    assert changed.options["early_stop_k"] is None and changed.threads == 1
    with pytest.raises(InputError, match="speed"):
        interactive_settings("sam2", "fastest")
    assert conf_overrides({"early_stop_k": "none", "threads": "1", "max_lesions": "3"}) == (
        "options.early_stop_k=null", "threads=1")


@pytest.mark.parametrize(("conf", "expected"), [
    ({}, (3, 2)),
    ({"speed": "exact"}, (None, None)),
    ({"early_stop_k": "none", "correction_reuse_k": "3"}, (None, 3)),
])
def test_app_builds_its_segmenters_with_the_speed_profile(conf: dict[str, str], expected: tuple) -> None:
    from mois_sam2_nf.serving.infer_tasks import AppConfig

    config = AppConfig.from_conf({"models": "mois_sam2", "device": "cpu"} | conf, REPO)
    previous = torch.get_num_threads()
    segmenter = config.workspace("mois_sam2").segmenter
    torch.set_num_threads(previous)
    assert (segmenter.early_stop_k, segmenter.correction_reuse_k) == expected
