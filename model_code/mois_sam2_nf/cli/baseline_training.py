"""Arguments and fold loop shared by ``train-sw-fastedit``, ``train-dins`` and ``train-vista3d`` (not a sub-command
itself)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser, configs: str, default_config: str, default_out: str) -> None:
    """Data, config and overrides, output folder, folds, device."""
    parser.add_argument("--raw", required=True, help="raw data folder (imagesTr/, labelsTr_instance/, ...)")
    parser.add_argument("--splits", default=None, help="project folds folder (default: 5 patient-level folds)")
    parser.add_argument("-c", "--config", default=default_config,
                        help=f"{configs} or a YAML path (default %(default)s)")
    parser.add_argument("--out", default=default_out, help="default %(default)s")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3], help="project folds (default 1 2 3)")
    parser.add_argument("--device", default="cpu", help="torch device for training (default %(default)s)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. training.epochs=50")


def run_folds(args: argparse.Namespace, load_config: Callable[[str, list[str]], Any], train: Callable[..., Path],
              label: str) -> int:
    """Train every requested fold and print what each wrote (``load_config(name, overrides)`` gives the config
    that ``train`` takes)."""
    config = load_config(args.config, args.overrides)
    for fold in args.folds:
        written = train(args.raw, config, out_dir=args.out, fold=fold, splits_dir=args.splits, device=args.device,
                        config_name=args.config)
        print(f"{label} fold {fold}: {written}")
    return 0
