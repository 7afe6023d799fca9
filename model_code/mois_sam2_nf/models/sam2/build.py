"""Builder of plain SAM2 models (and predictor subclasses via ``target``) on an explicit device.

Configs live in this package's ``configs/`` (``sam2.1_hiera_{t,s,b+}`` as in sam2, ``sam2_demo`` for CPU); any YAML
path works too. Checkpoints may be official SAM2.1 files or MOIS-SAM2 files (MOIS-only keys are dropped).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from mois_sam2_nf.models.mois_sam2.build import build_model
from mois_sam2_nf.models.sam2.volume_predictor import install_memory_dtype_hook

#: folder of the plain SAM2 configs
SAM2_CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def build_sam2_model(
    config: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    *,
    mode: str = "eval",
    overrides: Sequence[str] = (),
    target: str | None = None,
    apply_postprocessing: bool = True,
) -> nn.Module:
    """Build a SAM2 model from a config name (``sam2.1_hiera_b+``) or YAML path, optionally loading ``checkpoint``.

    The memory-attention dtype hook (memory cast to the query dtype) is installed, so CPU fp32 runs without autocast.
    Other arguments: see :func:`mois_sam2_nf.models.mois_sam2.build.build_model`.
    """
    model = build_model(config, SAM2_CONFIG_DIR, checkpoint, device, mode=mode, overrides=overrides, target=target,
                        apply_postprocessing=apply_postprocessing)
    install_memory_dtype_hook(model.memory_attention)
    return model
