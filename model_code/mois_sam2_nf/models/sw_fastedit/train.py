"""SW-FastEdit training, DeepEdit style (docs/baselines.md, SW-FastEdit).

Each iteration takes a crop of a training scan of the fold
(:class:`~mois_sam2_nf.models.guided_cnn.crops.CropSampler`, ``pos_fraction`` of them centred on lesion voxels,
random flips) and starts the guidance from one positive click on a random lesion voxel of the crop (none if the crop has
no lesion). Then ``0..max_interactions`` simulated interactions run without gradients (predict, add the corrective click
of the largest error region), and one Adam step is taken on the final inputs with ``DiceCELoss(to_onehot_y, softmax,
squared_pred, include_background=False)``. The learning rate follows ``CosineAnnealingLR(T_max=epochs)``. Outputs and
resume: :func:`~mois_sam2_nf.models.guided_cnn.training.train_loop`.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss

from mois_sam2_nf.data.view import triple
from mois_sam2_nf.models.guided_cnn.corrections import corrective_click
from mois_sam2_nf.models.guided_cnn.guidance import ball_guidance
from mois_sam2_nf.models.guided_cnn.training import Sample, train_loop, write_fold_outputs
from mois_sam2_nf.models.sw_fastedit.config import SWFastEditConfig
from mois_sam2_nf.models.sw_fastedit.network import build_network


def _random_voxel(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int] | None:
    voxels = np.argwhere(mask)
    return None if len(voxels) == 0 else triple(int(v) for v in voxels[int(rng.integers(len(voxels)))])


def simulate_inputs(model: torch.nn.Module, sample: Sample, interactions: int, rng: np.random.Generator,
                    device: torch.device) -> torch.Tensor:
    """``(1, 3, r, c, f)`` network input after one initial click and ``interactions`` corrective clicks."""
    label = sample.label[0].numpy() > 0.5
    positives: list[tuple[int, int, int]] = []
    negatives: list[tuple[int, int, int]] = []
    first = _random_voxel(label, rng)
    if first is not None:
        positives.append(first)
    shape = tuple(sample.image.shape[1:])

    def inputs() -> torch.Tensor:
        return torch.cat([sample.image, ball_guidance(shape, positives, negatives)])[None].to(device)

    was_training = model.training
    model.eval()
    with torch.no_grad():
        for _ in range(interactions):
            prediction = model(inputs()).argmax(dim=1)[0].cpu().numpy() > 0
            click = corrective_click(prediction, label)
            if click is None:
                break
            (positives if click[1] else negatives).append(click[0])
    model.train(was_training)
    return inputs()


def train_sw_fastedit(raw_root: str | os.PathLike[str], config: SWFastEditConfig, *, out_dir: str | os.PathLike[str],
                      fold: int = 1, splits_dir: str | os.PathLike[str] | None = None, device: str = "cpu",
                      config_name: str = "sw_fastedit") -> Path:
    """Train one fold (resuming from ``checkpoints/last.pt``); returns the exported ``checkpoint.pt``."""
    training = config.training
    torch.manual_seed(training.seed)
    torch_device = torch.device(device)
    model = build_network(config.network.filters).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.epochs, eta_min=training.eta_min)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, squared_pred=True, include_background=False)

    def train_step(sample: Sample, rng: np.random.Generator) -> float:
        interactions = int(rng.integers(0, training.max_interactions + 1))
        inputs = simulate_inputs(model, sample, interactions, rng, torch_device)
        loss = loss_fn(model(inputs), sample.label[None].to(torch_device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach().item()

    def val_loss(sample: Sample, rng: np.random.Generator) -> float:
        inputs = simulate_inputs(model, sample, 0, rng, torch_device)
        return loss_fn(model(inputs), sample.label[None].to(torch_device)).item()

    fold_dir = train_loop(raw_root=raw_root, config=config, fold=fold, splits_dir=splits_dir, out_dir=out_dir,
                          model=model, optimizer=optimizer, scheduler=scheduler, train_step=train_step,
                          val_loss=val_loss, desc=f"SW-FastEdit fold {fold}")
    return write_fold_outputs(fold_dir, model, {"model": "sw_fastedit", "config_name": config_name,
                                                "config": asdict(config), "fold": fold,
                                                "spacing": config.grid.spacing, "seed": training.seed})
