"""VISTA3D fine-tuning of the point and automatic branches, NF as class 133.

Each iteration takes a crop of a training scan of the fold
(:class:`~mois_sam2_nf.models.guided_cnn.crops.CropSampler`, ``pos_fraction`` of them centred on lesion voxels,
random flips) and takes one AdamW step on the sum of two
``DiceCELoss(sigmoid=True)`` terms against the binary lesion mask of the crop:

- automatic branch: the class head's logits for class ``nf_class``;
- point branch: the point head's logits (prompt class ``nf_class``) from 1..``max_points`` clicks drawn uniformly
  from the crop: positives on lesion voxels (at least one when the crop holds a lesion), the rest negatives on
  background voxels (a crop without lesion gets negatives only and an empty target).

The learning rate follows MONAI's ``WarmupCosineSchedule`` per epoch (linear warm-up over ``warmup_epochs``, cosine
decay to 0). Training starts from random weights or, with ``training.init_weights``, from MONAI-bundle VISTA3D
weights (loaded strictly, so only with the full-scale network). Outputs and resume:
:func:`~mois_sam2_nf.models.guided_cnn.training.train_loop`; the fold folder gets ``model.pt`` and ``meta.json``.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.optimizers import WarmupCosineSchedule

from mois_sam2_nf.models.guided_cnn.training import Sample, train_loop, write_fold_outputs
from mois_sam2_nf.models.vista3d.config import VISTA3DConfig, VISTA3DTrainingConfig
from mois_sam2_nf.models.vista3d.network import build_network, load_bundle_weights

#: weights file of a fold folder
WEIGHTS_FILE = "model.pt"


def sample_points(label: np.ndarray, max_points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Clicks for the point branch from a bool ``(r, c, f)`` crop label.

    Returns ``(coords, labels)``: ``(n, 3)`` int64 voxels and ``(n,)`` int64 labels (1 positive, 0 negative) with
    ``1 <= n <= max_points``; at least one positive when the label is not empty.
    """
    count = int(rng.integers(1, int(max_points) + 1))
    lesion, background = np.argwhere(label), np.argwhere(~label)
    n_pos = int(rng.integers(1, count + 1)) if len(lesion) else 0
    picks = [lesion[rng.integers(len(lesion), size=n_pos)], background[rng.integers(len(background),
                                                                                    size=count - n_pos)]]
    coords = np.concatenate(picks).astype(np.int64)
    labels = np.array([1] * n_pos + [0] * (count - n_pos), dtype=np.int64)
    return coords, labels


def branch_losses(model: torch.nn.Module, sample: Sample, rng: np.random.Generator, training: VISTA3DTrainingConfig,
                  nf_class: int, device: torch.device) -> torch.Tensor:
    """Automatic-branch plus point-branch DiceCE loss of one crop (scalar tensor with gradients if enabled)."""
    loss_fn = DiceCELoss(sigmoid=True)
    image, label = sample.image[None].to(device), sample.label[None].to(device)
    class_index = torch.tensor([[nf_class]], dtype=torch.long, device=device)
    auto = model(image, class_vector=class_index)
    coords, labels = sample_points(sample.label[0].numpy() > 0.5, training.max_points, rng)
    point = model(image, point_coords=torch.as_tensor(coords[None], dtype=torch.float32, device=device),
                  point_labels=torch.as_tensor(labels[None], device=device), prompt_class=class_index)
    return loss_fn(auto, label) + loss_fn(point, label)


def train_vista3d(raw_root: str | os.PathLike[str], config: VISTA3DConfig, *, out_dir: str | os.PathLike[str],
                  fold: int = 1, splits_dir: str | os.PathLike[str] | None = None, device: str = "cpu",
                  config_name: str = "vista3d") -> Path:
    """Train one fold (resuming from ``checkpoints/last.pt``); returns the exported ``model.pt``."""
    training = config.training
    nf_class = config.inference.nf_class
    torch.manual_seed(training.seed)
    torch_device = torch.device(device)
    model = build_network(config.network)
    init_weights = training.init_weights
    if init_weights:
        init_weights = str(load_bundle_weights(model, init_weights))
    model = model.to(torch_device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    scheduler = WarmupCosineSchedule(optimizer, warmup_steps=training.warmup_epochs, t_total=training.epochs)

    def train_step(sample: Sample, rng: np.random.Generator) -> float:
        loss = branch_losses(model, sample, rng, training, nf_class, torch_device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach().item()

    def val_loss(sample: Sample, rng: np.random.Generator) -> float:
        return branch_losses(model, sample, rng, training, nf_class, torch_device).item()

    fold_dir = train_loop(raw_root=raw_root, config=config, fold=fold, splits_dir=splits_dir, out_dir=out_dir,
                          model=model, optimizer=optimizer, scheduler=scheduler, train_step=train_step,
                          val_loss=val_loss, desc=f"VISTA3D fold {fold}")
    return write_fold_outputs(fold_dir, model, {"model": "vista3d", "config_name": config_name,
                                                "config": asdict(config), "fold": fold,
                                                "spacing": config.grid.spacing, "nf_class": nf_class,
                                                "init_weights": init_weights, "seed": training.seed},
                              file_name=WEIGHTS_FILE)
