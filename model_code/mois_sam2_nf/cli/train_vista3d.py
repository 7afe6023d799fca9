"""``mois-sam2-nf train-vista3d --raw DIR [-c CONFIG] [key=value ...]``: the VISTA3D baseline."""

from __future__ import annotations

import argparse

from mois_sam2_nf.cli import baseline_training

HELP = ("Fine-tune VISTA3D (MONAI vista3d132; point and automatic branches, NF as class 133) on folds of a raw layout, "
        "from random weights or MONAI-bundle weights (training.init_weights=<bundle>); writes <out>/fold_<k>/ with "
        "model.pt, meta.json, logs and a resume point.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Data, config and overrides, output folder, folds, device."""
    baseline_training.add_arguments(parser, "vista3d, vista3d_smoke", "vista3d", "model_weights_finetuned/VISTA3D")


def run(args: argparse.Namespace) -> int:
    """Train each fold and print its weights file."""
    from mois_sam2_nf.models.vista3d.config import load_config
    from mois_sam2_nf.models.vista3d.train import train_vista3d

    return baseline_training.run_folds(args, load_config, train_vista3d, "VISTA3D")
