"""``mois-sam2-nf slice --raw DIR --out DIR``: 3-D scans -> per-case JPEG frames and palettised PNG masks."""

from __future__ import annotations

import argparse

from mois_sam2_nf.data.layout import PATIENT_REGEX_HELP
from mois_sam2_nf.data.slicing import DEFAULT_JPEG_QUALITY, slice_dataset

HELP = ("Export raw 3-D scans to canonical coronal frames (NNNNN.jpg), palettised PNG instance masks (NNNNN.png) "
        "and meta.json per case; finished cases are skipped.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Raw and output folders, JPEG quality, set selection, patient regex."""
    parser.add_argument("--raw", required=True, help="raw data folder (imagesTr/, labelsTr_instance/, ...)")
    parser.add_argument("--out", required=True, help="processed output folder, e.g. data/processed")
    parser.add_argument("--quality", type=int, default=DEFAULT_JPEG_QUALITY, help="JPEG quality 1..100 (default 95)")
    parser.add_argument("--sets", nargs="+", default=None, metavar="SET",
                        help="only these sets, e.g. imagesTr imagesTs_1 (default: all)")
    parser.add_argument("--patient-regex", default=None, help=PATIENT_REGEX_HELP)


def run(args: argparse.Namespace) -> int:
    """Slice and print one line per set."""
    summary = slice_dataset(args.raw, args.out, sets=args.sets, quality=args.quality,
                            patient_regex=args.patient_regex)
    for name in summary.written:
        print(f"{name}: {summary.written[name]} sliced, {summary.skipped[name]} already done, "
              f"{summary.dropped[name]} instance(s) dropped over 255")
    return 0
