"""VISTA3D baseline: typed configs, network, bundle weights, point and automatic inference, adapter, training, runs."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from baseline_helpers import evaluate_one_case, first_ts1_scan
from mois_sam2_nf.analysis.report import build_report
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, create_segmenter
from mois_sam2_nf.models.vista3d.config import VISTA3DConfig, load_config
from mois_sam2_nf.models.vista3d.inference import WindowEmbeddingCache, automatic_logits, point_logits
from mois_sam2_nf.models.vista3d.network import build_network, load_bundle_weights
from mois_sam2_nf.models.vista3d.train import sample_points, train_vista3d

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]


def smoke_network(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_network(load_config("vista3d_smoke").network).eval()


def test_configs_load_typed_with_the_launcher_overrides() -> None:
    config = load_config("vista3d", ["training.init_weights=model_weights/vista3d", "grid.spacing=null",
                                     "inference.center_only=false", "training.epochs=2"])
    assert isinstance(config, VISTA3DConfig) and config.training.init_weights == "model_weights/vista3d"
    assert config.grid.spacing is None and config.inference.center_only is False and config.training.epochs == 2
    assert config.network.blocks_down == [1, 2, 2, 4, 4] and config.inference.nf_class == 133
    assert load_config("vista3d_smoke").training.init_weights is None


@pytest.mark.parametrize(("overrides", "message"), [
    (["+network.depth=3"], r"network\.depth: Key 'depth' not in 'VISTA3DNetworkConfig'"),
    (["+inference.prompt=1"], r"inference\.prompt: Key 'prompt' not in 'VISTA3DInferenceConfig'"),
    (["inference.center_only=sometimes"], r"inference\.center_only: Value 'sometimes' is not a valid bool"),
    (["training.max_points=three"], r"training\.max_points: Value 'three' of type 'str' could not be converted"),
    (["inference.roi=[64,64]"], r"inference\.roi: expected 3 values"),
])
def test_vista3d_sections_refuse_bad_keys_and_values(overrides: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message) as refused:
        load_config("vista3d_smoke", overrides)
    assert len(str(refused.value).splitlines()) == 1 and "vista3d_smoke.yaml" in str(refused.value)


def test_smoke_network_is_a_narrow_vista3d() -> None:
    from monai.networks.nets.vista3d import VISTA3D

    network = smoke_network()
    assert isinstance(network, VISTA3D)
    assert sum(p.numel() for p in network.parameters()) == 6_080_442
    assert network.point_head.last_supported == 132 and network.point_head.class_embeddings.num_embeddings == 512


@pytest.mark.slow
def test_bundle_weights_of_vista3d132_load_strictly(tmp_path: Path) -> None:
    from monai.networks.nets import vista3d132

    torch.manual_seed(1)
    reference = vista3d132(encoder_embed_dim=48, in_channels=1)
    bundle = tmp_path / "vista3d_bundle"
    (bundle / "models").mkdir(parents=True)
    torch.save(reference.state_dict(), bundle / "models" / "model.pt")  # the bundle's weights file: a bare state dict
    network = build_network(load_config("vista3d").network)
    assert sum(p.numel() for p in network.parameters()) == 217_964_982
    assert load_bundle_weights(network, bundle) == bundle / "models" / "model.pt"
    loaded, saved = network.state_dict(), reference.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    del reference, loaded, saved
    with pytest.raises(InputError, match="not VISTA3D weights for this network config"):
        load_bundle_weights(smoke_network(), bundle)
    with pytest.raises(InputError, match="bundle weights not found"):
        load_bundle_weights(network, tmp_path / "nowhere")


def test_point_inference_reuses_window_embeddings_exactly() -> None:
    network = smoke_network()
    inference = load_config("vista3d_smoke").inference
    image = torch.randn(1, 1, 160, 48, 16)
    first_click, second_click = [(40, 20, 8)], [(120, 20, 8)]
    with torch.no_grad():
        cached = WindowEmbeddingCache(network, capacity=16)
        first = point_logits(cached, image, first_click, [], None, inference)
        assert first.shape == image.shape and first.dtype == torch.float32
        assert torch.isnan(first[0, 0, 100:]).all() and not torch.isnan(first[0, 0, 8:72]).any()  # rows 40 -/+ 32
        second = point_logits(cached, image, first_click, second_click, first, inference)
        assert (cached.hits, cached.misses) == (1, 2)  # the first click's window is encoded once
        fresh = point_logits(WindowEmbeddingCache(network, capacity=0), image, first_click, second_click, first,
                             inference)
        torch.testing.assert_close(second, fresh, equal_nan=True, rtol=0, atol=0)
        assert not torch.isnan(second).any()  # never-predicted voxels went back as "no object", not NaN
        supported = point_logits(cached, image, first_click, [], None, replace(inference, nf_class=132))
        assert not torch.equal(torch.nan_to_num(supported), torch.nan_to_num(first))  # 133 is zero-shot, 132 is not
        automatic = automatic_logits(network, image, inference)
    assert automatic.shape == image.shape and not torch.isnan(automatic).any()


def test_sample_points_draws_positives_on_lesions() -> None:
    rng = np.random.default_rng(0)
    label = np.zeros((8, 8, 4), dtype=bool)
    label[2:4, 2:4, 1:3] = True
    for _ in range(20):
        coords, labels = sample_points(label, 3, rng)
        assert 1 <= len(coords) <= 3 and labels[0] == 1
        assert all(label[tuple(c)] == bool(v) for c, v in zip(coords, labels))
    coords, labels = sample_points(np.zeros_like(label), 3, rng)
    assert (labels == 0).all() and len(coords) >= 1


def test_adapter_corrects_replays_and_segments_automatically(tiny_cohort: Path) -> None:
    torch.manual_seed(0)
    segmenter = create_segmenter("vista3d", config="vista3d_smoke")
    assert segmenter.interactive and segmenter.automatic_capable and not segmenter.propagates
    scan, click = first_ts1_scan(tiny_cohort)  # a click on the scan's first i index: must not be dropped
    segmenter.start_scan(scan)
    first = segmenter.add_clicks(1, [click])
    assert first.shape == scan.shape and first.dtype == bool and first.any()
    inside = np.argwhere(first)
    correction = Click(*(int(v) for v in inside[len(inside) // 2]), False)
    corrected = segmenter.add_clicks(1, [correction])
    assert not np.array_equal(first, corrected)  # the corrective click changes the lesion
    np.testing.assert_array_equal(segmenter.add_clicks(2, [click]), first)  # a new lesion starts fresh
    resumed = segmenter.add_clicks(1, [Click(click.i, click.j + 1, click.k, True)])
    segmenter.forget_lesion(1)
    for clicks in ([click], [correction]):
        replayed = segmenter.add_clicks(1, clicks)
    np.testing.assert_array_equal(replayed, corrected)  # forgotten: starts again from its new clicks
    uninterrupted = segmenter.add_clicks(1, [Click(click.i, click.j + 1, click.k, True)])
    np.testing.assert_array_equal(uninterrupted, resumed)  # lesion 1 replayed after lesion 2 = uninterrupted
    np.testing.assert_array_equal(segmenter.add_clicks(1, []), uninterrupted)  # no new click: mask unchanged
    assert not segmenter.add_clicks(3, []).any()
    automatic = segmenter.automatic()
    assert automatic.shape == scan.shape and automatic.dtype == bool and segmenter.automatic() is automatic
    segmenter.end_scan()
    with pytest.raises(RuntimeError, match="start_scan"):
        segmenter.automatic()


def test_adapter_refuses_bad_weights(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="checkpoint file not found"):
        create_segmenter("vista3d", config="vista3d_smoke", checkpoint=tmp_path / "model.pt")
    with pytest.raises(InputError, match="either checkpoint or bundle_weights"):
        create_segmenter("vista3d", config="vista3d_smoke", checkpoint="a.pt", bundle_weights="b")
    with pytest.raises(InputError, match="config not found"):
        create_segmenter("vista3d", config="vista3d_huge")


@pytest.mark.slow
def test_smoke_training_resumes_and_evaluates_in_three_modes(tiny_cohort: Path, tmp_path: Path) -> None:
    config = load_config("vista3d_smoke")
    weights = train_vista3d(tiny_cohort, config, out_dir=tmp_path / "weights", fold=1, config_name="vista3d_smoke")
    assert weights.name == "model.pt" and weights.parent.name == "fold_1"
    meta = json.loads((weights.parent / "meta.json").read_text())
    assert meta["model"] == "vista3d" and meta["fold"] == 1 and meta["nf_class"] == 133
    assert meta["config"] == json.loads(json.dumps(asdict(config))) and meta["init_weights"] is None
    log = weights.parent / "logs" / "train_log.csv"
    first_epoch = log.read_text().splitlines()
    assert len(first_epoch) == 2
    longer = load_config("vista3d_smoke", ["training.epochs=2"])
    assert train_vista3d(tiny_cohort, longer, out_dir=tmp_path / "weights", fold=1) == weights  # resumes at epoch 2
    lines = log.read_text().splitlines()
    assert lines[:2] == first_epoch and len(lines) == 3 and lines[2].startswith("2,")
    with pytest.raises(InputError, match="trained for fold 1"):
        create_segmenter("vista3d", config="vista3d_smoke", checkpoint=str(weights), fold=2)
    with pytest.raises(InputError, match="network"):
        create_segmenter("vista3d", config="vista3d", checkpoint=str(weights), fold=1)

    scan, _ = first_ts1_scan(tiny_cohort)
    model = ["model=vista3d", "model.config=vista3d_smoke", f"model.checkpoint={weights}"]
    for protocol, rows in ((["protocol=lesion_wise_corrective", "protocol.num_lesions=1",
                             "protocol.interactions_per_lesion=2"], 2),
                           (["protocol=global_corrective", "protocol.max_interactions=2"], None),
                           (["protocol=global_non_corrective", "protocol.automatic=true"], 1)):
        interactions = evaluate_one_case(tiny_cohort, tmp_path / "results", scan.case_id, *model, *protocol)
        assert rows is None or len(interactions) == 1 + rows
        assert 1 <= len(interactions) - 1 <= 2
    runs = sorted(p.name.split("__")[1] for p in (tmp_path / "results").iterdir() if p.is_dir())
    assert runs == ["global_corrective", "global_non_corrective", "lesion_wise_corrective"]
    for run in (tmp_path / "results").iterdir():
        if run.is_dir():
            assert {"case_metrics.csv", "lesion_metrics.csv", "interactions.csv"} <= {p.name for p in run.iterdir()}
    automatic = next((tmp_path / "results").glob("vista3d__global_non_corrective*")) / "interactions.csv"
    assert ",automatic," in automatic.read_text()
    report = build_report(tmp_path / "results", out_dir=tmp_path / "report").read_text()
    assert all(f"| {mode} | ts1 | vista3d |" in report for mode in runs)  # a row per mode in the benchmark table


@pytest.mark.slow
def test_smoke_launcher_trains_and_resumes(tiny_cohort: Path, tmp_path: Path) -> None:
    """``launchers/train_vista3d.sh smoke`` as a user runs it, in a copy of the launcher folder (its repository root
    is ``tmp_path``, whose ``data/tiny/raw`` is the session's tiny cohort)."""
    launchers = tmp_path / "launchers"
    launchers.mkdir()
    for name in ("train_vista3d.sh", "_baseline_common.sh"):
        (launchers / name).write_bytes((REPO / "launchers" / name).read_bytes())
    (tmp_path / "data" / "tiny").mkdir(parents=True)
    (tmp_path / "data" / "tiny" / "raw").symlink_to(tiny_cohort)
    command = ["bash", str(launchers / "train_vista3d.sh"), "smoke"]
    env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    first = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert first.returncode == 0, first.stderr[-2000:]
    fold = tmp_path / "model_weights_finetuned" / "VISTA3D_smoke" / "fold_1"
    assert (fold / "model.pt").is_file() and (fold / "meta.json").is_file()
    again = subprocess.run([*command, "training.epochs=2"], capture_output=True, text=True, env=env, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len((fold / "logs" / "train_log.csv").read_text().splitlines()) == 3
