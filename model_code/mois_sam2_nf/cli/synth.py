"""``mois-sam2-nf synth``: generate the synthetic whole-body MRI cohort (parsing only)."""

from __future__ import annotations

import argparse
import time

HELP = ("Generate the synthetic whole-body MRI cohort (raw NIfTI layout, patients.csv, synthetic_manifest.json). "
        "Re-running the same preset and seed into the same folder only completes missing scans.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mois_sam2_nf.data.synthetic.presets import PRESETS

    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="cohort size (default: demo)")
    parser.add_argument("--out", default="data/raw", help="output folder of the raw layout (default: data/raw)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes, one patient each (default: 1)")


def run(args: argparse.Namespace) -> int:
    from mois_sam2_nf.data.synthetic import generate_cohort, summary

    start = time.perf_counter()
    out = generate_cohort(args.preset, out_dir=args.out, seed=args.seed, workers=args.workers)
    print(summary(out))
    print(f"{args.preset} cohort (seed {args.seed}) in {out} [{time.perf_counter() - start:.1f} s]")
    return 0
