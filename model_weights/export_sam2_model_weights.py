"""Write SAM2 / MOIS-SAM2 weights ``{"model": state_dict, "meta": ...}`` from a training checkpoint or a weights file.

``meta`` is the inference metadata (model family, config, image size, ImageNet normalisation; see
``mois_sam2_nf.models.checkpoint_meta``) that ``evaluate``, ``segment`` and the MONAI Label app read. A training
checkpoint records it; options given here must agree with it. A plain ``{"model": state_dict}`` file needs
``--family``, ``--config`` and ``--imagenet-norm`` / ``--no-imagenet-norm`` (``--image-size`` defaults to the
config's). DST may be SRC (rewritten atomically).

Usage (from the repository root)::

    python model_weights/export_sam2_model_weights.py \
        model_weights_finetuned/MOIS_SAM2/fold_1/checkpoints/checkpoint.pt \
        model_weights_finetuned/MOIS_SAM2/fold_1/checkpoint.pt
    python model_weights/export_sam2_model_weights.py weights.pt weights.pt \
        --family sam2 --config sam2_demo --no-imagenet-norm
"""

from __future__ import annotations

import argparse
import sys

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.checkpoint_meta import CONFIG_DIRS
from mois_sam2_nf.training.checkpointing import export_model_weights


def main(argv: list[str] | None = None) -> int:
    """Parse ``SRC DST [metadata options]`` and write DST atomically; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Options left out are taken from SRC.")
    parser.add_argument("src", help="training checkpoint (checkpoints/checkpoint.pt of a training run) or weights file")
    parser.add_argument("dst", help="output file with the model weights and their metadata")
    parser.add_argument("--family", choices=sorted(CONFIG_DIRS), help="model the weights were trained as")
    parser.add_argument("--config", help="model config name of that family (e.g. mois_sam2_demo) or YAML path")
    parser.add_argument("--image-size", type=int, help="model input size in pixels (default: the config's)")
    parser.add_argument("--imagenet-norm", action=argparse.BooleanOptionalAction, default=None,
                        help="whether training frames were ImageNet-normalised (this project's training: no)")
    args = parser.parse_args(argv)
    try:
        print(export_model_weights(args.src, args.dst, family=args.family, config=args.config,
                                   image_size=args.image_size, imagenet_norm=args.imagenet_norm))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
