"""Configs of the click-guided CNN baselines: YAML files in a model's ``configs/`` folder (or any YAML path) plus
``key=value`` overrides (OmegaConf dot-list)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mois_sam2_nf.errors import InputError


def load_config(config_dir: Path, name: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Resolve ``name`` (a config of ``config_dir`` or a YAML path) and apply dot-list overrides.

    Returns a plain dict with the sections ``network``, ``grid``, ``inference`` and ``training``.
    """
    path = Path(name) if name.endswith((".yaml", ".yml")) else config_dir / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in config_dir.glob("*.yaml")))
        raise InputError(f"{path}: config not found (known: {known})")
    config = OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(list(overrides)))
    resolved = OmegaConf.to_container(config, resolve=True)
    missing = {"network", "grid", "inference", "training"} - set(resolved)
    if missing:
        raise InputError(f"{path}: missing section(s) {sorted(missing)}")
    return resolved  # type: ignore[return-value]
