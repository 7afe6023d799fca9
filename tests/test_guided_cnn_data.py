"""Click-guided CNN baselines: typed configs refuse bad keys and values; the MONAI crop pipeline loads each scan once,
refuses unreadable files, matches the inference working grid and draws crops of the configured size and foreground
rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import re
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import LoadImage

from mois_sam2_nf.data.io import load_label, load_nifti
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.dins.config import DINsConfig
from mois_sam2_nf.models.dins.config import load_config as load_dins
from mois_sam2_nf.models.guided_cnn.config import GridConfig
from mois_sam2_nf.models.guided_cnn.crops import CropSampler, case_dataset, preprocessing
from mois_sam2_nf.models.guided_cnn.grid import working_label, working_volume
from mois_sam2_nf.models.guided_cnn.training import fold_cases, fold_samplers
from mois_sam2_nf.models.sw_fastedit.config import SWFastEditConfig
from mois_sam2_nf.models.sw_fastedit.config import load_config as load_sw_fastedit
from mois_sam2_nf.models.sw_fastedit.train import train_sw_fastedit
from mois_sam2_nf.models.vista3d.config import load_config as load_vista3d

LOADERS: dict[str, Callable[..., Any]] = {"dins_smoke": load_dins, "sw_fastedit_smoke": load_sw_fastedit,
                                          "vista3d_smoke": load_vista3d}


# --------------------------------------------------------------------------------------------------------- configs


def test_packaged_configs_load_typed_with_overrides() -> None:
    dins = load_dins("dins", ["training.epochs=3", "grid.spacing=null", "training.crop=[64,32,4]"])
    assert isinstance(dins, DINsConfig) and dins.training.epochs == 3 and dins.grid.spacing is None
    assert dins.training.crop == [64, 32, 4] and dins.guidance.sigma == [5.0, 5.0, 1.0] and dins.training.lr == 3e-4
    sw_fastedit = load_sw_fastedit("sw_fastedit")
    assert isinstance(sw_fastedit, SWFastEditConfig) and sw_fastedit.network.filters[-1] == 320
    assert sw_fastedit.training.cache_rate == 1.0  # default when the YAML does not set it


@pytest.mark.parametrize("name", sorted(LOADERS))
@pytest.mark.parametrize(("overrides", "message"), [
    (["training.no_such_key=1"], "training.no_such_key"),
    (["+training.no_such_key=1"], r"training\.no_such_key: Key 'no_such_key' not in"),
    (["training.epochs=many"], r"training\.epochs: Value 'many' of type 'str' could not be converted to Integer"),
    (["grid.spacing=fine"], r"grid\.spacing: "),
    (["grid.divisor=[16,16]"], r"grid\.divisor: expected 3 values"),
    (["inference=null"], r"inference: "),
])
def test_bad_keys_and_values_are_refused_naming_the_key(name: str, overrides: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message) as refused:
        LOADERS[name](name, overrides)
    assert len(str(refused.value).splitlines()) == 1 and name in str(refused.value)


def test_bad_yaml_files_are_refused_naming_the_key(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "model_code/mois_sam2_nf/models/dins/configs/dins_smoke.yaml").read_text()
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(text.replace("  gamma: 1.0\n", "  gamma: 1.0\n  gama: 2.0\n"))
    with pytest.raises(InputError, match=r"unknown\.yaml: guidance\.gama: Key 'gama' not in 'ExpDTGuidanceConfig'"):
        load_dins(str(unknown))
    wrong_type = tmp_path / "wrong_type.yaml"
    wrong_type.write_text(text.replace("  base_channels: 8\n", "  base_channels: eight\n"))
    with pytest.raises(InputError, match=r"wrong_type\.yaml: network\.base_channels: Value 'eight'"):
        load_dins(str(wrong_type))
    missing = tmp_path / "missing.yaml"
    missing.write_text(text.replace("  seed: 0\n", ""))
    with pytest.raises(InputError, match=r"missing\.yaml: training\.seed: .*missing mandatory value"):
        load_dins(str(missing))
    with pytest.raises(InputError, match="config not found"):
        load_dins(str(tmp_path / "absent.yaml"))


# --------------------------------------------------------------------------------------------------------- crops


def _first_case(cohort: Path) -> dict[str, str]:
    image = sorted((cohort / "imagesTr").glob("*.nii.gz"))[0]
    return {"image": str(image), "label": str(cohort / "labelsTr_instance" / image.name)}


@pytest.mark.parametrize("coarser", [1.0, 1.5])
def test_preprocessing_matches_the_inference_working_grid(tiny_cohort: Path, coarser: float) -> None:
    files = _first_case(tiny_cohort)
    image = load_nifti(files["image"])
    view = ScanView.from_affine(image.affine, image.array.shape)
    spacing = None if coarser == 1.0 else [view.spacing[0] * coarser, view.spacing[1] * coarser, view.spacing[2]]
    volume = working_volume(image.array, view, spacing, (16, 16, 2))
    cached = preprocessing(GridConfig(spacing=spacing, divisor=[16, 16, 2]), [1, 1, 1])(files)
    torch.testing.assert_close(cached["image"].as_tensor(), volume.image, rtol=0, atol=1e-6)
    expected = working_label(load_label(files["label"], image=image).array, volume)
    assert cached["label"].dtype == torch.uint8 and torch.equal(cached["label"].as_tensor().float(), expected)


def test_a_label_on_another_grid_is_refused(tiny_cohort: Path, tmp_path: Path) -> None:
    case = fold_cases(tiny_cohort, 1, None)[0][0]
    label = nib.load(case.label)
    moved = replace(case, label=tmp_path / "moved.nii.gz")
    nib.save(nib.Nifti1Image(np.asanyarray(label.dataobj), label.affine + np.diag([0, 0, 0.5, 0])), moved.label)
    config = load_sw_fastedit("sw_fastedit_smoke")
    with pytest.raises(InputError, match="moved.nii.gz: affine differs from image"):
        case_dataset([moved], config.grid, config.training)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_an_unreadable_nifti_is_refused_naming_the_file(tiny_cohort: Path, tmp_path: Path, damage: str) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(tiny_cohort, raw)
    case = fold_cases(raw, 1, None)[0][0]
    content = case.image.read_bytes()
    case.image.write_bytes(content[:len(content) // 2] if damage == "truncated" else b"not a NIfTI file" * 64)
    config = load_sw_fastedit("sw_fastedit_smoke")
    message = rf"^{re.escape(str(case.image))}: unreadable NIfTI file \(\w+: .+\)$"
    with pytest.raises(InputError, match=message) as refused:
        case_dataset([case], config.grid, config.training)
    assert len(str(refused.value).splitlines()) == 1


def test_each_scan_is_loaded_once_and_crops_have_the_configured_shape(tiny_cohort: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    load = LoadImage.__call__

    def counting(self: LoadImage, filename: str, *args: Any, **kwargs: Any) -> Any:
        loaded.append(filename)
        return load(self, filename, *args, **kwargs)

    monkeypatch.setattr(LoadImage, "__call__", counting)
    config = load_sw_fastedit("sw_fastedit_smoke", ["training.crop=[48,40,8]"])
    train_cases, val_cases = fold_cases(tiny_cohort, 1, None)
    sampler, val_sampler = fold_samplers(train_cases, val_cases, config)(0)
    for _ in range(3):  # epochs
        crops = [sampler.sample() for _ in range(6)] + [val_sampler.sample() for _ in range(2)]
    assert sorted(loaded) == sorted(str(path) for case in train_cases + val_cases for path in (case.image, case.label))
    for crop in crops:
        assert crop.image.shape == crop.label.shape == (1, 48, 40, 8)
        assert crop.image.dtype == crop.label.dtype == torch.float32
        assert set(crop.label.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("pos_fraction", [0.0, 0.5, 1.0])
def test_crops_are_centred_on_lesion_voxels_at_the_configured_rate(tiny_cohort: Path, pos_fraction: float) -> None:
    config = load_sw_fastedit("sw_fastedit_smoke", ["training.crop=[9,9,3]", "training.flip_prob=0.0",
                                                    f"training.pos_fraction={pos_fraction}"])
    train_cases, _ = fold_cases(tiny_cohort, 1, None)
    dataset = case_dataset(train_cases, config.grid, config.training)
    sampler = CropSampler(dataset, config.training, seed=3)
    centres = [float(sampler.sample().label[0, 4, 4, 1]) for _ in range(200)]
    assert np.mean(centres) == pytest.approx(pos_fraction, abs=0.1)


def test_crops_are_reproducible_from_the_seed(tiny_cohort: Path) -> None:
    config = load_dins("dins_smoke")  # flips with p 0.5
    train_cases, _ = fold_cases(tiny_cohort, 1, None)
    dataset = case_dataset(train_cases[:2], config.grid, config.training)

    def crops(seed: int) -> list[torch.Tensor]:
        sampler = CropSampler(dataset, config.training, seed)
        return [torch.cat([s.image, s.label]) for s in (sampler.sample() for _ in range(5))]

    first, again, other = crops(7), crops(7), crops(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


@pytest.mark.usefixtures("one_torch_thread")
def test_training_is_reproducible_from_the_seed(tiny_cohort: Path, tmp_path: Path) -> None:
    config = load_sw_fastedit("sw_fastedit_smoke", ["training.epochs=1", "training.val_samples=1"])
    logs, weights = [], []
    for run in ("a", "b"):
        checkpoint = train_sw_fastedit(tiny_cohort, config, out_dir=tmp_path / run, fold=1)
        logs.append([row.split(",")[1:3] for row in (checkpoint.parent / "logs" / "train_log.csv").read_text().split()])
        weights.append(torch.load(checkpoint, weights_only=True)["model"])
    assert logs[0] == logs[1]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
