"""Training configs: Hydra composition of ``training/configs/*.yaml`` plus command-line overrides.

A config is named by its file stem in :data:`CONFIG_DIR` (``train_mois_sam2``, ``finetune_sam2``, their ``_demo``
and ``_smoke`` variants) or given as a path to a YAML file (which may itself list ``defaults`` from
:data:`CONFIG_DIR`). Overrides use Hydra syntax (``optim.lr=[1e-4,1e-5]``, ``+new.key=1``, ``++key=value``).

Composition goes through :func:`mois_sam2_nf.hydra_compose.compose_isolated`, which leaves sam2's global Hydra state
as it found it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.hydra_compose import compose_isolated

#: the packaged training configs
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def available_configs() -> list[str]:
    """Stems of the packaged training configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith("_"))


def load_training_config(name: str | os.PathLike[str], overrides: Sequence[str] = ()) -> DictConfig:
    """Compose a training config and apply ``overrides``; interpolations are resolved.

    Raises:
        InputError: unknown config name, unreadable YAML or a bad override (one line).
    """
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise InputError(f"{path}: training config not found")
        search_dir, config_name = path.resolve().parent, path.stem
    else:
        search_dir, config_name = CONFIG_DIR, str(name)
        if config_name not in available_configs():
            raise InputError(f"{name}: unknown training config (available: {', '.join(available_configs())})")
    extra = [] if search_dir == CONFIG_DIR else [f"hydra.searchpath=[file://{CONFIG_DIR}]"]
    try:
        cfg = compose_isolated(search_dir, config_name, [*overrides, *extra])
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        raise InputError(f"{name}: {str(error).strip().splitlines()[0]}") from error
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    assert isinstance(resolved, DictConfig)
    return resolved
