"""VISTA3D configs: ``configs/vista3d.yaml`` (full scale, ``vista3d132``), ``configs/vista3d_smoke.yaml`` (CPU), typed
by :class:`VISTA3DConfig` (loading and validation: :mod:`mois_sam2_nf.models.guided_cnn.config`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mois_sam2_nf.models.guided_cnn import config
from mois_sam2_nf.models.guided_cnn.config import GuidedCNNConfig, InferenceConfig, TrainingConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(kw_only=True)
class VISTA3DNetworkConfig:
    """Widths and depths of the VISTA3D network (:func:`~mois_sam2_nf.models.vista3d.network.build_network`).

    Attributes:
        init_filters: channels of the ``SegResNetDS2`` encoder's first level (``vista3d132``: 48).
        blocks_down: residual blocks per encoder level; ``n`` levels need windows divisible by ``2^(n-1)`` voxels.
        feature_size: channels of the encoder output, the point head and the class head (``vista3d132``: 48).
        n_classes: class embeddings of both heads (``vista3d132``: 512).
        last_supported: highest class index the point head was trained on; classes above it are zero-shot.
    """

    init_filters: int
    blocks_down: list[int]
    feature_size: int
    n_classes: int
    last_supported: int


@dataclass(kw_only=True)
class VISTA3DInferenceConfig(InferenceConfig):
    """The shared sliding windows (automatic branch; ``roi`` also sizes the point branch's windows) plus VISTA3D's
    prompts and point-branch windows (:mod:`~mois_sam2_nf.models.vista3d.inference`).

    Attributes:
        nf_class: NF's class index in both branches (133: zero-shot for the released weights).
        center_only: point branch: one window centred on each click (``False``: three windows per axis).
        margin: point branch, ``center_only`` false: distance of a click to the border of its extra windows, in
            working voxels.
        embedding_cache: point branch: windows whose image embedding is kept per scan (0 recomputes every time).
    """

    nf_class: int
    center_only: bool
    margin: int
    embedding_cache: int


@dataclass(kw_only=True)
class VISTA3DTrainingConfig(TrainingConfig):
    """The shared crops and schedule plus VISTA3D's point sampling, AdamW and warm-up (:mod:`.train`).

    Attributes:
        max_points: point branch: clicks per crop drawn uniformly from 1..this.
        weight_decay: AdamW weight decay.
        warmup_epochs: epochs of linear learning-rate warm-up before the cosine decay to 0.
        init_weights: MONAI VISTA3D bundle (the folder or its ``models/model.pt``) to start from; ``None`` starts from
            random weights.
    """

    max_points: int
    weight_decay: float
    warmup_epochs: int
    init_weights: str | None


@dataclass(kw_only=True)
class VISTA3DConfig(GuidedCNNConfig):
    """A VISTA3D config: ``network``, ``grid``, ``inference``, ``training`` (all mandatory).

    Attributes:
        network: :class:`VISTA3DNetworkConfig`.
        inference: :class:`VISTA3DInferenceConfig`.
        training: :class:`VISTA3DTrainingConfig`.
    """

    network: VISTA3DNetworkConfig
    inference: VISTA3DInferenceConfig
    training: VISTA3DTrainingConfig


def load_config(name: str, overrides: Sequence[str] = ()) -> VISTA3DConfig:
    """``vista3d``, ``vista3d_smoke`` or a YAML path, with Hydra ``key=value`` overrides."""
    return config.load_config(CONFIG_DIR, name, overrides, VISTA3DConfig)
