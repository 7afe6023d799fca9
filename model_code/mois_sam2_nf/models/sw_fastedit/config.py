"""SW-FastEdit configs: ``configs/sw_fastedit.yaml`` (reference scale), ``configs/sw_fastedit_smoke.yaml`` (CPU), typed
by :class:`SWFastEditConfig` (loading and validation: :mod:`mois_sam2_nf.models.guided_cnn.config`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mois_sam2_nf.models.guided_cnn import config
from mois_sam2_nf.models.guided_cnn.config import GuidedCNNConfig, TrainingConfig
from mois_sam2_nf.models.sw_fastedit.network import KERNELS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(kw_only=True)
class SWFastEditNetworkConfig:
    """Width of the ``DynUNet`` (:func:`~mois_sam2_nf.models.sw_fastedit.network.build_network`).

    Attributes:
        filters: output channels of its six levels, top to bottom (reference 32, 64, 128, 256, 320, 320).
    """

    filters: list[int] = field(metadata={"length": len(KERNELS)})


@dataclass(kw_only=True)
class SWFastEditTrainingConfig(TrainingConfig):
    """The shared crops and schedule plus SW-FastEdit's interactions and cosine schedule.

    Attributes:
        max_interactions: simulated corrective clicks before the gradient step, drawn uniformly from 0..this.
        eta_min: final learning rate of ``CosineAnnealingLR(T_max=epochs)``.
    """

    max_interactions: int
    eta_min: float


@dataclass(kw_only=True)
class SWFastEditConfig(GuidedCNNConfig):
    """An SW-FastEdit config: ``network``, ``grid``, ``inference``, ``training`` (all mandatory).

    Attributes:
        network: :class:`SWFastEditNetworkConfig`.
        training: :class:`SWFastEditTrainingConfig`.
    """

    network: SWFastEditNetworkConfig
    training: SWFastEditTrainingConfig


def load_config(name: str, overrides: Sequence[str] = ()) -> SWFastEditConfig:
    """``sw_fastedit``, ``sw_fastedit_smoke`` or a YAML path, with Hydra ``key=value`` overrides."""
    return config.load_config(CONFIG_DIR, name, overrides, SWFastEditConfig)
