"""SW-FastEdit baseline: working grid, click balls, corrective clicks, smoke training, adapter and an evaluation run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from baseline_helpers import evaluate_one_case, first_ts1_scan
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import create_segmenter
from mois_sam2_nf.models.guided_cnn.corrections import corrective_click
from mois_sam2_nf.models.guided_cnn.grid import working_label, working_volume
from mois_sam2_nf.models.guided_cnn.guidance import ball_guidance
from mois_sam2_nf.models.sw_fastedit.config import load_config
from mois_sam2_nf.models.sw_fastedit.network import build_network
from mois_sam2_nf.models.sw_fastedit.train import train_sw_fastedit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AFFINE = np.array([[0, 0, -2.0, 0], [-1.5, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 0, 1]])


def test_working_grid_round_trips_masks_and_maps_clicks() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((21, 9, 30)).astype(np.float32) + 1.0
    view = ScanView.from_affine(AFFINE, image.shape)
    volume = working_volume(image, view, None, (32, 32, 16))
    assert tuple(volume.image.shape[1:]) == tuple(int(np.ceil(s / d) * d) for s, d in
                                                   zip(view.canonical_shape, (32, 32, 16)))
    r, c, f = volume.shape
    assert abs(float(volume.image[0, :r, :c, :f].mean())) < 1e-5 and float(volume.image[0, r:].abs().sum()) == 0
    label = np.zeros(image.shape, dtype=bool)
    label[3:7, 2:5, 10:20] = True
    probability = working_label(label, volume)[0]
    np.testing.assert_array_equal(volume.to_original(probability), label)
    voxel = volume.voxel((4, 3, 12))
    assert probability[voxel] == 1.0
    coarse = working_volume(image, view, (view.spacing[0] * 2, view.spacing[1] * 2, view.spacing[2]), (32, 32, 16))
    assert coarse.shape[0] == pytest.approx(view.canonical_shape[0] / 2, abs=1) and coarse.scale[2] == 1.0
    assert coarse.to_original(torch.ones(coarse.image.shape[1:])).all()
    coarse_label = working_label(label, coarse)
    assert coarse_label.shape == coarse.image.shape and 0 < coarse_label.sum() < label.sum()


def test_ball_guidance_and_corrective_clicks() -> None:
    balls = ball_guidance((16, 16, 16), [(8, 8, 8)], [])
    assert balls[1].sum() == 0 and balls[0, 8, 8, 8] == 1 and balls[0, 8, 8, 12] == 0
    radius = int(balls[0, 8, 8].sum().item()) // 2
    assert 2 <= radius <= 4  # binary balls of radius about 3 voxels
    label = np.zeros((12, 12, 12), dtype=bool)
    label[2:9, 2:9, 2:9] = True
    prediction = np.zeros_like(label)
    assert corrective_click(prediction, label) == ((5, 5, 5), True)       # centre of the missed lesion
    prediction = label.copy()
    prediction[10:12, 10:12, :] = True
    voxel, positive = corrective_click(prediction, label)
    assert not positive and prediction[voxel] and not label[voxel]       # inside the false positive
    assert corrective_click(label, label) is None


def test_reference_network_size() -> None:
    network = build_network(load_config("sw_fastedit").network.filters)
    assert sum(p.numel() for p in network.parameters()) == pytest.approx(31.0e6, rel=0.01)


@pytest.mark.slow
def test_smoke_training_adapter_and_evaluation(tiny_cohort: Path, tmp_path: Path) -> None:
    config = load_config("sw_fastedit_smoke")
    checkpoint = train_sw_fastedit(tiny_cohort, config, out_dir=tmp_path / "weights", fold=1,
                                   config_name="sw_fastedit_smoke")
    meta = json.loads((checkpoint.parent / "meta.json").read_text())
    assert meta["fold"] == 1 and meta["config"]["network"] == asdict(config.network) and meta["spacing"] is None
    log = (checkpoint.parent / "logs" / "train_log.csv").read_text().splitlines()
    assert len(log) == 1 + config.training.epochs
    again = train_sw_fastedit(tiny_cohort, config, out_dir=tmp_path / "weights", fold=1)  # resumes: nothing to do
    assert again == checkpoint and len((checkpoint.parent / "logs" / "train_log.csv").read_text().splitlines()) == 3

    segmenter = create_segmenter("sw_fastedit", config="sw_fastedit_smoke", checkpoint=str(checkpoint), fold=1)
    scan, click = first_ts1_scan(tiny_cohort)
    segmenter.start_scan(scan)
    first = segmenter.add_clicks(1, [click])
    assert first.shape == scan.shape and first.dtype == bool
    other = segmenter.add_clicks(2, [click])
    np.testing.assert_array_equal(first, other)  # each lesion from its own clicks only: same clicks, same mask
    with pytest.raises(InputError, match="trained for fold 1"):
        create_segmenter("sw_fastedit", config="sw_fastedit_smoke", checkpoint=str(checkpoint), fold=2)
    with pytest.raises(InputError, match="network"):
        create_segmenter("sw_fastedit", config="sw_fastedit", checkpoint=str(checkpoint), fold=1)

    interactions = evaluate_one_case(tiny_cohort, tmp_path / "results", scan.case_id, "model=sw_fastedit",
                                     "model.config=sw_fastedit_smoke", f"model.checkpoint={checkpoint}",
                                     "protocol.num_lesions=1", "protocol.interactions_per_lesion=2")
    assert len(interactions) == 1 + 2


def test_a_run_interrupted_after_an_epoch_logs_each_epoch_once(tiny_cohort: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies while the second epoch's checkpoint is written; the resumed run logs epoch 2 once."""
    from mois_sam2_nf.models.guided_cnn import training

    config = load_config("sw_fastedit_smoke")
    assert config.training.epochs == 2
    save = training._save_atomic

    def dies_on_epoch_2(state: dict, path: Path) -> None:
        if state["epoch"] == 2:
            raise KeyboardInterrupt
        save(state, path)

    monkeypatch.setattr(training, "_save_atomic", dies_on_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_sw_fastedit(tiny_cohort, config, out_dir=tmp_path / "weights", fold=1)
    monkeypatch.setattr(training, "_save_atomic", save)
    checkpoint = train_sw_fastedit(tiny_cohort, config, out_dir=tmp_path / "weights", fold=1)
    rows = (checkpoint.parent / "logs" / "train_log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["epoch", "1", "2"]
