"""Hydra composition that leaves sam2's global Hydra state untouched.

Importing ``sam2`` initialises Hydra's global state for sam2's own config module, after which
``hydra.initialize_config_dir`` refuses to run. :func:`compose_isolated` composes one of our configs inside a
temporarily cleared global state and restores the previous state afterwards, whatever was imported before.
:func:`config_dict` turns a composed mapping node into the plain ``dict`` it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, ListConfig, OmegaConf


def compose_isolated(config_dir: Path, config_name: str, overrides: Sequence[str] = (),
                     version_base: str | None = "1.3") -> DictConfig:
    """Compose ``config_dir/config_name.yaml`` with Hydra ``overrides`` (unresolved ``DictConfig``).

    Hydra and OmegaConf errors propagate unchanged; callers turn them into one-line input errors.
    """
    previous = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base=version_base):
            return compose(config_name=config_name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()
        GlobalHydra.instance().hydra = previous


def config_dict(node: DictConfig | ListConfig, resolve: bool = False) -> dict[Any, Any]:
    """``OmegaConf.to_container(node, resolve=resolve)`` of a mapping node: the plain ``dict`` (keys as in the
    config, ``str`` for YAML mappings) that OmegaConf's annotation leaves a union of containers; TypeError for a
    list node."""
    container = OmegaConf.to_container(node, resolve=resolve)
    if not isinstance(container, dict):
        raise TypeError(f"expected a mapping config node, got {type(container).__name__}")
    return container
