"""The training loop shared by the click-guided CNN baselines: fold cases, random crops, epochs, resume, outputs.

Crops come from :mod:`.crops` (MONAI transforms over a ``CacheDataset``: each scan of the fold is loaded once per run).

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
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mois_sam2_nf.atomic import atomic_path, write_json
from mois_sam2_nf.data.layout import TRAIN_SET, CaseFiles, select_sets
from mois_sam2_nf.data.splits import default_folds, read_fold
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.provenance import git_state
from mois_sam2_nf.models.guided_cnn.config import GuidedCNNConfig
from mois_sam2_nf.models.guided_cnn.crops import CropSampler, Sample, case_dataset

META_FILE = "meta.json"
NORMALISATION = "z-score over non-zero voxels (MONAI NormalizeIntensity(nonzero=True))"
ORIENTATION = "canonical coronal view: rows S->I, cols R->L, frames P->A"


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


def fold_samplers(train_cases: list[CaseFiles], val_cases: list[CaseFiles],
                  config: GuidedCNNConfig) -> Callable[[int], tuple[CropSampler, CropSampler]]:
    """``make_samplers`` for :func:`train_loop`: crops of the training and of the validation cases (the training
    cases when the fold has no validation cases), configured by the ``grid`` and ``training`` sections.

    A call loads the scans (:func:`~mois_sam2_nf.models.guided_cnn.crops.case_dataset`, each once; one dataset serves
    both samplers when the fold has no validation cases) and returns samplers seeded with ``seed`` (training) and
    ``seed + 1`` (validation).
    """
    grid, training = config.grid, config.training

    def make(seed: int) -> tuple[CropSampler, CropSampler]:
        train_data = case_dataset(train_cases, grid, training)
        val_data = case_dataset(val_cases, grid, training) if val_cases else train_data
        return CropSampler(train_data, training, seed), CropSampler(val_data, training, seed + 1)

    return make


def _save_atomic(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train_loop(
    *,
    raw_root: str | os.PathLike[str],
    config: GuidedCNNConfig,
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
    ``seed``) from its ``training`` section. ``scheduler`` is stepped once per epoch: with the mean validation loss when
    it is a ``ReduceLROnPlateau``, without arguments otherwise.
    """
    training = config.training
    seed, epochs = training.seed, training.epochs
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
    if start_epoch >= epochs:
        return fold_dir
    rng = np.random.default_rng([seed, start_epoch])
    sampler, val_sampler = make_samplers(seed + 2 * start_epoch)
    log = fold_dir / "logs" / "train_log.csv"
    log.parent.mkdir(parents=True, exist_ok=True)
    for epoch in tqdm(range(start_epoch, epochs), desc=desc, unit="epoch", initial=start_epoch, total=epochs):
        start = time.perf_counter()
        model.train()
        losses = [train_step(sampler.sample(), rng) for _ in range(training.iterations_per_epoch)]
        model.eval()
        with torch.no_grad():
            validation = float(np.mean([val_loss(val_sampler.sample(), rng)
                                        for _ in range(training.val_samples)]))
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


def read_meta(checkpoint: Path, config: GuidedCNNConfig, fold: int) -> dict[str, Any]:
    """``meta.json`` beside ``checkpoint``; :class:`InputError` if missing or contradicting ``config`` or ``fold``.

    The ``network`` and ``grid`` sections of the training config must equal those of the inference config.
    """
    path = checkpoint.parent / META_FILE
    expected = asdict(config)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing (checkpoints are written with their meta.json)") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg})") from None
    for section in ("network", "grid"):
        if meta.get("config", {}).get(section) != expected[section]:
            raise InputError(f"{path}: trained with {section} {meta.get('config', {}).get(section)}, the inference "
                             f"config has {expected[section]}")
    if meta.get("fold") != fold:
        raise InputError(f"{path}: trained for fold {meta.get('fold')}, evaluation asks for fold {fold}")
    return meta
