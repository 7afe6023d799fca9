"""``mois-sam2-nf preview --raw DIR --out DIR``: coronal MIP sheets per set and a table of scans/lesions."""

from __future__ import annotations

import argparse

from mois_sam2_nf.data.layout import PATIENT_REGEX_HELP
from mois_sam2_nf.data.preview import make_previews

HELP = ("Write one coronal maximum-intensity-projection PNG per scan set (lesion outlines in colour), summary.csv "
        "and scans.csv, and print the table of scans, patients and lesions per set.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Raw and output folders, set selection, patient regex."""
    parser.add_argument("--raw", required=True, help="raw data folder (imagesTr/, labelsTr_instance/, ...)")
    parser.add_argument("--out", required=True, help="output folder for <set>.png, summary.csv, scans.csv")
    parser.add_argument("--sets", nargs="+", default=None, metavar="SET", help="only these sets (default: all)")
    parser.add_argument("--patient-regex", default=None, help=PATIENT_REGEX_HELP)


def run(args: argparse.Namespace) -> int:
    """Render the previews and print the summary table."""
    summary = make_previews(args.raw, args.out, sets=args.sets, patient_regex=args.patient_regex)
    print(summary.to_string(index=False))
    print(f"previews written to {args.out}")
    return 0
