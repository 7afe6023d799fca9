"""``mois-sam2-nf train-nnunet --raw DIR [--smoke]``: the nnU-Net v2 baseline with nnU-Net's own commands."""

from __future__ import annotations

import argparse

from mois_sam2_nf.data.nnunet_export import DEFAULT_DATASET_ID

HELP = ("Train the nnU-Net v2 baseline: export the raw layout, plan and preprocess (3d_fullres), copy the project "
        "folds as splits_final.json and train each fold; writes <out>/fold_<k>/ with nnU-Net's results and meta.json. "
        "Resumable.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Data, output folders, folds, smoke schedule, device and preprocessing workers."""
    parser.add_argument("--raw", required=True, help="raw data folder (imagesTr/, labelsTr_instance/, ...)")
    parser.add_argument("--splits", default=None, help="project folds folder (default: 5 patient-level folds)")
    parser.add_argument("--work", default="data/nnunet",
                        help="nnUNet_raw + nnUNet_preprocessed parent (default %(default)s)")
    parser.add_argument("--out", default="model_weights_finetuned/nnUNet",
                        help="receives fold_<k>/ (default %(default)s)")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3], help="project folds (default 1 2 3)")
    parser.add_argument("--smoke", action="store_true", help="nnUNetTrainer_Smoke: 2 epochs x 4 iterations")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "mps"), help="default %(default)s")
    parser.add_argument("--num-processes", type=int, default=4, help="preprocessing workers (default %(default)s)")
    parser.add_argument("--dataset-id", type=int, default=DEFAULT_DATASET_ID, help="nnU-Net dataset id (default 501)")


def run(args: argparse.Namespace) -> int:
    """Train and print the fold folders."""
    from mois_sam2_nf.models.nnunet.train import train_nnunet

    for folder in train_nnunet(args.raw, work_dir=args.work, out_dir=args.out, folds=tuple(args.folds),
                               splits_dir=args.splits, smoke=args.smoke, device=args.device,
                               num_processes=args.num_processes, dataset_id=args.dataset_id):
        print(f"nnU-Net fold ready: {folder}")
    return 0
