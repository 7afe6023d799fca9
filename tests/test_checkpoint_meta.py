"""Inference metadata in SAM2 / MOIS-SAM2 weight files: writers (training checkpoint, export script, shipped demo
weights) and readers (adapters of evaluate / segment / the app): settings from the weights, contradictions refused,
documented defaults for files without metadata."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from mois_sam2_nf.cli.main import main
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import create_segmenter
from mois_sam2_nf.evaluation.runner import compose_config
from mois_sam2_nf.models.checkpoint_meta import CheckpointMeta, read, weights_payload
from mois_sam2_nf.models.mois_sam2 import build_mois_sam2, save_checkpoint
from mois_sam2_nf.models.sam2 import adapter as sam2_adapter
from mois_sam2_nf.models.sam2 import build_sam2_model
from mois_sam2_nf.training.checkpointing import save_training_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
EXPORT = runpy.run_path(str(REPO / "model_weights" / "export_sam2_model_weights.py"))["main"]
#: an image size the demo configs do not have (256), so a size that comes from the metadata is visible
SIZE = 64


@pytest.fixture(scope="module")
def states() -> dict[str, dict[str, torch.Tensor]]:
    """Randomly initialised demo models at ``SIZE`` px per family (MOIS-SAM2's no-exemplar embeddings depend on it)."""
    torch.manual_seed(0)
    size = [f"++model.image_size={SIZE}"]
    return {"sam2": build_sam2_model("sam2_demo", overrides=size).state_dict(),
            "mois_sam2": build_mois_sam2("mois_sam2_demo", overrides=size).state_dict()}


def _weights(path: Path, state: dict[str, torch.Tensor], meta: CheckpointMeta) -> Path:
    torch.save(weights_payload(state, meta), path)
    return path


def _same_weights(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    loaded = model.state_dict()
    return all(torch.equal(loaded[key], value) for key, value in state.items() if key in loaded)


def test_meta_round_trip_and_one_line_errors_naming_the_file(tmp_path: Path) -> None:
    meta = CheckpointMeta("mois_sam2", "mois_sam2_demo", 256, False)
    assert meta.to_dict() == {"family": "mois_sam2", "config": "mois_sam2_demo", "image_size": 256,
                              "imagenet_norm": False}
    assert CheckpointMeta.from_dict(meta.to_dict(), "w.pt") == meta
    for bad, key in (({**meta.to_dict(), "family": "sam3"}, "family"),
                     ({**meta.to_dict(), "image_size": "256"}, "image_size"),
                     ({**meta.to_dict(), "imagenet_norm": 0}, "imagenet_norm")):
        with pytest.raises(InputError, match=rf"^w\.pt: checkpoint meta: {key}=") as info:
            CheckpointMeta.from_dict(bad, "w.pt")
        assert "\n" not in str(info.value)
    with pytest.raises(InputError, match=r"w\.pt: checkpoint meta must have exactly the keys"):
        CheckpointMeta.from_dict({"family": "sam2"}, "w.pt")
    plain = tmp_path / "plain.pt"
    torch.save({"model": {}}, plain)
    assert read(plain) is None


@pytest.mark.parametrize(("family", "imagenet_norm"), [("sam2", False), ("mois_sam2", True)])
def test_adapter_takes_config_normalisation_and_image_size_from_the_checkpoint(states, tmp_path: Path, family: str,
                                                                               imagenet_norm: bool) -> None:
    # the opposite of each adapter's default for files without metadata, so the value must come from the file
    meta = CheckpointMeta(family, f"{family}_demo", SIZE, imagenet_norm)
    path = _weights(tmp_path / "w.pt", states[family], meta)
    segmenter = create_segmenter(family, checkpoint=str(path))
    assert segmenter.imagenet_norm is imagenet_norm
    assert segmenter.predictor.image_size == SIZE and segmenter.predictor.hidden_dim == 128  # the demo config
    assert _same_weights(segmenter.predictor, states[family])
    agreeing = create_segmenter(family, config=f"{family}_demo.yaml", imagenet_norm=imagenet_norm,
                                checkpoint=str(path))
    assert agreeing.imagenet_norm is imagenet_norm and agreeing.predictor.image_size == SIZE


def test_explicit_setting_contradicting_the_metadata_is_refused(states, tmp_path: Path) -> None:
    path = _weights(tmp_path / "sam2_w.pt", states["sam2"], CheckpointMeta("sam2", "sam2_demo", SIZE, False))
    with pytest.raises(InputError, match=r"sam2_w\.pt: imagenet_norm=True contradicts the checkpoint's metadata "
                                         r"\(imagenet_norm=False\)"):
        create_segmenter("sam2", checkpoint=str(path), imagenet_norm=True)
    with pytest.raises(InputError, match=r"sam2_w\.pt: config='sam2\.1_hiera_t' contradicts .*config='sam2_demo'"):
        create_segmenter("sam2", checkpoint=str(path), config="sam2.1_hiera_t")


def test_mois_weights_run_as_plain_sam2_need_a_sam2_config(states, tmp_path: Path) -> None:
    path = _weights(tmp_path / "mois_w.pt", states["mois_sam2"],
                    CheckpointMeta("mois_sam2", "mois_sam2_demo", SIZE, False))
    with pytest.raises(InputError, match=r"mois_w\.pt: weights of a mois_sam2 model .*give the sam2 model config"):
        create_segmenter("sam2", checkpoint=str(path))
    plain = create_segmenter("sam2", checkpoint=str(path), config="sam2_demo")
    assert plain.imagenet_norm is False and plain.predictor.image_size == SIZE  # still the weights' training
    assert _same_weights(plain.predictor, states["mois_sam2"])


def test_checkpoint_without_metadata_keeps_the_documented_defaults(states, tmp_path: Path) -> None:
    official = tmp_path / "official.pt"
    model = build_sam2_model("sam2_demo")
    save_checkpoint(model, official)  # {"model": state_dict} only, as official SAM2.1 files
    assert set(torch.load(official, weights_only=True)) == {"model"}
    with pytest.raises(InputError, match=r"official\.pt: checkpoint has no inference metadata; give the sam2 model "
                                         r"config"):
        create_segmenter("sam2", checkpoint=str(official))
    plain = create_segmenter("sam2", config="sam2_demo", checkpoint=str(official))
    assert plain.imagenet_norm is True and plain.predictor.image_size == 256  # official SAM2.1 preprocessing
    mois = create_segmenter("mois_sam2", config="mois_sam2_demo", checkpoint=str(official))
    assert mois.imagenet_norm is False and mois.predictor.image_size == 256
    assert create_segmenter("sam2", config="sam2_demo", checkpoint=str(official), imagenet_norm=False).imagenet_norm \
        is False
    with pytest.raises(InputError, match=r"no checkpoint given; give the mois_sam2 weights \(e.g. model_weights/demo/"
                                         r"mois_sam2_demo.pt\), or a mois_sam2 model config for random weights"):
        create_segmenter("mois_sam2")


def test_export_script_writes_the_metadata(states, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    plain = tmp_path / "plain.pt"
    torch.save({"model": states["sam2"]}, plain)
    assert EXPORT([str(plain), str(plain)]) == 1
    assert "plain.pt: no inference metadata and no training config in the file; give family, config, " \
           "imagenet_norm" in capsys.readouterr().err
    assert EXPORT([str(plain), str(plain), "--family", "sam2", "--config", "sam2_demo", "--no-imagenet-norm"]) == 0
    payload = torch.load(plain, weights_only=True)
    assert set(payload) == {"model", "meta"}
    assert payload["meta"] == {"family": "sam2", "config": "sam2_demo", "image_size": 256, "imagenet_norm": False}
    assert EXPORT([str(plain), str(plain), "--image-size", str(SIZE)]) == 1  # the file now records 256
    assert "image_size=64 contradicts the checkpoint's metadata (image_size=256)" in capsys.readouterr().err
    assert all(torch.equal(payload["model"][k], v) for k, v in states["sam2"].items())
    capsys.readouterr()
    assert EXPORT([str(plain), str(tmp_path / "other.pt"), "--imagenet-norm"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {plain}: imagenet_norm=True contradicts")
    assert not (tmp_path / "other.pt").exists()

    # a training checkpoint written before the metadata existed: derived from its training config
    training = tmp_path / "training.pt"
    torch.save({"model": states["mois_sam2"], "optimizer": {}, "epoch": 1, "step": 2, "metrics": {},
                "config": {"model": {"family": "mois_sam2", "config": "mois_sam2_demo",
                                     "params": {"image_size": SIZE}}}}, training)
    assert EXPORT([str(training), str(tmp_path / "exported.pt")]) == 0
    assert read(tmp_path / "exported.pt") == CheckpointMeta("mois_sam2", "mois_sam2_demo", SIZE, False)
    assert set(torch.load(tmp_path / "exported.pt", weights_only=True)) == {"model", "meta"}


def test_training_checkpoint_records_the_metadata_of_its_run(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    path = save_training_checkpoint(
        tmp_path / "checkpoint.pt", model, torch.optim.SGD(model.parameters(), lr=0.1), epoch=1, step=1,
        config={"model": {"family": "sam2", "config": "sam2_demo", "params": {"image_size": SIZE}}}, metrics={})
    assert read(path) == CheckpointMeta("sam2", "sam2_demo", SIZE, False)  # training frames are plain [0, 1]


def test_shipped_demo_weights_carry_their_metadata() -> None:
    for family in ("sam2", "mois_sam2"):
        path = REPO / "model_weights" / "demo" / f"{family}_demo.pt"
        assert read(path) == CheckpointMeta(family, f"{family}_demo", 256, False)
        assert path.stat().st_size <= 25 * 1024 * 1024


@pytest.mark.parametrize("model", ["sam2", "mois_sam2", "mois_sam2_com", "mois_sam2_no_propagation"])
def test_evaluation_model_configs_leave_config_and_normalisation_to_the_checkpoint(model: str) -> None:
    resolved, _ = compose_config([f"model={model}"])
    assert resolved["model"]["config"] is None and resolved["model"]["imagenet_norm"] is None


def test_evaluate_options_run_demo_weights_without_imagenet_normalisation() -> None:
    resolved, _ = compose_config(["model=sam2"])
    options = {k: v for k, v in resolved["model"].items() if k not in ("name", "label")}
    options["checkpoint"] = str(REPO / options["checkpoint"])
    segmenter = create_segmenter("sam2", **options)
    assert segmenter.imagenet_norm is False and segmenter.predictor.image_size == 256


def test_segment_sam2_uses_the_checkpoint_settings(states, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    checkpoint = _weights(tmp_path / "sam2_w.pt", states["sam2"], CheckpointMeta("sam2", "sam2_demo", SIZE, False))
    image = np.zeros((24, 4, 20), dtype=np.int16)
    image[8:14, :, 6:12] = 900
    nib.save(nib.Nifti1Image(image, np.diag([2.0, 4.0, 2.0, 1.0])), tmp_path / "scan.nii.gz")
    clicks = tmp_path / "clicks.json"
    clicks.write_text(json.dumps({"lesions": [{"id": 1, "clicks": [[10, 1, 8, 1]]}]}), encoding="utf-8")
    sessions: list[tuple[bool, int]] = []
    session_class = sam2_adapter.ScanSession

    def recording_session(predictor, scan, **options):
        sessions.append((options["imagenet_norm"], predictor.image_size))
        return session_class(predictor, scan, **options)

    monkeypatch.setattr(sam2_adapter, "ScanSession", recording_session)
    args = ["segment", "--image", str(tmp_path / "scan.nii.gz"), "--clicks", str(clicks), "--model", "sam2",
            "--checkpoint", str(checkpoint)]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    assert sessions == [(False, SIZE)]
    assert (tmp_path / "out" / "lesions.nii.gz").is_file()
    capsys.readouterr()
    assert main([*args, "--config", "sam2.1_hiera_t", "--out", str(tmp_path / "refused")]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {checkpoint}: config='sam2.1_hiera_t' contradicts")
    assert not (tmp_path / "refused").exists()
