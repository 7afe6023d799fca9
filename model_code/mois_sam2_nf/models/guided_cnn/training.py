"""The training loop shared by the click-guided CNN baselines: fold cases, random crops, epochs, resume, outputs.

A baseline supplies its network, optimiser, scheduler and two callables: ``train_step(sample, rng) -> loss`` (one
optimiser step, including its own click simulation) and ``val_loss(sample, rng) -> loss`` (no gradients). The loop
writes, under ``<out>/fold_<k>/``:

- ``checkpoints/last.pt``: model, optimiser, scheduler and epoch after every epoch (the resume point);
- ``logs/train_log.csv``: epoch, mean train loss, mean validation loss, learning rate, seconds;
- ``checkpoint.pt`` (``{"model": state_dict}``) and ``meta.json`` at the end (:func:`write_fold_outputs`).
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import RandCropByPosNegLabel, SpatialPad
from tqdm import tqdm

from mois_sam2_nf.atomic import atomic_path, write_json
from mois_sam2_nf.data.io import load_label, load_nifti
from mois_sam2_nf.data.layout import TRAIN_SET, CaseFiles, select_sets
from mois_sam2_nf.data.splits import default_folds, read_fold
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.provenance import git_state
from mois_sam2_nf.models.guided_cnn.grid import working_label, working_volume

META_FILE = "meta.json"
NORMALISATION = "z-score over non-zero voxels (MONAI NormalizeIntensity(nonzero=True))"
ORIENTATION = "canonical coronal view: rows S->I, cols R->L, frames P->A"


@dataclass
class Sample:
    """One training crop on the working grid: ``image`` and binary ``label``, both ``(1, r, c, f)`` float32."""

    image: torch.Tensor
    label: torch.Tensor


def fold_cases(raw_root: str | os.PathLike[str], fold: int,
               splits_dir: str | os.PathLike[str] | None) -> tuple[list[CaseFiles], list[CaseFiles]]:
    """Training and validation cases of project fold ``fold`` (default folds when ``splits_dir`` is ``None``)."""
    train_set = select_sets(raw_root, [TRAIN_SET])[0]
    if splits_dir is not None:
        split = read_fold(splits_dir, fold)
    else:
        folds = default_folds(raw_root)
        if not 1 <= fold <= len(folds):
            raise InputError(f"fold {fold} does not exist (1..{len(folds)})")
        split = folds[fold - 1]
    by_id = {c.case_id: c for c in train_set.cases}
    unknown = sorted(set(split.train + split.val) - set(by_id))
    if unknown:
        raise InputError(f"fold {fold}: case {unknown[0]} is not in {Path(raw_root) / TRAIN_SET}")
    return [by_id[c] for c in split.train], [by_id[c] for c in split.val]


class CropSampler:
    """Random crops of scans on the working grid (scans are loaded on demand).

    Args:
        cases: scans to draw from (uniformly).
        grid: ``{"spacing": ..., "divisor": ...}`` of the working grid.
        crop: crop size ``(r, c, f)``; smaller scans are zero-padded first.
        pos_fraction: share of crops centred on a lesion voxel (MONAI ``RandCropByPosNegLabel``).
        flip_prob: probability of a flip along each axis.
        seed: seeds the case choice, the crops and the flips.
    """

    def __init__(self, cases: list[CaseFiles], grid: dict[str, Any], crop: list[int], pos_fraction: float,
                 flip_prob: float, seed: int) -> None:
        if not cases:
            raise InputError("no training cases in this fold")
        self.cases, self.grid, self.flip_prob = cases, grid, float(flip_prob)
        self.rng = np.random.default_rng(seed)
        self.pad = SpatialPad(spatial_size=crop)
        self.crop = RandCropByPosNegLabel(spatial_size=crop, pos=pos_fraction, neg=1.0 - pos_fraction,
                                          num_samples=1, allow_smaller=True)
        self.crop.set_random_state(seed=seed)

    def sample(self) -> Sample:
        case = self.cases[int(self.rng.integers(len(self.cases)))]
        image = load_nifti(case.image)
        label = load_label(case.label, image=image).array
        view = ScanView.from_affine(image.affine, image.array.shape)
        volume = working_volume(image.array, view, self.grid["spacing"], self.grid["divisor"])
        both = self.pad(torch.cat([volume.image, working_label(label, volume)]))
        crop = torch.as_tensor(self.crop(both, label=both[1:])[0])
        for axis in range(3):
            if self.rng.random() < self.flip_prob:
                crop = torch.flip(crop, dims=(axis + 1,))
        return Sample(crop[:1].float(), crop[1:].float())


def fold_samplers(train_cases: list[CaseFiles], val_cases: list[CaseFiles],
                  config: dict[str, Any]) -> Callable[[int], tuple[CropSampler, CropSampler]]:
    """``make_samplers`` for :func:`train_loop`: crops of the training and of the validation cases (the training
    cases when the fold has no validation cases), configured by the ``grid`` and ``training`` sections."""
    training = config["training"]
    options = (config["grid"], training["crop"], float(training["pos_fraction"]), training["flip_prob"])

    def make(seed: int) -> tuple[CropSampler, CropSampler]:
        return CropSampler(train_cases, *options, seed), CropSampler(val_cases or train_cases, *options, seed + 1)

    return make


def _save_atomic(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train_loop(
    *,
    raw_root: str | os.PathLike[str],
    config: dict[str, Any],
    fold: int,
    splits_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    train_step: Callable[[Sample, np.random.Generator], float],
    val_loss: Callable[[Sample, np.random.Generator], float],
    desc: str,
) -> Path:
    """Run (or resume) the epochs of project fold ``fold``; returns the fold folder ``<out_dir>/fold_<k>``.

    Crops come from :func:`fold_samplers`; the schedule (``epochs``, ``iterations_per_epoch``, ``val_samples``,
    ``seed``) from ``config["training"]``. ``scheduler`` is stepped once per epoch: with the mean validation loss when
    it is a ``ReduceLROnPlateau``, without arguments otherwise.
    """
    training = config["training"]
    seed, epochs = int(training["seed"]), int(training["epochs"])
    fold_dir = Path(out_dir) / f"fold_{fold}"
    make_samplers = fold_samplers(*fold_cases(raw_root, fold, splits_dir), config)
    last = fold_dir / "checkpoints" / "last.pt"
    start_epoch = 0
    if last.is_file():
        state = torch.load(last, map_location=next(model.parameters()).device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"])
    rng = np.random.default_rng([seed, start_epoch])
    sampler, val_sampler = make_samplers(seed + 2 * start_epoch)
    log = fold_dir / "logs" / "train_log.csv"
    log.parent.mkdir(parents=True, exist_ok=True)
    for epoch in tqdm(range(start_epoch, epochs), desc=desc, unit="epoch", initial=start_epoch, total=epochs):
        start = time.perf_counter()
        model.train()
        losses = [train_step(sampler.sample(), rng) for _ in range(int(training["iterations_per_epoch"]))]
        model.eval()
        with torch.no_grad():
            validation = float(np.mean([val_loss(val_sampler.sample(), rng)
                                        for _ in range(int(training["val_samples"]))]))
        lr = optimizer.param_groups[0]["lr"]
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(validation)
        else:
            scheduler.step()
        _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "epoch": epoch + 1}, last)
        _append_log_row(log, [epoch + 1, f"{np.mean(losses):.6f}", f"{validation:.6f}", f"{lr:.3e}",
                              f"{time.perf_counter() - start:.1f}"])
    return fold_dir


def _append_log_row(log: Path, row: list[Any]) -> None:
    """Append one epoch's row to ``train_log.csv`` (header first for a new file).

    Called after the epoch's checkpoint is saved, so a run interrupted in between resumes at that epoch without
    writing its row twice (at worst the row of the interrupted epoch is missing).
    """
    new_log = not log.is_file()
    with open(log, "a", newline="") as handle:
        writer = csv.writer(handle)
        if new_log:
            writer.writerow(["epoch", "train_loss", "val_loss", "lr", "seconds"])
        writer.writerow(row)


def write_fold_outputs(fold_dir: Path, model: torch.nn.Module, meta: dict[str, Any],
                       file_name: str = "checkpoint.pt") -> Path:
    """Write the weights (``file_name``, ``{"model": state_dict}``) and ``meta.json`` (plus normalisation, orientation
    and git commit); returns the former."""
    checkpoint = fold_dir / file_name
    _save_atomic({"model": model.state_dict()}, checkpoint)
    write_json(fold_dir / META_FILE, meta | {"normalisation": NORMALISATION, "orientation": ORIENTATION,
                                            "git_commit": git_state()["git_commit"]})
    return checkpoint


def read_meta(checkpoint: Path, config: dict[str, Any], fold: int) -> dict[str, Any]:
    """``meta.json`` beside ``checkpoint``; :class:`InputError` if missing or contradicting ``config`` or ``fold``.

    The ``network`` and ``grid`` sections of the training config must equal those of the inference config.
    """
    path = checkpoint.parent / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing (checkpoints are written with their meta.json)") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg})") from None
    for section in ("network", "grid"):
        if meta.get("config", {}).get(section) != config[section]:
            raise InputError(f"{path}: trained with {section} {meta.get('config', {}).get(section)}, the inference "
                             f"config has {config[section]}")
    if meta.get("fold") != fold:
        raise InputError(f"{path}: trained for fold {meta.get('fold')}, evaluation asks for fold {fold}")
    return meta
