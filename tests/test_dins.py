"""DINs baseline: network shapes, ExpDT guidance, simulated clicks, ONNX export, smoke training and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from baseline_helpers import evaluate_one_case, first_ts1_scan
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import create_segmenter
from mois_sam2_nf.models.dins.config import load_config
from mois_sam2_nf.models.dins.network import DINsNet
from mois_sam2_nf.models.dins.onnx_io import check_export, export_onnx, onnx_session
from mois_sam2_nf.models.dins.train import simulated_clicks, train_dins
from mois_sam2_nf.models.guided_cnn.guidance import expdt_guidance

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_network_shapes_and_guide_branch() -> None:
    model = DINsNet(8, 32).eval()
    image, guide = torch.rand(1, 1, 4, 64, 32), torch.zeros(1, 2, 4, 64, 32)
    with torch.no_grad():
        empty = model(image, guide)
        guide[0, 0, 2, 30, 15] = 1.0
        clicked = model(image, guide)
    assert empty.shape == (1, 2, 4, 64, 32)
    assert not torch.equal(empty, clicked)  # the guide reaches the output (input concat + bridge branch)
    reference = DINsNet()
    channels = [m.out_channels for m in (reference.down1.conv1, reference.down2.conv1, reference.down3.conv1,
                                         reference.down4.conv1, reference.bridge.conv1)]
    assert channels == [30, 60, 120, 240, 320] and reference.guide_conv.out_channels == 320


def test_expdt_guidance_values() -> None:
    guide = expdt_guidance((20, 20, 6), [(10, 10, 3)], [(2, 2, 0), (18, 18, 5)], sigma=(5.0, 5.0, 1.0))
    assert guide[0, 10, 10, 3] == 1.0 and guide[1, 2, 2, 0] == 1.0
    assert guide[0, 15, 10, 3] == pytest.approx(np.exp(-25 / 50)) and guide[0, 10, 10, 4] == pytest.approx(np.exp(-0.5))
    assert guide[0, 0, 0, 0] == pytest.approx(np.exp(-(100 + 100) / 50 - 9 / 2), rel=1e-5)
    assert guide[1, 10, 10, 3] == pytest.approx(max(np.exp(-(64 + 64) / 50 - 4.5), np.exp(-(64 + 64) / 50 - 2)))


def test_simulated_clicks_follow_the_rules() -> None:
    rng = np.random.default_rng(0)
    label = np.zeros((64, 64, 4), dtype=bool)
    label[20:40, 20:40, 1:3] = True
    for _ in range(20):
        positives, negatives = simulated_clicks(label, rng)
        assert 1 <= len(positives) <= 10 and 0 <= len(negatives) <= 10
        assert all(23 <= r < 37 and 23 <= c < 37 for r, c, _ in positives)  # inside the 3-times eroded lesion
        same_slice = [(a, b) for a in positives for b in positives if a < b and a[2] == b[2]]
        assert all((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 > 100 for a, b in same_slice)  # 10-px discs removed
        for r, c, f in negatives:
            assert not label[r, c, f]
    tiny = np.zeros((64, 64, 4), dtype=bool)
    tiny[30:33, 30:33, 2] = True  # erosion empties it: the centroid is clicked
    assert simulated_clicks(tiny, rng)[0] == [(31, 31, 2)]


def test_onnx_export_matches_pytorch(tmp_path: Path) -> None:
    model = DINsNet(8, 32)
    path = export_onnx(model, tmp_path / "dins.onnx")
    assert check_export(model, onnx_session(path), [(4, 64, 32), (6, 32, 48)]) <= 1e-4
    with pytest.raises(InputError, match="not a readable ONNX model"):
        (tmp_path / "broken.onnx").write_bytes(b"nope")
        onnx_session(tmp_path / "broken.onnx")


@pytest.mark.slow
def test_smoke_training_adapter_and_evaluation(tiny_cohort: Path, tmp_path: Path) -> None:
    config = load_config("dins_smoke")
    onnx_path = train_dins(tiny_cohort, config, out_dir=tmp_path / "weights", fold=1, config_name="dins_smoke")
    meta = json.loads((onnx_path.parent / "meta.json").read_text())
    assert meta["fold"] == 1 and meta["onnx_max_abs_diff"] <= 1e-4 and (onnx_path.parent / "checkpoint.pt").is_file()
    assert len((onnx_path.parent / "logs" / "train_log.csv").read_text().splitlines()) == 1 + 2

    segmenter = create_segmenter("dins", config="dins_smoke", checkpoint=str(onnx_path), fold=1)
    scan, click = first_ts1_scan(tiny_cohort)
    segmenter.start_scan(scan)
    mask = segmenter.add_clicks(1, [click])
    assert mask.shape == scan.shape and mask.dtype == bool
    with pytest.raises(InputError, match="trained for fold 1"):
        create_segmenter("dins", config="dins_smoke", checkpoint=str(onnx_path), fold=2)
    with pytest.raises(InputError, match="ONNX files"):
        create_segmenter("dins", config="dins_smoke", checkpoint=str(onnx_path.parent / "checkpoint.pt"), fold=1)

    interactions = evaluate_one_case(tiny_cohort, tmp_path / "results", scan.case_id, "model=dins",
                                     "model.config=dins_smoke", f"model.checkpoint={onnx_path}",
                                     "protocol=global_corrective", "protocol.max_interactions=2")
    assert len(interactions) >= 2
