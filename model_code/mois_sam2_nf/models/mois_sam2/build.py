"""Build MOIS-SAM2 models: this package's configs and weight loader on the shared SAM2-family builder.

Config machinery (names or YAML paths, Hydra-style overrides, reference ``_target_`` remapping, post-processing):
:mod:`mois_sam2_nf.models.sam2.build`. Weight loading rules: :mod:`mois_sam2_nf.models.mois_sam2.checkpoint`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from sam2.modeling.sam2_base import SAM2Base

from mois_sam2_nf.models.mois_sam2.checkpoint import load_checkpoint
from mois_sam2_nf.models.sam2.build import build_model

#: folder of the MOIS-SAM2 configs
MOIS_CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def build_mois_sam2(
    config: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    **options: Any,
) -> SAM2Base:
    """Build a MOIS-SAM2 model (``MOISSAM2Base`` or the ``target`` subclass) from a config name or YAML path.

    Config names: ``mois_sam2.1_hiera_t``, ``mois_sam2.1_hiera_s``, ``mois_sam2.1_hiera_b+`` (main) and
    ``mois_sam2_demo`` (narrow Hiera, width 128, 256 px for CPU). ``checkpoint`` may be a MOIS-SAM2 or an official
    SAM2.1 file.
    ``options``: the keyword arguments of :func:`~mois_sam2_nf.models.sam2.build.build_model` (``mode``,
    ``overrides``, ``target``, ``apply_postprocessing``).
    """
    return build_model(config, MOIS_CONFIG_DIR, checkpoint, device, load_weights=load_checkpoint, **options)
