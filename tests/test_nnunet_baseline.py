"""nnU-Net v2 baseline: smoke training with the real nnunetv2 commands, the adapter, and an evaluation run."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mois_sam2_nf.data.io import load_nifti
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation import runner
from mois_sam2_nf.segmenters import Scan, create_segmenter
from mois_sam2_nf.models.nnunet import train as nnunet_train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fold_dir(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nnUNetTrainer_Smoke trained on fold 1 of the tiny cohort (CPU, about 3 minutes on 2 cores)."""
    work = tmp_path_factory.mktemp("nnunet")
    folders = nnunet_train.train_nnunet(tiny_cohort, work_dir=work / "work", out_dir=work / "out", folds=(1,),
                                        smoke=True, device="cpu", num_processes=1)
    return folders[0]


def _scan(path: Path) -> Scan:
    image = load_nifti(path)
    return Scan(path.name, image.array, image.affine, ScanView.from_affine(image.affine, image.array.shape))


def test_training_writes_meta_and_resumes(fold_dir: Path, tiny_cohort: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = json.loads((fold_dir / "meta.json").read_text())
    assert meta["fold"] == 1 and meta["nnunet_fold"] == 0 and meta["trainer"] == "nnUNetTrainer_Smoke"
    assert meta["configuration"] == "3d_fullres" and len(meta["spacing"]) == 3
    assert (fold_dir / meta["dataset"] / "nnUNetTrainer_Smoke__nnUNetPlans__3d_fullres" / "fold_0"
            / "checkpoint_final.pth").is_file()
    calls: list[list[str]] = []
    monkeypatch.setattr(nnunet_train, "_run", lambda command, env: calls.append(command))
    nnunet_train.train_nnunet(tiny_cohort, work_dir=fold_dir.parents[1] / "work", out_dir=fold_dir.parent,
                              folds=(1,), smoke=True, device="cpu", num_processes=1)
    assert calls == []  # plans reused, finished fold skipped


def test_adapter_matches_nnunet_reading_the_file_itself(fold_dir: Path, tiny_cohort: Path) -> None:
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    path = sorted((tiny_cohort / "imagesTs_1").glob("*.nii.gz"))[0]
    segmenter = create_segmenter("nnunet", checkpoint=str(fold_dir), fold=1, use_mirroring=False)
    assert not segmenter.interactive and segmenter.automatic_capable
    segmenter.start_scan(_scan(path))
    mask = segmenter.automatic()
    assert mask.shape == nib.load(path).shape and mask.dtype == bool
    image, properties = SimpleITKIO().read_images([str(path)])
    reference = segmenter.predictor.predict_single_npy_array(image, properties, None, None, False)
    np.testing.assert_array_equal(mask, np.asarray(reference).transpose(2, 1, 0) > 0)
    with pytest.raises(InputError, match="automatic only"):
        segmenter.add_clicks(1, [])
    with pytest.raises(InputError, match="trained for fold 1"):
        create_segmenter("nnunet", checkpoint=str(fold_dir), fold=2)
    with pytest.raises(InputError, match="meta.json: missing"):
        create_segmenter("nnunet", checkpoint=str(fold_dir.parent), fold=1)


def test_evaluation_run_with_nnunet(fold_dir: Path, tiny_cohort: Path, tmp_path: Path) -> None:
    result = runner.evaluate([f"data.root={tiny_cohort}", f"results_dir={tmp_path}", "data.splits_dir=none",
                              "progress=false", "model=nnunet", f"model.checkpoint={fold_dir}",
                              "model.use_mirroring=false", "protocol=global_non_corrective"])
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["checkpoint"]["sha256"] is not None
    metrics = (result.run_dir / "case_metrics.csv").read_text().splitlines()
    assert len(metrics) == 3  # header + the 2 cases of ts1
