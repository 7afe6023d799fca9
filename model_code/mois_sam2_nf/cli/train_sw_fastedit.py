"""``mois-sam2-nf train-sw-fastedit --raw DIR [-c CONFIG] [key=value ...]``: the SW-FastEdit baseline."""

from __future__ import annotations

import argparse

HELP = ("Train the SW-FastEdit baseline (DynUNet + click guidance, DeepEdit-style simulated corrections) on folds of "
        "a raw layout; writes <out>/fold_<k>/ with checkpoint.pt, meta.json, logs and a resume point.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Data, config and overrides, output folder, folds, device."""
    parser.add_argument("--raw", required=True, help="raw data folder (imagesTr/, labelsTr_instance/, ...)")
    parser.add_argument("--splits", default=None, help="project folds folder (default: 5 patient-level folds)")
    parser.add_argument("-c", "--config", default="sw_fastedit",
                        help="sw_fastedit, sw_fastedit_smoke or a YAML path (default %(default)s)")
    parser.add_argument("--out", default="model_weights_finetuned/SW_FastEdit", help="default %(default)s")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3], help="project folds (default 1 2 3)")
    parser.add_argument("--device", default="cpu", help="torch device (default %(default)s)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. training.epochs=50")


def run(args: argparse.Namespace) -> int:
    """Train each fold and print its checkpoint."""
    from mois_sam2_nf.models.sw_fastedit.config import load_config
    from mois_sam2_nf.models.sw_fastedit.train import train_sw_fastedit

    config = load_config(args.config, args.overrides)
    for fold in args.folds:
        checkpoint = train_sw_fastedit(args.raw, config, out_dir=args.out, fold=fold, splits_dir=args.splits,
                                       device=args.device, config_name=args.config)
        print(f"SW-FastEdit fold {fold}: {checkpoint}")
    return 0
