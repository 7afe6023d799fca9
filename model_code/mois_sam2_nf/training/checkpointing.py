"""Training checkpoints: ``{"model": state_dict, "optimizer", "epoch", "step", "config", "metrics"}``.

The ``model`` entry is the plain SAM2 / MOIS-SAM2 state dict (no DDP or wrapper prefixes), so a training checkpoint
loads directly with the model builders (``build_mois_sam2(config, checkpoint)``) and with sam2's own loader. Every
entry is weights-only loadable (tensors, numbers, strings, lists, dicts). ``epoch`` is the number of finished epochs.
Files are written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mois_sam2_nf.atomic import atomic_path
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.mois_sam2.checkpoint import read_payload, read_state_dict

LAST = "checkpoint.pt"


@dataclass(frozen=True)
class TrainingState:
    """What a resumed run continues from."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    epoch: int
    step: int
    metrics: dict[str, float]


def save_training_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    epoch: int,
    step: int,
    config: dict[str, Any],
    metrics: dict[str, float],
) -> Path:
    """Atomically write a training checkpoint (model tensors moved to CPU); returns ``path``."""
    payload = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "epoch": int(epoch),
        "step": int(step),
        "config": config,
        "metrics": {k: float(v) for k, v in metrics.items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_training_checkpoint(path: str | os.PathLike[str]) -> TrainingState:
    """Read a checkpoint written by :func:`save_training_checkpoint` (weights-only unpickling, onto the CPU)."""
    path = Path(path)
    payload = read_payload(path)
    missing = [k for k in ("model", "optimizer", "epoch", "step") if k not in payload]
    if missing:
        raise InputError(f"{path}: not a training checkpoint (missing {', '.join(missing)}); cannot resume from it")
    return TrainingState(
        model=payload["model"],
        optimizer=payload["optimizer"],
        epoch=int(payload["epoch"]),
        step=int(payload["step"]),
        metrics=dict(payload.get("metrics", {})),
    )


def export_model_weights(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Strip a training checkpoint to ``{"model": state_dict}`` (what the predictors and the evaluation load)."""
    state = read_state_dict(src)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        torch.save({"model": state}, tmp)
    return dst
