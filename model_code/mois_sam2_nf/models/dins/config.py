"""DINs configs: ``configs/dins.yaml`` (reference scale), ``configs/dins_smoke.yaml`` (CPU), typed by
:class:`DINsConfig` (loading and validation: :mod:`mois_sam2_nf.models.guided_cnn.config`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mois_sam2_nf.models.guided_cnn import config
from mois_sam2_nf.models.guided_cnn.config import TRIPLE, GuidedCNNConfig, TrainingConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(kw_only=True)
class DINsNetworkConfig:
    """Width of :class:`~mois_sam2_nf.models.dins.network.DINsNet`.

    Attributes:
        base_channels: channels of the first level (reference 30); level ``l`` has ``min(base * 2^l, max)``.
        max_channels: channel cap (reference 320).
    """

    base_channels: int
    max_channels: int


@dataclass(kw_only=True)
class ExpDTGuidanceConfig:
    """Exponential-distance click guidance (:func:`~mois_sam2_nf.models.guided_cnn.guidance.expdt_guidance`).

    Attributes:
        sigma: Gaussian width per axis ``(rows, cols, frames)`` in working voxels.
        gamma: scale of the guidance maps (their peak value).
    """

    sigma: list[float] = field(metadata=TRIPLE)
    gamma: float


@dataclass(kw_only=True)
class DINsTrainingConfig(TrainingConfig):
    """The shared crops and schedule plus DINs' click simulation, loss and plateau schedule.

    Clicks (per crop, :func:`~mois_sam2_nf.models.dins.train.simulated_clicks`):
        max_positive_clicks: positives drawn uniformly from 1..this.
        max_negative_clicks: negatives drawn uniformly from 0..this.

    Loss:
        class_weights: cross-entropy weights ``(background, lesion)``.
        l2: factor of the TF-style ``sum(w^2)`` over the convolution kernels added to the loss.

    Schedule (``ReduceLROnPlateau`` on the validation loss):
        plateau_factor: learning-rate factor on a plateau.
        plateau_patience: epochs without improvement before a reduction.
        min_lr: lower bound of the learning rate.
    """

    max_positive_clicks: int
    max_negative_clicks: int
    class_weights: list[float] = field(metadata={"length": 2})
    l2: float
    plateau_factor: float
    plateau_patience: int
    min_lr: float


@dataclass(kw_only=True)
class DINsConfig(GuidedCNNConfig):
    """A DINs config: ``network``, ``grid``, ``guidance``, ``inference``, ``training`` (all mandatory).

    Attributes:
        network: :class:`DINsNetworkConfig`.
        guidance: :class:`ExpDTGuidanceConfig`.
        training: :class:`DINsTrainingConfig`.
    """

    network: DINsNetworkConfig
    guidance: ExpDTGuidanceConfig
    training: DINsTrainingConfig


def load_config(name: str, overrides: Sequence[str] = ()) -> DINsConfig:
    """``dins``, ``dins_smoke`` or a YAML path, with Hydra ``key=value`` overrides."""
    return config.load_config(CONFIG_DIR, name, overrides, DINsConfig)
