"""``mois-sam2-nf train-sw-fastedit --raw DIR [-c CONFIG] [key=value ...]``: the SW-FastEdit baseline."""

from __future__ import annotations

import argparse

from mois_sam2_nf.cli import baseline_training

HELP = ("Train the SW-FastEdit baseline (DynUNet + click guidance, DeepEdit-style simulated corrections) on folds of "
        "a raw layout; writes <out>/fold_<k>/ with checkpoint.pt, meta.json, logs and a resume point.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Data, config and overrides, output folder, folds, device."""
    baseline_training.add_arguments(parser, "sw_fastedit, sw_fastedit_smoke", "sw_fastedit",
                                    "model_weights_finetuned/SW_FastEdit")


def run(args: argparse.Namespace) -> int:
    """Train each fold and print its checkpoint."""
    from mois_sam2_nf.models.sw_fastedit.config import load_config
    from mois_sam2_nf.models.sw_fastedit.train import train_sw_fastedit

    return baseline_training.run_folds(args, load_config, train_sw_fastedit, "SW-FastEdit")
