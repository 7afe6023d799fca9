"""Speed settings of the interactive paths (``segment``, the MONAI Label app): ``interactive.yaml`` in this package.

The YAML names every setting that can change a mask (early stop, correction reuse, cache dtype, precision, track
continuity) and the thread count; ``evaluate`` never reads it, so the evaluation stays exact. Two profiles:

- ``"interactive"``: the file's ``options`` for the models it lists (``sam2``, ``mois_sam2``);
- ``"exact"``: no options at all (every adapter default is the exact path).

Measured effects: ``docs/performance.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.hydra_compose import config_dict

#: the interactive defaults
INTERACTIVE_CONFIG = Path(__file__).resolve().parent / "interactive.yaml"
Speed = Literal["interactive", "exact"]
SPEEDS: tuple[str, ...] = ("interactive", "exact")


@dataclass(frozen=True)
class InteractiveSettings:
    """What a speed profile gives one model.

    Attributes:
        options: keyword arguments for the model's adapter (``create_segmenter(model, **options)``); empty for the
            exact profile and for models the YAML does not list.
        threads: torch CPU threads (``None`` = leave torch's setting alone).
    """

    options: dict[str, Any]
    threads: int | None


def interactive_settings(model: str, speed: str = "interactive", overrides: Sequence[str] = (),
                         config: str | os.PathLike[str] = INTERACTIVE_CONFIG) -> InteractiveSettings:
    """Settings of ``model`` under ``speed`` from ``config``, with OmegaConf dot-list ``overrides``.

    Args:
        model: registered segmenter name.
        speed: ``"interactive"`` or ``"exact"``.
        overrides: e.g. ``["options.early_stop_k=3", "threads=1"]`` (applied before the profile is chosen).
        config: the YAML (default: the package's ``interactive.yaml``).

    Raises :class:`InputError` for an unknown speed or a malformed override.
    """
    if speed not in SPEEDS:
        raise InputError(f"speed {speed!r} is not supported (choose one of {', '.join(SPEEDS)})")
    try:
        merged = OmegaConf.merge(OmegaConf.load(Path(config)), OmegaConf.from_dotlist(list(overrides)))
        values = config_dict(merged, resolve=True)
    except (OmegaConfBaseException, ValueError) as err:
        raise InputError(f"{config}: {str(err).splitlines()[0]}") from None
    if speed == "exact":
        return InteractiveSettings(options={}, threads=None)
    options = dict(values.get("options") or {}) if model in values.get("models", []) else {}
    threads = values.get("threads")
    return InteractiveSettings(options=options, threads=int(threads) if threads else os.cpu_count())


def apply_threads(threads: int | None) -> None:
    """Set torch's intra-op CPU threads (``None`` leaves them as they are)."""
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))


#: the MONAI Label app's ``--conf`` keys that override ``interactive.yaml`` (``none`` = null)
CONF_KEYS: dict[str, str] = {
    "early_stop_k": "options.early_stop_k",
    "correction_reuse_k": "options.correction_reuse_k",
    "cache_dtype": "options.cache_dtype",
    "track_continuity": "options.track_continuity",
    "keep_clicked_components": "options.keep_clicked_components",
    "threads": "threads",
}


def conf_overrides(conf: Mapping[str, str]) -> tuple[str, ...]:
    """Dot-list overrides of ``interactive.yaml`` from the app's ``--conf`` pairs (keys of :data:`CONF_KEYS`)."""
    return tuple(f"{path}={'null' if str(conf[key]).lower() == 'none' else conf[key]}"
                 for key, path in CONF_KEYS.items() if key in conf)
