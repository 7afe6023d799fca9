"""Training checkpoints: ``{"model": state_dict, "meta", "optimizer", "epoch", "step", "config", "metrics"}``.

The ``model`` entry is the plain SAM2 / MOIS-SAM2 state dict (no DDP or wrapper prefixes), so a training checkpoint
loads directly with the model builders (``build_mois_sam2(config, checkpoint)``) and with sam2's own loader. ``meta``
is the inference metadata (:mod:`mois_sam2_nf.models.checkpoint_meta`) of the run's model: its family, config and
image size, and ``imagenet_norm`` false (training frames are plain [0, 1] intensities). Every entry is weights-only
loadable (tensors, numbers, strings, lists, dicts). ``epoch`` is the number of finished epochs. Files are written
atomically; :func:`export_model_weights` keeps only ``model`` and ``meta``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mois_sam2_nf.atomic import atomic_path
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.checkpoint_meta import (
    CheckpointMeta,
    config_image_size,
    meta_of_payload,
    weights_payload,
)
from mois_sam2_nf.models.sam2.checkpoint import read_payload, state_dict_of_payload
from mois_sam2_nf.training.components import model_overrides

LAST = "checkpoint.pt"
#: frames of :class:`~mois_sam2_nf.training.dataset.ClipDataset` are intensities / 255 without ImageNet mean/std
TRAINING_IMAGENET_NORM = False


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
    """Atomically write a training checkpoint (model tensors moved to CPU, ``meta`` from ``config``); returns
    ``path``. ``config`` is the resolved training config (``model.family``, ``model.config``, ``model.params``)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        **weights_payload(state, training_meta(config, path)),
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


def training_meta(config: Mapping[str, Any], source: str | os.PathLike[str]) -> CheckpointMeta:
    """Inference metadata of weights trained with the resolved training ``config`` (``source`` names it in errors).

    The image size is the model config's after the run's ``model.params`` overrides.
    """
    model = config.get("model")
    if not isinstance(model, Mapping) or not {"family", "config"} <= set(model):
        raise InputError(f"{source}: training config has no model.family / model.config")
    family, name = str(model["family"]), str(model["config"])
    try:
        image_size = config_image_size(family, name, model_overrides(model.get("params") or {}))
    except InputError as error:
        raise InputError(f"{source}: {error}") from None
    return CheckpointMeta.from_dict(
        {"family": family, "config": name, "image_size": image_size, "imagenet_norm": TRAINING_IMAGENET_NORM}, source)


def recorded_meta(payload: Mapping[str, Any], source: str | os.PathLike[str]) -> CheckpointMeta | None:
    """The metadata a checkpoint records: its ``meta``, else (training checkpoints written before ``meta`` existed)
    the one of its training ``config``, else ``None`` (plain ``{"model": state_dict}`` files)."""
    meta = meta_of_payload(payload, source)
    if meta is None and isinstance(payload.get("config"), Mapping):
        return training_meta(payload["config"], source)
    return meta


def export_model_weights(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    family: str | None = None,
    config: str | None = None,
    image_size: int | None = None,
    imagenet_norm: bool | None = None,
) -> Path:
    """Write ``{"model": state_dict, "meta": ...}`` (what the predictors and the evaluation load) from ``src``.

    ``src`` is a training checkpoint or a weights file (``dst`` may be ``src``: it is read first, then replaced
    atomically). The metadata is the one ``src`` records (:func:`recorded_meta`); the keyword arguments (``None`` = not
    given) must agree with it. A ``src`` that records none needs ``family``, ``config`` and ``imagenet_norm``;
    ``image_size`` defaults to the config's.

    Raises:
        InputError: unreadable ``src``, a given value contradicting the recorded metadata, or missing metadata values.
    """
    src = Path(src)
    payload = read_payload(src)
    state = state_dict_of_payload(payload, src)
    given = {"family": family, "config": config, "image_size": image_size, "imagenet_norm": imagenet_norm}
    meta = recorded_meta(payload, src)
    if meta is not None:
        meta.check_agrees(src, **given)
    else:
        missing = [key for key in ("family", "config", "imagenet_norm") if given[key] is None]
        if missing:
            raise InputError(f"{src}: no inference metadata and no training config in the file; give "
                             f"{', '.join(missing)}")
        if image_size is None:
            given["image_size"] = config_image_size(str(family), str(config))
        meta = CheckpointMeta.from_dict(given, src)
    dst = Path(dst)
    with atomic_path(dst) as tmp:
        torch.save(weights_payload(state, meta), tmp)
    return dst
