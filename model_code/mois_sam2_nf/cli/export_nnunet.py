"""``mois-sam2-nf export-nnunet --raw DIR --out DIR --dataset-id N``: the nnU-Net v2 raw format."""

from __future__ import annotations

import argparse

from mois_sam2_nf.data.layout import PATIENT_REGEX_HELP
from mois_sam2_nf.data.nnunet_export import DATASET_NAME, DEFAULT_DATASET_ID, export_nnunet

HELP = ("Export the raw layout to nnU-Net v2 raw format: Dataset<NNN>_<name>/ with imagesTr (_0000), binary labelsTr, "
        "imagesTs_<k>, dataset.json and splits_final.json from the project folds.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Raw and output folders, dataset id and name, folds folder, test-set switch, patient regex."""
    parser.add_argument("--raw", required=True, help="raw data folder (imagesTr/, labelsTr_instance/, ...)")
    parser.add_argument("--out", required=True, help="nnUNet_raw folder, e.g. data/nnunet_raw")
    parser.add_argument("--dataset-id", type=int, default=DEFAULT_DATASET_ID,
                        help="nnU-Net dataset id, 11..999 (default 501; 1-10 are reserved)")
    parser.add_argument("--name", default=DATASET_NAME, help="dataset name (default NF1WBMRI)")
    parser.add_argument("--splits", default=None,
                        help="project folds folder (fold_<k>/...); default: compute 5 patient-level folds, seed 42")
    parser.add_argument("--no-test-sets", action="store_true", help="do not copy the imagesTs_<k> sets")
    parser.add_argument("--patient-regex", default=None, help=PATIENT_REGEX_HELP)


def run(args: argparse.Namespace) -> int:
    """Export and print the dataset folder."""
    folder = export_nnunet(args.raw, args.out, dataset_id=args.dataset_id, name=args.name, splits_dir=args.splits,
                           include_test_sets=not args.no_test_sets, patient_regex=args.patient_regex)
    print(f"nnU-Net dataset written to {folder}")
    return 0
