"""Simulated clicks (docs/evaluation_protocol.md, Click simulation: fix (a), seeding, ``center``)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import scipy.ndimage as ndi

from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.data.corrective_click import center_click
from mois_sam2_nf.evaluation.clicks import (ClickConfig, click_rng, patch_dice_losses, sample_error_voxel,
                                            simulate_clicks)
from mois_sam2_nf.models.guided_cnn.corrections import corrective_click
from mois_sam2_nf.segmenters import Click

#: on-disk axis codes ("L", "P", "S") as in the synthetic cohort: canonical rows = k flipped, cols = i, frames = j
#: flipped, so every click goes through a non-trivial permutation + flips
AFFINE = np.diag([-0.8, -3.0, 0.7, 1.0])
SHAPE = (24, 8, 40)                 # (I, J, K) -> canonical (40, 24, 8)
PATCH = (16, 16, 4)                 # canonical grid 3 x 2 x 2 with truncated edges
STRUCT26 = ndi.generate_binary_structure(3, 3)


@pytest.fixture(scope="module")
def view() -> ScanView:
    v = ScanView.from_affine(AFFINE, SHAPE)
    assert v.axcodes == ("L", "P", "S") and v.canonical_shape == (40, 24, 8)
    return v


def _from_canonical(view: ScanView, canonical: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(view.from_canonical(canonical))


def _blobs(seed: int, view: ScanView, n: int = 5) -> np.ndarray:
    """Random union of small boxes on the original grid."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(view.canonical_shape, dtype=bool)
    for _ in range(n):
        lo = rng.integers(0, np.asarray(view.canonical_shape) - 2)
        hi = lo + rng.integers(2, 7, size=3)
        mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return _from_canonical(view, mask)


def _click_kw(interaction: int = 1, target_rank: int = 1) -> dict:
    return {"seed": 3, "case_id": "case_007", "target_rank": target_rank, "interaction": interaction}


def test_config_validation() -> None:
    with pytest.raises(InputError, match="strategy"):
        ClickConfig(strategy="random")
    with pytest.raises(InputError, match="fallback"):
        ClickConfig(fallback="nearest")
    with pytest.raises(InputError, match="dt_clip"):
        ClickConfig(dt_clip=0.0)
    with pytest.raises(InputError, match="patch_size_mm"):
        ClickConfig(patch_size_mm=(320.0, -1.0, 124.8))
    assert ClickConfig(patch_size_mm=(320.0, 320.0, 124.8)).patch_voxels((0.625, 0.625, 7.8)) == (512, 512, 16)
    assert ClickConfig().patch_voxels((3.0, 3.0, 3.0)) == (512, 512, 16)


def test_click_rng_follows_the_seed_sequence_recipe() -> None:
    expected = np.random.default_rng(np.random.SeedSequence([3, zlib.crc32(b"case_007"), 2, 5, 1])).random(4)
    np.testing.assert_array_equal(click_rng(3, "case_007", 2, 5, 1).random(4), expected)
    assert click_rng(3, "case_007", 2, 5, 0).random() != click_rng(3, "case_007", 2, 5, 1).random()
    with pytest.raises(InputError, match="seed"):
        click_rng(-1, "case_007", 0, 1, 0)


def test_patch_losses_match_a_dense_loop(view: ScanView) -> None:
    for seed in range(4):
        target, prediction = _blobs(seed, view), _blobs(seed + 100, view)
        lesion, background = patch_dice_losses(target, prediction, view, PATCH)
        t_c, p_c = view.to_canonical(target), view.to_canonical(prediction)
        assert lesion.shape == (3, 2, 2)
        for cell in np.ndindex(lesion.shape):
            window = tuple(slice(c * p, (c + 1) * p) for c, p in zip(cell, PATCH))
            for loss, (t, p) in ((lesion, (t_c[window], p_c[window])), (background, (~t_c[window], ~p_c[window]))):
                expected = 1 - (2 * (t & p).sum() + 1e-5) / (t.sum() + p.sum() + 1e-5)
                assert loss[cell] == pytest.approx(expected, abs=1e-12)


def test_clicks_land_on_errors_in_the_worst_patches(view: ScanView) -> None:
    config = ClickConfig(patch_size=PATCH)
    n_neg = 0
    for seed in range(12):
        target, prediction = _blobs(seed, view), _blobs(seed + 50, view)
        clicks = simulate_clicks(target, prediction, view, config, **_click_kw())
        lesion, background = patch_dice_losses(target, prediction, view, PATCH)
        worst = (np.unravel_index(np.argmax(lesion), lesion.shape), np.unravel_index(np.argmax(background),
                                                                                      background.shape))
        assert 1 <= len(clicks) <= 2 and all(isinstance(c, Click) for c in clicks)
        assert [c.positive for c in clicks] == sorted((c.positive for c in clicks), reverse=True)
        for click in clicks:
            ijk = (click.i, click.j, click.k)
            assert (target[ijk] and not prediction[ijk]) if click.positive else (prediction[ijk] and not target[ijk])
            cell = tuple(int(x) for x in view.ijk_to_canonical(ijk) // np.asarray(PATCH))
            assert cell == tuple(int(x) for x in worst[0 if click.positive else 1])
            n_neg += not click.positive
    assert n_neg > 0


def test_first_interaction_on_empty_prediction_gives_one_positive_click(view: ScanView) -> None:
    target = _blobs(1, view)
    clicks = simulate_clicks(target, np.zeros_like(target), view, ClickConfig(patch_size=PATCH), **_click_kw())
    assert len(clicks) == 1 and clicks[0].positive and target[clicks[0][:3]]
    assert simulate_clicks(target, target.copy(), view, ClickConfig(patch_size=PATCH), **_click_kw()) == []


def test_fix_a_ranking_uses_the_real_prediction(view: ScanView) -> None:
    """Fix (a): with the lesion-richest patch predicted perfectly, the positive click goes to another patch."""
    target_c = np.zeros(view.canonical_shape, dtype=bool)
    target_c[2:12, 2:12, 0:4] = True          # 400 voxels in patch (0, 0, 0): the lesion-richest patch
    target_c[20:23, 18:21, 5:7] = True        # 18 voxels in patch (1, 1, 1)
    target = _from_canonical(view, target_c)
    prediction_c = np.zeros_like(target_c)
    prediction_c[0:16, 0:16, 0:4] = target_c[0:16, 0:16, 0:4]
    prediction = _from_canonical(view, prediction_c)

    # the reference ranking ignored the prediction, i.e. ranked as if nothing was predicted
    reference_lesion, _ = patch_dice_losses(target, np.zeros_like(target), view, PATCH)
    assert np.unravel_index(np.argmax(reference_lesion), reference_lesion.shape) == (0, 0, 0)
    for interaction in range(1, 6):
        clicks = simulate_clicks(target, prediction, view, ClickConfig(patch_size=PATCH),
                                 **_click_kw(interaction=interaction))
        assert [c.positive for c in clicks] == [True]
        rcf = view.ijk_to_canonical(clicks[0][:3])
        assert tuple(int(x) for x in rcf // np.asarray(PATCH)) == (1, 1, 1)
        assert target_c[tuple(rcf)] and not prediction_c[tuple(rcf)]


def test_clicks_are_reproducible_in_any_task_order_and_sharding(view: ScanView) -> None:
    config = ClickConfig(patch_size=PATCH)
    tasks = [(seed, rank, interaction) for seed in range(3) for rank in (1, 2) for interaction in (1, 2, 3)]
    inputs = {seed: (_blobs(seed, view), _blobs(seed + 7, view)) for seed in range(3)}

    def run(order: list[tuple[int, int, int]]) -> dict:
        out = {}
        for seed, rank, interaction in order:
            np.random.seed(seed * 31 + rank)          # global numpy state must not matter
            np.random.random(rank)
            target, prediction = inputs[seed]
            out[(seed, rank, interaction)] = simulate_clicks(target, prediction, view, config, seed=0,
                                                             case_id=f"case_{seed}", target_rank=rank,
                                                             interaction=interaction)
        return out

    forward = run(tasks)
    shards = [run(tasks[shard::3]) for shard in (2, 0, 1)]
    merged = {key: value for shard in shards for key, value in shard.items()}
    assert run(tasks[::-1]) == forward == merged
    assert len({tuple(v) for v in forward.values()}) > 1    # different draws for different seeding words


def test_dt_weighting_distribution() -> None:
    """dt_clip default gives uniform sampling over the error; dt_clip null gives weights exp(d) - 1."""
    error = np.zeros((11, 11, 9), dtype=bool)
    error[1:10, 1:10, 1:8] = True
    distance = ndi.distance_transform_edt(error)[error]
    n_draws = 6000
    rng = np.random.default_rng(0)
    for dt_clip, weights in ((88 / 800**3, np.ones_like(distance)), (None, np.expm1(distance))):
        counts = np.zeros(error.shape)
        for _ in range(n_draws):
            counts[sample_error_voxel(error, dt_clip, rng)] += 1
        assert counts[~error].sum() == 0
        levels, level_of = np.unique(distance, return_inverse=True)
        observed = np.bincount(level_of, weights=counts[error]) / n_draws
        expected = np.bincount(level_of, weights=weights) / weights.sum()
        assert len(levels) >= 3
        np.testing.assert_allclose(observed, expected, atol=0.025)


def test_uniform_sampling_when_the_whole_patch_is_error() -> None:
    rng = np.random.default_rng(1)
    error = np.ones((3, 3, 2), dtype=bool)
    picks = {sample_error_voxel(error, None, rng) for _ in range(300)}
    assert len(picks) == error.size


def _center_reference(target_c: np.ndarray, prediction_c: np.ndarray,
                      sampling: tuple[float, float, float]) -> tuple[np.ndarray, set[tuple[int, int, int]]]:
    """Largest 26-component of the error and the set of its EDT maxima (outside the volume = background)."""
    labels, n = ndi.label(target_c ^ prediction_c, STRUCT26)
    sizes = np.bincount(labels.ravel())[1:]
    component = labels == (int(np.argmax(sizes)) + 1)
    distance = ndi.distance_transform_edt(np.pad(component, 1), sampling=sampling)[1:-1, 1:-1, 1:-1]
    maxima = {tuple(int(x) for x in v) for v in np.argwhere(np.isclose(distance, distance.max()))}
    return component, maxima


@pytest.mark.parametrize("use_spacing", [False, True])
def test_center_clicks_at_the_dt_maximum_of_the_largest_error_component(view: ScanView, use_spacing: bool) -> None:
    config = ClickConfig(strategy="center", center_use_spacing=use_spacing)
    polarity = set()
    for seed in range(10):
        target, prediction = _blobs(seed, view, n=6), _blobs(seed + 30, view, n=4)
        clicks = simulate_clicks(target, prediction, view, config, **_click_kw())
        assert len(clicks) == 1
        rcf = tuple(int(x) for x in view.ijk_to_canonical(clicks[0][:3]))
        t_c, p_c = view.to_canonical(target), view.to_canonical(prediction)
        component, maxima = _center_reference(t_c, p_c, view.spacing if use_spacing else (1.0, 1.0, 1.0))
        assert component[rcf] and rcf in maxima
        assert rcf == min(maxima)                        # first maximum in canonical raster order
        assert clicks[0].positive == bool(t_c[rcf])
        polarity.add(clicks[0].positive)
        again = simulate_clicks(target, prediction, view, config, **_click_kw(interaction=9))
        assert again == clicks                           # deterministic, seed-independent
    assert polarity == {True, False}
    assert center_click(target, target.copy(), view) is None
    ijk, positive = center_click(target, prediction, view, use_spacing)
    assert Click(*ijk, positive) == clicks[0]


def test_center_size_ties_go_to_the_first_component_in_canonical_raster_order(view: ScanView) -> None:
    prediction_c = np.zeros(view.canonical_shape, dtype=bool)
    prediction_c[30:33, 2:5, 1:4] = True       # first in original raster order (original i = canonical column)
    prediction_c[2:5, 18:21, 4:7] = True       # same size, first in canonical raster order
    prediction = _from_canonical(view, prediction_c)
    ijk, positive = center_click(np.zeros_like(prediction), prediction, view)
    assert tuple(int(x) for x in view.ijk_to_canonical(ijk)) == (3, 19, 5) and not positive


def test_guided_cnn_training_clicks_follow_the_center_rule() -> None:
    """The CNN baselines' corrective click is the protocol's ``center`` click on canonical working-grid arrays."""
    label = np.zeros((12, 12, 12), dtype=bool)
    label[6:9, 6:9, 6:9] = True                # missed: 27 voxels
    prediction = np.zeros_like(label)
    prediction[0:3, 0:3, 0:3] = True           # false positive of the same size, first in raster order
    assert corrective_click(prediction, label) == ((1, 1, 1), False)
    assert corrective_click(label, label) is None
    for seed in range(10):
        canonical = ScanView.of_canonical((14, 11, 9))
        target, prediction = _blobs(seed, canonical, n=6), _blobs(seed + 30, canonical, n=4)
        assert corrective_click(prediction, target) == center_click(target, prediction, canonical)


def test_center_fallback_when_the_worst_patches_hold_no_usable_error(view: ScanView) -> None:
    """Lesion-channel worst patch holds only FP, background-channel worst patch (a small edge patch) only FN."""
    target_c = np.zeros(view.canonical_shape, dtype=bool)
    prediction_c = np.zeros_like(target_c)
    prediction_c[2:7, 2:4, 0] = True           # 10 FP voxels in patch (0, 0, 0) of 1024 voxels
    target_c[35, 17, 5:8] = True               # 3 FN voxels in the truncated patch (2, 1, 1) of 8*8*4 voxels
    target, prediction = _from_canonical(view, target_c), _from_canonical(view, prediction_c)
    assert simulate_clicks(target, prediction, view, ClickConfig(patch_size=PATCH), **_click_kw()) == []
    clicks = simulate_clicks(target, prediction, view, ClickConfig(patch_size=PATCH, fallback="center"),
                             **_click_kw())
    assert len(clicks) == 1 and not clicks[0].positive
    assert prediction_c[tuple(view.ijk_to_canonical(clicks[0][:3]))]


def test_shape_mismatch_is_rejected(view: ScanView) -> None:
    with pytest.raises(InputError, match="shape"):
        simulate_clicks(np.zeros((3, 3, 3), bool), np.zeros((3, 3, 3), bool), view, ClickConfig(), **_click_kw())
