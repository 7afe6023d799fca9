"""nnInteractive adapter: availability, coordinates and the mask's way back, click replay, evaluation runs.

The plumbing runs on small random model folders written in nnInteractive's own format
(:mod:`mois_sam2_nf.models.nninteractive.random_model`), loaded by the package's own inference session. With
``NNINTERACTIVE_MODEL_DIR`` pointing at the real weights, one more test checks that one click gives a mask.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from baseline_helpers import evaluate_one_case, first_ts1_scan
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, create_segmenter
from mois_sam2_nf.models.nninteractive.random_model import write_random_model

pytest.importorskip("nnInteractive.inference.inference_session")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

PATCH = (64, 64, 64)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights: every voxel's prediction depends on the image and the interactions."""
    return write_random_model(tmp_path_factory.mktemp("nninteractive") / "random", patch_size=PATCH, seed=0)


@pytest.fixture(scope="module")
def flooding_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights whose foreground bias makes every predicted voxel foreground: the mask is the predicted patch."""
    return write_random_model(tmp_path_factory.mktemp("nninteractive") / "flooding", patch_size=PATCH,
                              foreground_bias=1e4, seed=0)


def test_not_available_without_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not available: no model folder configured"):
        create_segmenter("nninteractive")
    with pytest.raises(InputError, match="not an nnInteractive model folder"):
        create_segmenter("nninteractive", checkpoint=tmp_path)


def test_click_coordinates_and_mask_on_the_original_grid(tiny_cohort: Path, flooding_model: Path) -> None:
    scan, _ = first_ts1_scan(tiny_cohort)  # (I, J, K) = (80, 10, 290): an array that is not a cube
    segmenter = create_segmenter("nninteractive", checkpoint=flooding_model, do_autozoom=False)
    assert segmenter.interactive and not segmenter.automatic_capable and segmenter.propagates is False
    segmenter.start_scan(scan)
    click = Click(50, 3, 100, True)
    mask = segmenter.add_clicks(1, [click])
    assert mask.shape == scan.shape and mask.dtype == bool
    expected = np.zeros(scan.shape, dtype=bool)
    box = tuple(slice(max(c - p // 2, 0), min(c + p // 2, n)) for c, p, n in zip(click[:3], PATCH, scan.shape))
    expected[box] = True  # the patch centred on (i, j, k), clipped to the array
    np.testing.assert_array_equal(mask, expected)
    assert segmenter.propagate() is None and segmenter.automatic() is None


def test_corrective_clicks_and_replay(tiny_cohort: Path, random_model: Path) -> None:
    scan, click = first_ts1_scan(tiny_cohort)
    segmenter = create_segmenter("nninteractive", checkpoint=random_model, do_autozoom=False)
    segmenter.start_scan(scan)
    first = segmenter.add_clicks(1, [click])
    assert first.shape == scan.shape and first.any()
    correction = Click(*(int(v) for v in np.argwhere(first)[0]), False)
    corrected = segmenter.add_clicks(1, [correction])
    assert not np.array_equal(first, corrected)  # the corrective click changes the lesion
    np.testing.assert_array_equal(segmenter.add_clicks(2, [click]), first)  # each lesion is its own target
    extra = Click(click.i + 2, click.j, click.k, True)
    resumed = segmenter.add_clicks(1, [extra])  # lesion 1 replayed after lesion 2, then the new click
    fresh = create_segmenter("nninteractive", checkpoint=random_model, do_autozoom=False)
    fresh.start_scan(scan)
    for clicks in ([click], [correction], [extra]):
        uninterrupted = fresh.add_clicks(1, clicks)
    np.testing.assert_array_equal(resumed, uninterrupted)
    with pytest.raises(InputError, match="outside the volume"):
        segmenter.add_clicks(1, [Click(80, 0, 0, True)])


def test_evaluation_runs_write_the_usual_csvs(tiny_cohort: Path, random_model: Path, tmp_path: Path) -> None:
    scan, _ = first_ts1_scan(tiny_cohort)
    model = ["model=nninteractive", f"model.checkpoint={random_model}", "model.do_autozoom=false"]
    lesion_wise = evaluate_one_case(tiny_cohort, tmp_path / "results", scan.case_id, *model,
                                    "protocol=lesion_wise_corrective", "protocol.num_lesions=2",
                                    "protocol.interactions_per_lesion=2")
    assert len(lesion_wise) == 1 + 4
    global_run = evaluate_one_case(tiny_cohort, tmp_path / "results", scan.case_id, *model,
                                   "protocol=global_corrective", "protocol.max_interactions=2")
    assert 2 <= len(global_run) <= 3
    for run in (tmp_path / "results").glob("nninteractive__*"):
        assert {"case_metrics.csv", "lesion_metrics.csv", "interactions.csv", "manifest.json"} <= {
            p.name for p in run.iterdir()}


@pytest.mark.skipif(not os.environ.get("NNINTERACTIVE_MODEL_DIR"), reason="NNINTERACTIVE_MODEL_DIR is not set "
                    "(the nnInteractive weights are not shipped)")
def test_real_weights_give_a_mask_for_one_click(tiny_cohort: Path) -> None:
    scan, click = first_ts1_scan(tiny_cohort)
    segmenter = create_segmenter("nninteractive", checkpoint=os.environ["NNINTERACTIVE_MODEL_DIR"])
    segmenter.start_scan(scan)
    assert segmenter.add_clicks(1, [click]).any()
