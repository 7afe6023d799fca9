"""The VISTA3D network (MONAI ``monai.networks.nets.vista3d``) built from a config, and MONAI-bundle weights.

The network is MONAI's :class:`~monai.networks.nets.vista3d.VISTA3D` with a ``SegResNetDS2`` encoder, a
``PointMappingSAM`` point head and a ``ClassMappingClassify`` class head, exactly as ``vista3d132`` wires them; the
config only sets the widths and depths, so ``configs/vista3d.yaml`` gives ``vista3d132`` itself (same parameter
names and shapes, 217,964,982 parameters) and ``configs/vista3d_smoke.yaml`` a narrow network of the same class.

Inputs are ``(1, 1, R, C, F)`` float32 windows (rows, cols, frames of the working grid), each spatial size a multiple
of 16; outputs are logits (see :mod:`mois_sam2_nf.models.vista3d.inference`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from monai.networks.nets import SegResNetDS2
from monai.networks.nets.vista3d import VISTA3D, ClassMappingClassify, PointMappingSAM

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.vista3d.config import VISTA3DNetworkConfig

#: where a MONAI bundle keeps its weights, relative to the bundle folder
BUNDLE_WEIGHTS = Path("models") / "model.pt"


def build_network(network: VISTA3DNetworkConfig) -> VISTA3D:
    """VISTA3D from a config's ``network`` section; single-channel input, instance norm, one output scale."""
    encoder = SegResNetDS2(in_channels=1, blocks_down=tuple(network.blocks_down), norm="instance",
                           out_channels=network.feature_size, init_filters=network.init_filters, dsdepth=1)
    point_head = PointMappingSAM(feature_size=network.feature_size, n_classes=network.n_classes,
                                 last_supported=network.last_supported)
    class_head = ClassMappingClassify(n_classes=network.n_classes, feature_size=network.feature_size, use_mlp=True)
    return VISTA3D(image_encoder=encoder, class_head=class_head, point_head=point_head)


def bundle_weights_file(path: str | os.PathLike[str]) -> Path:
    """The weights file of a MONAI VISTA3D bundle: ``path`` itself, or ``<path>/models/model.pt`` for a folder."""
    path = Path(path)
    weights = path / BUNDLE_WEIGHTS if path.is_dir() else path
    if not weights.is_file():
        raise InputError(f"{weights}: VISTA3D bundle weights not found")
    return weights


def load_bundle_weights(network: torch.nn.Module, path: str | os.PathLike[str]) -> Path:
    """Load MONAI-bundle VISTA3D weights into ``network`` strictly; returns the file read.

    A bundle's ``models/model.pt`` holds the network's state dict as saved by the bundle's checkpoint saver (a bare
    state dict; ``{"model": ...}`` / ``{"state_dict": ...}`` wrappers and a DDP ``module.`` prefix are accepted).
    Every parameter name and shape must match, so bundle weights need the full-scale network config.
    """
    weights = bundle_weights_file(path)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a file that is not a checkpoint
        raise InputError(f"{weights}: not a PyTorch checkpoint ({str(err).splitlines()[0]})") from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise InputError(f"{weights}: expected a state dict, found {type(state).__name__}")
    state = {name.removeprefix("module."): value for name, value in state.items()}
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(line.strip() for line in str(err).splitlines()[1:3])
        raise InputError(f"{weights}: not VISTA3D weights for this network config ({detail[:300]})") from None
    return weights
