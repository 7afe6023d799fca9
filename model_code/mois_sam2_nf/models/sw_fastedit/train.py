"""SW-FastEdit training, DeepEdit style (baselines spec section 5).

Each iteration draws a training scan of the fold, puts it on the working grid, takes a crop (MONAI
``RandCropByPosNegLabel``, ``pos_fraction`` of them centred on lesion voxels) with random flips, and starts the
guidance from one positive click on a random lesion voxel of the crop (none if the crop has no lesion). Then
``0..max_interactions`` simulated interactions run without gradients (predict, add the corrective click of the largest
error region), and one Adam step is taken on the final inputs with ``DiceCELoss(to_onehot_y, softmax, squared_pred,
include_background=False)``. The learning rate follows ``CosineAnnealingLR(T_max=epochs)``.

Output ``<out>/fold_<k>/``: ``checkpoints/last.pt`` (resume point, written after every epoch), ``logs/train_log.csv``
(epoch, train and validation loss, lr, seconds), ``checkpoint.pt`` (``{"model": state_dict}``) and ``meta.json``.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.transforms import RandCropByPosNegLabel, SpatialPad
from tqdm import tqdm

from mois_sam2_nf.atomic import atomic_path, write_json
from mois_sam2_nf.data.io import load_label, load_nifti
from mois_sam2_nf.data.layout import TRAIN_SET, CaseFiles, select_sets
from mois_sam2_nf.data.splits import default_folds, read_fold
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.manifest import git_state
from mois_sam2_nf.models.guided_cnn.corrections import corrective_click
from mois_sam2_nf.models.guided_cnn.grid import working_label, working_volume
from mois_sam2_nf.models.guided_cnn.guidance import ball_guidance
from mois_sam2_nf.models.sw_fastedit.network import build_network

META_FILE = "meta.json"
NORMALISATION = "z-score over non-zero voxels (MONAI NormalizeIntensity(nonzero=True))"
ORIENTATION = "canonical coronal view: rows S->I, cols R->L, frames P->A"


@dataclass
class Sample:
    """One training crop: ``image`` ``(1, r, c, f)``, ``label`` ``(1, r, c, f)`` binary float."""

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
    """Random crops of the fold's scans on the working grid (scans are loaded on demand)."""

    def __init__(self, cases: list[CaseFiles], config: dict[str, Any], seed: int) -> None:
        if not cases:
            raise InputError("no training cases in this fold")
        self.cases, self.config = cases, config
        self.rng = np.random.default_rng(seed)
        crop = config["training"]["crop"]
        pos = float(config["training"]["pos_fraction"])
        self.pad = SpatialPad(spatial_size=crop)
        self.crop = RandCropByPosNegLabel(spatial_size=crop, pos=pos, neg=1.0 - pos, num_samples=1, allow_smaller=True)
        self.crop.set_random_state(seed=seed)

    def sample(self) -> Sample:
        case = self.cases[int(self.rng.integers(len(self.cases)))]
        image = load_nifti(case.image)
        label = load_label(case.label, image=image).array
        grid = self.config["grid"]
        view = ScanView.from_affine(image.affine, image.array.shape)
        volume = working_volume(image.array, view, grid["spacing"], grid["divisor"])
        target = working_label(label, volume, grid["spacing"])
        both = self.pad(torch.cat([volume.image, target]))
        crop = self.crop(both, label=both[1:])[0]
        for axis in range(3):
            if self.rng.random() < float(self.config["training"]["flip_prob"]):
                crop = torch.flip(crop, dims=(axis + 1,))
        return Sample(torch.as_tensor(crop[:1]).float(), torch.as_tensor(crop[1:]).float())


def _random_voxel(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int] | None:
    voxels = np.argwhere(mask)
    return None if len(voxels) == 0 else tuple(int(v) for v in voxels[int(rng.integers(len(voxels)))])


def simulate_inputs(model: torch.nn.Module, sample: Sample, interactions: int, rng: np.random.Generator,
                    device: torch.device) -> torch.Tensor:
    """``(1, 3, r, c, f)`` network input after one initial click and ``interactions`` corrective clicks."""
    label = sample.label[0].numpy() > 0.5
    positives, negatives = [], []
    first = _random_voxel(label, rng)
    if first is not None:
        positives.append(first)
    shape = tuple(sample.image.shape[1:])

    def inputs() -> torch.Tensor:
        return torch.cat([sample.image, ball_guidance(shape, positives, negatives)])[None].to(device)

    model.eval()
    with torch.no_grad():
        for _ in range(interactions):
            prediction = model(inputs()).argmax(dim=1)[0].cpu().numpy() > 0
            click = corrective_click(prediction, label)
            if click is None:
                break
            (positives if click[1] else negatives).append(click[0])
    return inputs()


def _save_atomic(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train_sw_fastedit(raw_root: str | os.PathLike[str], config: dict[str, Any], *, out_dir: str | os.PathLike[str],
                      fold: int = 1, splits_dir: str | os.PathLike[str] | None = None, device: str = "cpu",
                      config_name: str = "sw_fastedit") -> Path:
    """Train one fold (resuming from ``checkpoints/last.pt``); returns the exported ``checkpoint.pt``."""
    training = config["training"]
    seed = int(training["seed"])
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    fold_dir = Path(out_dir) / f"fold_{fold}"
    train_cases, val_cases = fold_cases(raw_root, fold, splits_dir)
    sampler = CropSampler(train_cases, config, seed)
    val_sampler = CropSampler(val_cases or train_cases, config, seed + 1)
    torch_device = torch.device(device)
    model = build_network(config["network"]["filters"]).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(training["lr"]))
    epochs = int(training["epochs"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=float(training["eta_min"]))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, squared_pred=True, include_background=False)
    last = fold_dir / "checkpoints" / "last.pt"
    start_epoch = 0
    if last.is_file():
        state = torch.load(last, map_location=torch_device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"])
        rng = np.random.default_rng([seed, start_epoch])
    log = fold_dir / "logs" / "train_log.csv"
    log.parent.mkdir(parents=True, exist_ok=True)
    for epoch in tqdm(range(start_epoch, epochs), desc=f"SW-FastEdit fold {fold}", unit="epoch",
                      initial=start_epoch, total=epochs):
        start = time.perf_counter()
        losses = []
        for _ in range(int(training["iterations_per_epoch"])):
            sample = sampler.sample()
            interactions = int(rng.integers(0, int(training["max_interactions"]) + 1))
            inputs = simulate_inputs(model, sample, interactions, rng, torch_device)
            model.train()
            loss = loss_fn(model(inputs), sample.label[None].to(torch_device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach().item())
        model.eval()
        with torch.no_grad():
            val_losses = []
            for _ in range(int(training["val_samples"])):
                sample = val_sampler.sample()
                inputs = simulate_inputs(model, sample, 0, rng, torch_device)
                val_losses.append(float(loss_fn(model(inputs), sample.label[None].to(torch_device))))
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        new_log = not log.is_file()
        with open(log, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new_log:
                writer.writerow(["epoch", "train_loss", "val_loss", "lr", "seconds"])
            writer.writerow([epoch + 1, f"{np.mean(losses):.6f}", f"{np.mean(val_losses):.6f}", f"{lr:.3e}",
                             f"{time.perf_counter() - start:.1f}"])
        _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "epoch": epoch + 1}, last)
    checkpoint = fold_dir / "checkpoint.pt"
    _save_atomic({"model": model.state_dict()}, checkpoint)
    write_json(fold_dir / META_FILE, {
        "model": "sw_fastedit", "config_name": config_name, "config": config, "fold": fold,
        "normalisation": NORMALISATION, "orientation": ORIENTATION, "spacing": config["grid"]["spacing"],
        "seed": seed, "git_commit": git_state()["git_commit"],
    })
    return checkpoint
