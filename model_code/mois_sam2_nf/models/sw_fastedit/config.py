"""SW-FastEdit configs: YAML files in ``configs/`` (or any YAML path) plus ``key=value`` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mois_sam2_nf.errors import InputError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def load_config(name: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Resolve ``name`` (``sw_fastedit``, ``sw_fastedit_smoke`` or a YAML path) and apply dot-list overrides.

    Returns a plain dict with the sections ``network``, ``grid``, ``inference`` and ``training``.
    """
    path = Path(name) if name.endswith((".yaml", ".yml")) else CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise InputError(f"{path}: SW-FastEdit config not found (known: {known})")
    config = OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(list(overrides)))
    resolved = OmegaConf.to_container(config, resolve=True)
    missing = {"network", "grid", "inference", "training"} - set(resolved)
    if missing:
        raise InputError(f"{path}: missing section(s) {sorted(missing)}")
    return resolved  # type: ignore[return-value]
