"""DINs training (docs/baselines.md, DINs), exported to ONNX at the end.

Each iteration takes a crop of a training scan of the fold
(:class:`~mois_sam2_nf.models.guided_cnn.crops.CropSampler`: ``pos_fraction`` centred on lesion voxels, flips on all
axes) and simulates the user's clicks on it (:func:`simulated_clicks`): 1..10 positives drawn uniformly from the lesion
after a 3-iteration in-plane erosion, a 10-pixel disc around each removed from its slice before the next draw (the
centroid when erosion empties the lesion), and 0..10 negatives in a 40-voxel band outside the lesion beyond a 3-voxel
margin, random or farthest-point (50/50). The loss is the softmax cross-entropy with class weights (1, 3) plus ``l2 *
sum(w^2)`` over the convolution kernels; Adam with ``ReduceLROnPlateau`` on the validation loss. The fold folder gets
``checkpoint.pt``, ``checkpoint.onnx`` (checked against PyTorch on two shapes) and ``meta.json``; resume and logs as
:func:`~mois_sam2_nf.models.guided_cnn.training.train_loop`.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from mois_sam2_nf.data.masks import distance_transform
from mois_sam2_nf.data.view import triple
from mois_sam2_nf.models.dins.config import DINsConfig
from mois_sam2_nf.models.dins.network import DINsNet
from mois_sam2_nf.models.dins.onnx_io import check_export, export_onnx, onnx_session
from mois_sam2_nf.models.guided_cnn.guidance import expdt_guidance
from mois_sam2_nf.models.guided_cnn.training import Sample, train_loop, write_fold_outputs

Voxel = tuple[int, int, int]
#: in-plane erosion of the lesion before drawing positives, disc removed around each positive, background band
EROSION_ITERATIONS = 3
DISC_RADIUS = 10
BAND_MARGIN, BAND_WIDTH = 3, 40


def to_dins(x: torch.Tensor) -> torch.Tensor:
    """Working-grid ``(B, C, R, C, F)`` -> DINs layout ``(B, C, D=F, H=R, W=C)``."""
    return x.permute(0, 1, 4, 2, 3)


def from_dins(x: torch.Tensor) -> torch.Tensor:
    """DINs layout ``(B, C, D, H, W)`` -> working grid ``(B, C, R=H, C=W, F=D)``."""
    return x.permute(0, 1, 3, 4, 2)


def _positives(label: np.ndarray, count: int, rng: np.random.Generator) -> list[Voxel]:
    if not label.any():
        return []
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[:, :, 1] = ndimage.generate_binary_structure(2, 1)
    available = ndimage.binary_erosion(label, structure=in_plane, iterations=EROSION_ITERATIONS)
    if not available.any():
        return [triple(int(v) for v in np.rint(np.argwhere(label).mean(axis=0)))]
    rows, cols = np.ogrid[: label.shape[0], : label.shape[1]]
    clicks: list[Voxel] = []
    for _ in range(count):
        candidates = np.argwhere(available)
        if len(candidates) == 0:
            break
        r, c, f = (int(v) for v in candidates[int(rng.integers(len(candidates)))])
        clicks.append((r, c, f))
        available[:, :, f] &= (rows - r) ** 2 + (cols - c) ** 2 > DISC_RADIUS**2
    return clicks


def _negatives(label: np.ndarray, count: int, rng: np.random.Generator) -> list[Voxel]:
    if count == 0:
        return []
    if label.any():
        distance = distance_transform(~label)
        band = (distance > BAND_MARGIN) & (distance <= BAND_MARGIN + BAND_WIDTH)
    else:
        band = np.ones(label.shape, dtype=bool)
    candidates = np.argwhere(band)
    if len(candidates) == 0:
        return []
    count = min(count, len(candidates))
    chosen: np.ndarray | list[int]
    if rng.random() < 0.5:
        chosen = rng.choice(len(candidates), size=count, replace=False)
    else:  # farthest-point sampling from a random start
        chosen = [int(rng.integers(len(candidates)))]
        nearest = np.linalg.norm(candidates - candidates[chosen[0]], axis=1)
        while len(chosen) < count:
            chosen.append(int(np.argmax(nearest)))
            nearest = np.minimum(nearest, np.linalg.norm(candidates - candidates[chosen[-1]], axis=1))
    return [triple(int(v) for v in candidates[i]) for i in chosen]


def simulated_clicks(label: np.ndarray, rng: np.random.Generator, max_positive: int = 10,
                     max_negative: int = 10) -> tuple[list[Voxel], list[Voxel]]:
    """DINs training clicks on a bool ``(R, C, F)`` crop label: ``(positives, negatives)`` working-grid voxels."""
    positives = _positives(label, int(rng.integers(1, max_positive + 1)), rng)
    negatives = _negatives(label, int(rng.integers(0, max_negative + 1)), rng)
    return positives, negatives


def dins_inputs(sample: Sample, config: DINsConfig, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``image (1, 1, D, H, W)``, ``guide (1, 2, D, H, W)`` of a training crop with simulated clicks."""
    training, guidance = config.training, config.guidance
    positives, negatives = simulated_clicks(sample.label[0].numpy() > 0.5, rng, training.max_positive_clicks,
                                            training.max_negative_clicks)
    guide = expdt_guidance(tuple(sample.image.shape[1:]), positives, negatives, guidance.sigma, guidance.gamma)
    return to_dins(sample.image[None]), to_dins(guide[None])


def train_dins(raw_root: str | os.PathLike[str], config: DINsConfig, *, out_dir: str | os.PathLike[str],
               fold: int = 1, splits_dir: str | os.PathLike[str] | None = None, device: str = "cpu",
               config_name: str = "dins") -> Path:
    """Train one fold (resuming from ``checkpoints/last.pt``), export and check the ONNX model; returns its path."""
    training = config.training
    torch.manual_seed(training.seed)
    torch_device = torch.device(device)
    model = DINsNet(config.network.base_channels, config.network.max_channels).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.lr, betas=(0.9, 0.99), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=training.plateau_factor,
                                                           patience=training.plateau_patience, min_lr=training.min_lr)
    weights = torch.tensor(training.class_weights, dtype=torch.float32, device=torch_device)

    def loss_of(sample: Sample, rng: np.random.Generator) -> torch.Tensor:
        image, guide = dins_inputs(sample, config, rng)
        logits = model(image.to(torch_device), guide.to(torch_device))
        target = to_dins(sample.label[None])[:, 0].long().to(torch_device)
        return F.cross_entropy(logits, target, weight=weights)

    def train_step(sample: Sample, rng: np.random.Generator) -> float:
        loss = loss_of(sample, rng) + training.l2 * sum(w.pow(2).sum() for w in model.kernels())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach().item()

    fold_dir = train_loop(raw_root=raw_root, config=config, fold=fold, splits_dir=splits_dir, out_dir=out_dir,
                          model=model, optimizer=optimizer, scheduler=scheduler, train_step=train_step,
                          val_loss=lambda sample, rng: loss_of(sample, rng).item(), desc=f"DINs fold {fold}")
    crop_r, crop_c, crop_f = training.crop
    onnx_path = export_onnx(model, fold_dir / "checkpoint.onnx", (crop_f, crop_r, crop_c))
    worst = check_export(model, onnx_session(onnx_path), [(crop_f, crop_r, crop_c), (crop_f + 2, crop_r, crop_c + 16)])
    write_fold_outputs(fold_dir, model, {"model": "dins", "config_name": config_name, "config": asdict(config),
                                         "fold": fold, "spacing": config.grid.spacing, "seed": training.seed,
                                         "onnx_max_abs_diff": worst})
    return onnx_path
