"""``mois-sam2-nf train-dins --raw DIR [-c CONFIG] [key=value ...]``: the DINs baseline."""

from __future__ import annotations

import argparse

from mois_sam2_nf.cli import baseline_training

HELP = ("Train the DINs baseline (3-D U-Net with guide branch, ExpDT clicks) on folds of a raw layout and export it to "
        "ONNX; writes <out>/fold_<k>/ with checkpoint.onnx, checkpoint.pt, meta.json, logs and a resume point.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Data, config and overrides, output folder, folds, device."""
    baseline_training.add_arguments(parser, "dins, dins_smoke", "dins", "model_weights_finetuned/DINs")


def run(args: argparse.Namespace) -> int:
    """Train each fold and print its ONNX model."""
    from mois_sam2_nf.models.dins.config import load_config
    from mois_sam2_nf.models.dins.train import train_dins

    return baseline_training.run_folds(args, load_config, train_dins, "DINs")
