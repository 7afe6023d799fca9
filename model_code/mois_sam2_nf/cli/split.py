"""``mois-sam2-nf split --raw DIR --out DIR``: patient-level cross-validation folds."""

from __future__ import annotations

import argparse

from mois_sam2_nf.data.layout import PATIENT_REGEX_HELP
from mois_sam2_nf.data.splits import DEFAULT_FOLDS, DEFAULT_SEED, create_folds

HELP = "Write patient-level folds fold_<k>/{train_set,val_set}.txt over the imagesTr cases."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Raw and output folders, fold count, seed, patient regex."""
    parser.add_argument("--raw", required=True, help="raw data folder with imagesTr/ and patients.csv")
    parser.add_argument("--out", required=True, help="splits output folder, e.g. data/splits")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="number of folds (default 5)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="permutation seed (default 42)")
    parser.add_argument("--patient-regex", default=None, help=PATIENT_REGEX_HELP)


def run(args: argparse.Namespace) -> int:
    """Write the folds and print their sizes."""
    folds = create_folds(args.raw, args.out, n_folds=args.folds, seed=args.seed, patient_regex=args.patient_regex)
    for fold in folds:
        print(f"fold_{fold.index}: {len(fold.train)} train / {len(fold.val)} val scans")
    return 0
