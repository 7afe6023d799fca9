"""Turn a training config into objects: the model, its clip forward, the optimiser, loss and data settings."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from omegaconf import DictConfig
from sam2.modeling.sam2_base import SAM2Base
from sam2.modeling.sam2_utils import LayerNorm2d

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.hydra_compose import config_dict
from mois_sam2_nf.training.augment import AugmentSettings
from mois_sam2_nf.training.dataset import ClipSettings
from mois_sam2_nf.training.forward import ClipForward, MOISClipForward
from mois_sam2_nf.training.losses import MaskLossWeights
from mois_sam2_nf.training.objective import ObjectiveSettings
from mois_sam2_nf.training.optim import OptimSettings
from mois_sam2_nf.training.prompts import PromptSettings

FAMILIES = ("mois_sam2", "sam2")
#: modules whose parameters get no weight decay
NO_DECAY_MODULES: tuple[type, ...] = (torch.nn.LayerNorm, LayerNorm2d)


def model_overrides(params: Mapping[str, Any], prefix: str = "model") -> list[str]:
    """Flatten ``cfg.model.params`` (nested keys of the model config's ``model`` node) to ``++model.a.b=value``
    override strings (values JSON-encoded, so lists and booleans keep their type)."""
    out: list[str] = []
    for key, value in params.items():
        path = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            out += model_overrides(value, path)
        else:
            out.append(f"++{path}={json.dumps(value)}")
    return out


def build_model(cfg: DictConfig, device: torch.device, load_init_weights: bool) -> SAM2Base:
    """The SAM2 / MOIS-SAM2 model of ``cfg.model`` in training mode on ``device``.

    ``cfg.model.checkpoint`` (official SAM2.1 or a MOIS-SAM2 file) is loaded only when ``load_init_weights``
    (a resumed run overwrites the weights anyway); ``cfg.model.params`` overrides entries of the model config.
    sam2's interactive post-processing is not applied in training.
    """
    family = cfg.model.family
    checkpoint = cfg.model.checkpoint if load_init_weights else None
    overrides = model_overrides(config_dict(cfg.model.params))
    if family == "mois_sam2":
        from mois_sam2_nf.models.mois_sam2.build import build_mois_sam2

        return build_mois_sam2(cfg.model.config, checkpoint, device, mode="train", overrides=overrides,
                               apply_postprocessing=False)
    if family == "sam2":
        from mois_sam2_nf.models.sam2.build import build_sam2_model

        return build_sam2_model(cfg.model.config, checkpoint, device, mode="train", overrides=overrides,
                                apply_postprocessing=False)
    raise InputError(f"model.family={family!r}: expected one of {', '.join(FAMILIES)}")


def prompt_settings(cfg: DictConfig) -> PromptSettings:
    """``cfg.prompts`` as :class:`PromptSettings`."""
    return PromptSettings(**config_dict(cfg.prompts))


def build_forward(cfg: DictConfig, model: SAM2Base) -> ClipForward:
    """The clip forward matching the model family (MOIS-SAM2 adds the exemplar bank and semantic pass)."""
    if cfg.model.family == "mois_sam2":
        return MOISClipForward(model, prompt_settings(cfg), max_store=int(cfg.exemplars.max_store),
                               semantic_gate=bool(cfg.exemplars.object_score_gate))
    return ClipForward(model, prompt_settings(cfg))


def objective_settings(cfg: DictConfig) -> ObjectiveSettings:
    """``cfg.loss`` as :class:`ObjectiveSettings`."""
    return ObjectiveSettings(
        instance=MaskLossWeights(**config_dict(cfg.loss.instance)),
        semantic=MaskLossWeights(**config_dict(cfg.loss.semantic)),
        semantic_weight=float(cfg.loss.semantic_weight),
        loss_all_steps=bool(cfg.loss.loss_all_steps),
    )


def optim_settings(cfg: DictConfig) -> OptimSettings:
    """``cfg.optim`` (without ``grad_clip``) as :class:`OptimSettings`."""
    return OptimSettings(
        lr=tuple(cfg.optim.lr),
        encoder_lr=tuple(cfg.optim.encoder_lr),
        layer_decay=float(cfg.optim.layer_decay),
        weight_decay=float(cfg.optim.weight_decay),
    )


def clip_settings(cfg: DictConfig) -> ClipSettings:
    """Clip sampling settings of ``cfg.data``."""
    return ClipSettings(
        num_frames=int(cfg.data.num_frames), max_objects=int(cfg.data.max_objects), multiplier=int(cfg.data.multiplier)
    )


def augment_settings(cfg: DictConfig) -> AugmentSettings:
    """``cfg.augment`` as :class:`AugmentSettings`."""
    return AugmentSettings(**config_dict(cfg.augment))


def trunk_blocks(model: SAM2Base) -> int:
    """Number of Hiera blocks (the depth of the layer-wise decay)."""
    return len(model.image_encoder.trunk.blocks)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """bf16 for ``amp=bf16`` (or ``auto`` on CUDA); ``None`` = fp32."""
    if amp not in ("auto", "bf16", "none"):
        raise InputError(f"trainer.amp={amp!r}: expected auto, bf16 or none")
    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` on ``device`` when ``dtype`` is set, else nothing."""
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
