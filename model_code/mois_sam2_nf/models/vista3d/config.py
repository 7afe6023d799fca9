"""VISTA3D configs: ``configs/vista3d.yaml`` (full scale, ``vista3d132``), ``configs/vista3d_smoke.yaml`` (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mois_sam2_nf.models.guided_cnn import config

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def load_config(name: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """``vista3d``, ``vista3d_smoke`` or a YAML path, with ``key=value`` overrides."""
    return config.load_config(CONFIG_DIR, name, overrides)
