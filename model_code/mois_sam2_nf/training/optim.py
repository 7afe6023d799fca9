"""AdamW with layer-wise learning-rate decay on the Hiera trunk and a per-step cosine schedule.

Parameter groups (names are ``model.named_parameters()`` names):

- learning rate: parameters under ``encoder_prefix`` (the image encoder) follow the encoder schedule, all others
  the base schedule. Inside ``trunk_prefix`` the rate is further scaled by ``decay ** (L + 1 - layer_id)`` with
  ``L`` = number of trunk blocks and ``layer_id`` = 0 for patch/position embeddings, ``i + 1`` for block ``i`` and
  ``L + 1`` otherwise (BEiT convention, as SAM2 training does). Names matching any ``scale_one_patterns``
  (fnmatch, default ``*pos_embed*``) keep scale 1.
- weight decay: 0 for biases and for every parameter of a normalisation module (``no_decay_modules``), else
  ``weight_decay``.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class OptimSettings:
    """Optimiser and schedule settings (docs/method.md, Training).

    ``lr`` / ``encoder_lr`` are ``(start, end)`` of the cosine.
    """

    lr: tuple[float, float] = (5e-6, 5e-7)
    encoder_lr: tuple[float, float] = (3e-6, 3e-7)
    layer_decay: float = 0.9
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    encoder_prefix: str = "image_encoder."
    trunk_prefix: str = "image_encoder.trunk."
    scale_one_patterns: tuple[str, ...] = ("*pos_embed*",)


def _no_decay_names(model: torch.nn.Module, no_decay_modules: Sequence[type]) -> set[str]:
    names: set[str] = set()
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if param_name.endswith("bias") or isinstance(module, tuple(no_decay_modules)):
                names.add(full)
    return names


def trunk_layer_id(name: str, trunk_prefix: str, num_blocks: int) -> int:
    """Layer index of a trunk parameter: 0 embeddings, ``i + 1`` for ``blocks.i``, ``num_blocks + 1`` otherwise."""
    local = name[len(trunk_prefix):]
    if local.startswith(("pos_embed", "patch_embed")):
        return 0
    if local.startswith("blocks."):
        return int(local.split(".")[1]) + 1
    return num_blocks + 1


def lr_scale(name: str, settings: OptimSettings, num_blocks: int) -> float:
    """Layer-decay multiplier of one parameter (1 outside the trunk)."""
    if not name.startswith(settings.trunk_prefix):
        return 1.0
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in settings.scale_one_patterns):
        return 1.0
    return settings.layer_decay ** (num_blocks + 1 - trunk_layer_id(name, settings.trunk_prefix, num_blocks))


def parameter_groups(
    model: torch.nn.Module, settings: OptimSettings, num_blocks: int, no_decay_modules: Sequence[type]
) -> list[dict]:
    """AdamW parameter groups, one per (schedule, lr scale, weight decay) combination.

    Each group carries ``params``, ``lr_start``, ``lr_end`` (already scaled), ``lr_scale``, ``weight_decay`` and
    ``names`` (sorted, for inspection). Frozen parameters (``requires_grad=False``) are left out.
    """
    no_decay = _no_decay_names(model, no_decay_modules)
    groups: dict[tuple[bool, float, float], dict] = {}
    for name, param in sorted(model.named_parameters()):
        if not param.requires_grad:
            continue
        is_encoder = name.startswith(settings.encoder_prefix)
        scale = lr_scale(name, settings, num_blocks)
        decay = 0.0 if name in no_decay else settings.weight_decay
        start, end = settings.encoder_lr if is_encoder else settings.lr
        group = groups.setdefault(
            (is_encoder, scale, decay),
            {"params": [], "names": [], "lr_start": start * scale, "lr_end": end * scale, "lr_scale": scale,
             "weight_decay": decay, "lr": start * scale},
        )
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def build_optimizer(
    model: torch.nn.Module, settings: OptimSettings, num_blocks: int, no_decay_modules: Sequence[type]
) -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups`; learning rates start at each group's ``lr_start``."""
    return torch.optim.AdamW(
        parameter_groups(model, settings, num_blocks, no_decay_modules), betas=settings.betas
    )


def cosine_value(start: float, end: float, progress: float) -> float:
    """Half-cosine from ``start`` (progress 0) to ``end`` (progress 1); progress is clamped to [0, 1]."""
    progress = min(max(progress, 0.0), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def apply_schedule(optimizer: torch.optim.Optimizer, progress: float) -> None:
    """Set every group's ``lr`` to its cosine value at ``progress`` = finished steps / total steps."""
    for group in optimizer.param_groups:
        group["lr"] = cosine_value(group["lr_start"], group["lr_end"], progress)
