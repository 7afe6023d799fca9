"""``mois-sam2-nf train``: train SAM2 / MOIS-SAM2 from a Hydra config (also under torchrun)."""

from __future__ import annotations

import argparse
import logging
import os

HELP = (
    "Train MOIS-SAM2 or fine-tune SAM2 on clips of sliced scans. CONFIG is a packaged config name "
    "(train_mois_sam2, finetune_sam2, *_demo, *_smoke) or a YAML path; OVERRIDES use Hydra syntax, "
    "e.g. data.fold=2 trainer.epochs=10. Run under `torchrun --nproc_per_node=N` for several processes."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` plus free Hydra overrides."""
    parser.add_argument("--config", "-c", default="train_mois_sam2",
                        help="training config name or YAML path (default: train_mois_sam2)")
    parser.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides")


def run(args: argparse.Namespace) -> int:
    """Compose the config and train; prints the last checkpoint path on rank 0."""
    from omegaconf import OmegaConf

    from mois_sam2_nf.training.config import load_training_config

    cfg = load_training_config(args.config, args.overrides)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg), end="")
        return 0
    from mois_sam2_nf.training.trainer import train

    is_main = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if is_main else logging.WARNING, format="%(levelname)s %(message)s")
    last = train(cfg)
    if is_main:
        print(last)
    return 0
