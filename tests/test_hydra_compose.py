"""Our Hydra configs compose after sam2 initialised Hydra's global state, and sam2's state survives."""

from __future__ import annotations

import sam2  # noqa: F401  (initialises Hydra's global state for sam2's config module)
from hydra.core.global_hydra import GlobalHydra

from mois_sam2_nf.evaluation.runner import compose_config
from mois_sam2_nf.training.config import load_training_config


def test_compose_keeps_sam2_global_hydra_state() -> None:
    before = GlobalHydra.instance().hydra
    assert GlobalHydra.instance().is_initialized()
    resolved, _ = compose_config(["model=oracle", "seed=3"])
    assert resolved["seed"] == 3 and resolved["model"]["name"] == "oracle"
    cfg = load_training_config("train_mois_sam2_demo", ["trainer.epochs=2"])
    assert cfg.trainer.epochs == 2
    assert GlobalHydra.instance().hydra is before
