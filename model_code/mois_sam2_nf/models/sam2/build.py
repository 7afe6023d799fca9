"""Build SAM2-family models from Hydra/OmegaConf YAML configs on an explicit device.

A config is a YAML file with a top-level ``model`` node whose ``_target_`` graph is instantiated with
``hydra.utils.instantiate`` (as sam2 does). Configs are read with ``OmegaConf.load`` -- sam2 initialises Hydra's global
config search path on import, so no global Hydra state is used or changed here.

Overrides are Hydra-style dot-list strings: ``key=value`` changes an existing key (an unknown key is an error),
``+key=value`` adds a new one, ``++key=value`` adds or changes.

The reference implementation's YAMLs name classes under ``sam2.*``; those ``_target_`` values are remapped to this
package (:data:`REFERENCE_TARGETS`), so such a YAML can be passed as a path.

:func:`build_sam2_model` builds plain SAM2 from this package's ``configs/`` (``sam2.1_hiera_{t,s,b+}`` as in sam2,
``sam2_demo`` for CPU); MOIS-SAM2's builder (:mod:`mois_sam2_nf.models.mois_sam2.build`) uses :func:`build_model`
with its own configs and weight loader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_video_predictor import SAM2VideoPredictor
from torch import nn

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.sam2.checkpoint import load_sam2_checkpoint
from mois_sam2_nf.models.sam2.volume_predictor import install_memory_dtype_hook

#: ``(model, checkpoint path)`` -> None: loads a weight file into a freshly built model
WeightLoader = Callable[[nn.Module, "str | os.PathLike[str]"], None]

#: class paths of the reference implementation -> this package
REFERENCE_TARGETS: dict[str, str] = {
    "sam2.modeling.mois_sam2_base.MOISSAM2Base": "mois_sam2_nf.models.mois_sam2.model.MOISSAM2Base",
    "sam2.modeling.exemplar_attention.ExemplarAttention":
        "mois_sam2_nf.models.mois_sam2.exemplar_attention.ExemplarAttention",
    "sam2.mois_sam2_predictor.MOISSAM2Predictor": "mois_sam2_nf.models.mois_sam2.predictor.MOISSAM2Predictor",
}
#: sam2's post-processing for interactive use (as in ``sam2.build_sam.build_sam2_video_predictor``)
POSTPROCESSING_OVERRIDES: tuple[str, ...] = (
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
)
#: hole filling (low-res pixels), applied only to predictor classes, which accept ``fill_hole_area``
FILL_HOLE_AREA = 8


def _one_line(message: str, limit: int = 400) -> str:
    """Collapse a (multi-line) error message into one line of at most ``limit`` characters."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve_config(config: str | os.PathLike[str], config_dir: Path) -> Path:
    """Path of ``config``: an existing YAML file, or the name of one in ``config_dir`` (``.yaml`` optional)."""
    candidate = Path(config)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    named = config_dir / (candidate.name if candidate.suffix in (".yaml", ".yml") else f"{candidate.name}.yaml")
    if str(config) == candidate.name and named.is_file():
        return named
    available = ", ".join(sorted(p.stem for p in config_dir.glob("*.yaml")))
    raise InputError(f"{config}: unknown config (not a YAML file; names available: {available})")


def _apply_override(cfg: DictConfig, override: str, source: Path) -> None:
    """Apply one Hydra-style override (``key=value``, ``+key=value``, ``++key=value``) in place."""
    if "=" not in override:
        raise InputError(f"override {override!r} for {source}: expected key=value")
    key, value = override.split("=", 1)
    mode = "++" if key.startswith("++") else "+" if key.startswith("+") else ""
    key = key[len(mode):]
    exists = _has_key(cfg, key)
    if mode == "" and not exists:
        raise InputError(f"override {override!r} for {source}: key {key!r} is not in the config (use +{key}=...)")
    if mode == "+" and exists:
        raise InputError(f"override {override!r} for {source}: key {key!r} already exists (use ++{key}=...)")
    try:
        cfg.merge_with(OmegaConf.from_dotlist([f"{key}={value}"]))
    except OmegaConfBaseException as error:
        raise InputError(f"override {override!r} for {source}: {_one_line(str(error))}") from error


def _has_key(cfg: DictConfig, dotted: str) -> bool:
    """True if the dotted key exists in ``cfg`` (also when its value is ``null``)."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node._get_node(part)
    return True


def _remap_targets(node: Any, mapping: dict[str, str]) -> None:
    """Replace ``_target_`` values found in ``mapping`` throughout the config tree, in place."""
    if isinstance(node, DictConfig):
        target = node.get("_target_")
        if isinstance(target, str) and target in mapping:
            node["_target_"] = mapping[target]
        for key in node:
            _remap_targets(node._get_node(key), mapping)
    elif isinstance(node, ListConfig):
        for item in node:
            _remap_targets(item, mapping)


def _read_config(config: str | os.PathLike[str], config_dir: Path, target: str | None) -> tuple[DictConfig, Path]:
    """Read a config (name or path), remap reference ``_target_`` values and set ``target``; unresolved."""
    path = resolve_config(config, config_dir)
    try:
        cfg = OmegaConf.load(path)
    except (OmegaConfBaseException, OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read YAML: {_one_line(str(error))}") from error
    if not isinstance(cfg, DictConfig) or not isinstance(cfg.get("model"), DictConfig):
        raise InputError(f"{path}: config has no top-level 'model' section")
    _remap_targets(cfg, REFERENCE_TARGETS)
    if target is not None:
        cfg.model["_target_"] = target
    return cfg, path


def load_model_config(config: str | os.PathLike[str], config_dir: Path, overrides: Sequence[str] = (),
                      target: str | None = None) -> DictConfig:
    """Config as the builder sees it before post-processing: read, remapped, ``target`` set, overridden, resolved."""
    cfg, path = _read_config(config, config_dir, target)
    for override in overrides:
        _apply_override(cfg, override, path)
    OmegaConf.resolve(cfg)
    return cfg


def _accepts_fill_hole_area(target: str) -> bool:
    """True if the model class is a video predictor (those take ``fill_hole_area``)."""
    cls = get_class(target)
    return isinstance(cls, type) and issubclass(cls, SAM2VideoPredictor)


def build_model(
    config: str | os.PathLike[str],
    config_dir: Path,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    *,
    mode: str = "eval",
    overrides: Sequence[str] = (),
    target: str | None = None,
    apply_postprocessing: bool = True,
    load_weights: WeightLoader = load_sam2_checkpoint,
) -> SAM2Base:
    """Instantiate ``config``'s model, load ``checkpoint`` with ``load_weights``, move it to ``device``.

    Args:
        config: config name in ``config_dir`` or a YAML path.
        config_dir: folder searched for config names.
        checkpoint: ``{"model": state_dict}`` file or None (random initialisation).
        device: where the model goes (no CUDA default).
        mode: ``"eval"`` or ``"train"``.
        overrides: Hydra-style overrides applied after the post-processing ones.
        target: class path replacing ``model._target_`` (e.g. a predictor subclass).
        apply_postprocessing: add sam2's stability-based multimask fallback (delta 0.05, threshold 0.98) and binarised
            click masks for the memory encoder; predictor classes also get ``fill_hole_area=8``.
        load_weights: ``(model, path)`` loader of the checkpoint (plain SAM2 by default; MOIS-SAM2 passes its own).
    """
    if mode not in ("eval", "train"):
        raise InputError(f"mode {mode!r}: expected 'eval' or 'train'")
    cfg, path = _read_config(config, config_dir, target)
    model_target = str(cfg.model["_target_"])
    try:
        predictor = _accepts_fill_hole_area(model_target)
    except Exception as error:  # hydra raises plain exceptions for unknown class paths
        raise InputError(f"{path}: model _target_ {model_target!r} cannot be imported: {_one_line(str(error))}") \
            from error
    all_overrides = list(POSTPROCESSING_OVERRIDES) if apply_postprocessing else []
    if apply_postprocessing and predictor:
        all_overrides.append(f"++model.fill_hole_area={FILL_HOLE_AREA}")
    for override in [*all_overrides, *overrides]:
        _apply_override(cfg, override, path)
    OmegaConf.resolve(cfg)
    try:
        model = instantiate(cfg.model, _recursive_=True)
    except (InstantiationException, TypeError, ValueError) as error:
        raise InputError(f"{path}: cannot build the model: {_one_line(str(error))}") from error
    if checkpoint is not None:
        load_weights(model, checkpoint)
    model = model.to(device)
    model.train(mode == "train")
    return model


#: folder of the plain SAM2 configs
SAM2_CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def build_sam2_model(
    config: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    **options: Any,
) -> SAM2Base:
    """Build a SAM2 model from a config name (``sam2.1_hiera_b+``) or YAML path, optionally loading ``checkpoint``.

    The memory-attention dtype hook (memory cast to the query dtype) is installed, so CPU fp32 runs without autocast.
    ``options``: the keyword arguments of :func:`build_model` (``mode``, ``overrides``, ``target``,
    ``apply_postprocessing``).
    """
    model = build_model(config, SAM2_CONFIG_DIR, checkpoint, device, **options)
    install_memory_dtype_hook(model.memory_attention)
    return model
