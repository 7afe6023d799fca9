"""Typed configs of the click-guided CNN baselines.

A config is a YAML file of a model's ``configs/`` folder (or any YAML path) composed by Hydra through
:func:`mois_sam2_nf.hydra_compose.compose_isolated` (the helper of the evaluation and SAM training configs) with Hydra
overrides (``training.epochs=5``, ``grid.spacing=null``, ``training.crop=[64,64,32]``), then validated against the
model's dataclass schema with ``OmegaConf.structured``. An unknown key, a missing key, a value of the wrong type or a
vector of the wrong length is refused with one :class:`~mois_sam2_nf.errors.InputError` line
``<config>: <key>: <problem>``.

The sections shared by every baseline are defined here (:class:`GridConfig`, :class:`InferenceConfig`,
:class:`TrainingConfig`, composed in :class:`GuidedCNNConfig`); a model subclasses them with its own fields
(``models/dins/config.py``, ``models/sw_fastedit/config.py``, ``models/vista3d/config.py``). Axis order of every
vector is the working grid's ``(rows, cols, frames)`` = (S->I, R->L, P->A).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.hydra_compose import compose_isolated, config_dict

ConfigT = TypeVar("ConfigT")

#: field metadata of the vectors along the three working-grid axes
TRIPLE = {"length": 3}


@dataclass(kw_only=True)
class GridConfig:
    """The working grid: canonical view, optional resampling, z-score, zero padding at the far end of each axis.

    Attributes:
        spacing: working voxel size ``(row, col, frame)`` in mm; ``None`` keeps each scan's native grid.
        divisor: rows, cols, frames are padded to multiples of these (the network's total strides), in voxels.
    """

    spacing: list[float] | None = field(metadata=TRIPLE)
    divisor: list[int] = field(metadata=TRIPLE)


@dataclass(kw_only=True)
class InferenceConfig:
    """Sliding-window inference of the adapters (MONAI ``sliding_window_inference``, Gaussian weighting).

    Attributes:
        roi: window size ``(rows, cols, frames)`` in working voxels.
        overlap: overlap of neighbouring windows, a fraction of the window in [0, 1).
        sw_batch: windows per forward pass.
    """

    roi: list[int] = field(metadata=TRIPLE)
    overlap: float
    sw_batch: int


@dataclass(kw_only=True)
class TrainingConfig:
    """Crops and schedule shared by the crop-based trainers (:mod:`.crops`, :func:`.training.train_loop`).

    Crops:
        crop: crop size ``(rows, cols, frames)`` in working voxels; smaller scans are zero-padded to it first.
        pos_fraction: share of crops centred on a lesion voxel, in [0, 1] (the rest on a background voxel).
        flip_prob: probability of a flip along each of the three axes, in [0, 1].
        cache_rate: share of the fold's scans kept in memory once loaded and resampled (MONAI ``CacheDataset``);
            scans beyond it are reloaded for each crop. Default 1.0 (every scan is loaded once).

    Schedule:
        epochs: number of epochs; ``checkpoints/last.pt`` after each one is the resume point.
        iterations_per_epoch: optimiser steps (one crop each) per epoch.
        val_samples: validation crops per epoch (their mean loss is logged).
        lr: initial learning rate of the optimiser.
        seed: seeds the network initialisation, the crops and the click simulation.
    """

    crop: list[int] = field(metadata=TRIPLE)
    pos_fraction: float
    flip_prob: float
    cache_rate: float = 1.0
    epochs: int
    iterations_per_epoch: int
    val_samples: int
    lr: float
    seed: int


@dataclass(kw_only=True)
class GuidedCNNConfig:
    """The sections every click-guided CNN config has; a model's config adds ``network`` and its own fields.

    Attributes:
        grid: where scans are placed (:class:`GridConfig`), for training and inference alike.
        inference: sliding windows of the adapter (:class:`InferenceConfig`).
        training: crops and schedule (:class:`TrainingConfig` or a model's subclass).
    """

    grid: GridConfig
    inference: InferenceConfig
    training: TrainingConfig


def validated(schema: type[ConfigT], data: Mapping[str, Any], source: str) -> ConfigT:
    """``data`` as an instance of the dataclass ``schema``; :class:`InputError` ``"<source>: <key>: <problem>"``.

    Refused: keys the schema lacks, mandatory keys ``data`` lacks, values OmegaConf cannot convert to the field type,
    vectors whose length differs from the field's ``length`` metadata.
    """
    try:
        typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), data))
    except OmegaConfBaseException as err:
        raise InputError(f"{source}: {err.full_key or '<root>'}: {str(err).splitlines()[0]}") from None
    _check_lengths(typed, source, "")
    return typed  # type: ignore[return-value]


def _check_lengths(node: Any, source: str, prefix: str) -> None:
    for item in fields(node):
        value, key = getattr(node, item.name), f"{prefix}{item.name}"
        if is_dataclass(value):
            _check_lengths(value, source, f"{key}.")
        elif "length" in item.metadata and value is not None and len(value) != item.metadata["length"]:
            raise InputError(f"{source}: {key}: expected {item.metadata['length']} values, got {list(value)}")


def _compose(config_dir: Path, name: str, overrides: Sequence[str]) -> tuple[dict[str, Any], Path]:
    """Resolved plain dict of config ``name`` with Hydra ``overrides``, and the YAML file it came from."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else config_dir / f"{name}.yaml"
    if path.suffix == ".yml":
        raise InputError(f"{path}: Hydra composes .yaml files only (rename it to {path.stem}.yaml)")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in config_dir.glob("*.yaml")))
        raise InputError(f"{path}: config not found (known: {known})")
    try:
        composed = compose_isolated(path.resolve().parent, path.stem, list(overrides))
        resolved = config_dict(composed, resolve=True)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise InputError(f"{path}: {str(err).strip().splitlines()[0]}") from None
    return resolved, path


def load_config(config_dir: Path, name: str, overrides: Sequence[str], schema: type[ConfigT]) -> ConfigT:
    """Compose ``name`` (a config of ``config_dir`` or a YAML path) with Hydra ``overrides``, validated into an
    instance of ``schema`` (a :class:`GuidedCNNConfig` subclass).

    Raises:
        InputError: config not found, bad override, or a key or value the schema refuses.
    """
    resolved, path = _compose(config_dir, name, overrides)
    return validated(schema, resolved, str(path))
