"""Strip a SAM2 / MOIS-SAM2 training checkpoint to ``{"model": state_dict}`` (what the predictors load).

Usage (from the repository root)::

    python model_weights/export_sam2_model_weights.py \
        model_weights_finetuned/MOIS_SAM2/fold_1/checkpoints/checkpoint.pt \
        model_weights_finetuned/MOIS_SAM2/fold_1/checkpoint.pt
"""

from __future__ import annotations

import argparse
import sys

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.training.checkpointing import export_model_weights


def main(argv: list[str] | None = None) -> int:
    """Parse ``SRC DST`` and write DST atomically; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="training checkpoint (checkpoints/checkpoint.pt of a training run)")
    parser.add_argument("dst", help="output file with only the model weights")
    args = parser.parse_args(argv)
    try:
        print(export_model_weights(args.src, args.dst))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
