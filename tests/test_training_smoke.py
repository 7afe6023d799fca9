"""End-to-end trainer runs on the sliced `tiny` cohort (the ``_smoke.yaml`` settings at 128 px to stay fast on CPU).

- MOIS-SAM2 smoke run (demo model, 3-frame clips, 2 objects, bank of 4, 1 epoch x 2 iterations) writes a checkpoint that
  the model builder loads strictly, records its inference metadata, the export script strips it (the metadata stays,
  so the adapter needs no config), and a second run resumes from it;
- plain SAM2 under ``torchrun --nproc_per_node=2`` (gloo; 2-frame clips at 64 px) keeps both replicas bit-identical.
"""

from __future__ import annotations

import csv
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mois_sam2_nf.cli.main import main
from mois_sam2_nf.segmenters import create_segmenter
from mois_sam2_nf.models.mois_sam2.build import build_mois_sam2
from mois_sam2_nf.training.config import load_training_config
from mois_sam2_nf.training.trainer import train

REPO = Path(__file__).resolve().parents[1]
IMAGE_SIZE = 128


@pytest.fixture(scope="module")
def sliced(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(processed root, splits folder)`` of the tiny cohort's training set."""
    out = tmp_path_factory.mktemp("training_data")
    assert main(["slice", "--raw", str(tiny_cohort), "--out", str(out / "processed"), "--sets", "imagesTr"]) == 0
    assert main(["split", "--raw", str(tiny_cohort), "--out", str(out / "splits")]) == 0
    return out / "processed", out / "splits"


def _overrides(sliced: tuple[Path, Path], out_dir: Path, *extra: str, image_size: int = IMAGE_SIZE) -> list[str]:
    return [f"data.root={sliced[0]}", f"data.splits={sliced[1]}", f"trainer.out_dir={out_dir}",
            f"model.params.image_size={image_size}", "trainer.cpu_threads=1", *extra]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_smoke_run_checkpoint_loads_exports_and_resumes(sliced: tuple[Path, Path], tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    last = train(load_training_config("train_mois_sam2_smoke", _overrides(sliced, out_dir)))
    assert last == out_dir / "checkpoints" / "checkpoint.pt"
    first = torch.load(last, map_location="cpu", weights_only=True)
    assert (first["epoch"], first["step"]) == (1, 2)
    assert first["meta"] == {"family": "mois_sam2", "config": "mois_sam2_demo", "image_size": IMAGE_SIZE,
                             "imagenet_norm": False}
    rows = _rows(out_dir / "logs" / "train_log.csv")
    assert [r["step"] for r in rows] == ["1", "2"]
    assert all(math.isfinite(float(r["loss"])) and float(r["semantic"]) > 0 for r in rows)
    assert all(0 <= float(r["bank_size"]) <= 4 for r in rows)
    (val,) = _rows(out_dir / "logs" / "val_log.csv")
    assert 0.0 <= float(val["val_dice"]) <= 1.0 and 0.0 <= float(val["val_semantic_dice"]) <= 1.0

    # the training checkpoint loads strictly with the model builder (extra entries are ignored)
    model = build_mois_sam2("mois_sam2_demo", last, overrides=[f"model.image_size={IMAGE_SIZE}"])
    for key, value in model.state_dict().items():
        assert torch.equal(value, first["model"][key]), key

    exported = tmp_path / "weights.pt"
    export = runpy.run_path(str(REPO / "model_weights" / "export_sam2_model_weights.py"))["main"]
    assert export([str(last), str(exported)]) == 0
    payload = torch.load(exported, map_location="cpu", weights_only=True)
    assert set(payload) == {"model", "meta"} and payload["meta"] == first["meta"]
    segmenter = create_segmenter("mois_sam2", checkpoint=str(exported))
    assert segmenter.predictor.image_size == IMAGE_SIZE and segmenter.imagenet_norm is False

    # a second run with one more epoch continues from the checkpoint (step 3), it does not restart
    train(load_training_config("train_mois_sam2_smoke", _overrides(
        sliced, out_dir, "trainer.epochs=2", "trainer.iterations_per_epoch=1", "trainer.val_clips=0")))
    second = torch.load(last, map_location="cpu", weights_only=True)
    assert (second["epoch"], second["step"]) == (2, 3)
    assert [r["epoch"] for r in _rows(out_dir / "logs" / "train_log.csv")] == ["0", "0", "1"]
    assert any(not torch.equal(second["model"][k], first["model"][k]) for k in first["model"])


def test_two_process_torchrun_keeps_replicas_identical(sliced: tuple[Path, Path], tmp_path: Path) -> None:
    out_dir = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "mois_sam2_nf.cli.main", "train", "-c", "finetune_sam2_smoke",
               *_overrides(sliced, out_dir, "trainer.val_clips=0", "data.num_frames=2", image_size=64)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(out_dir / "checkpoints" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert checkpoint["step"] == 2  # 5 training cases over 2 ranks -> 2 steps, each on 2 clips
    (row,) = _rows(out_dir / "logs" / "val_log.csv")
    assert row["param_checksum_rank0"] == row["param_checksum_rank1"]
    assert math.isfinite(float(row["param_checksum_rank0"]))
