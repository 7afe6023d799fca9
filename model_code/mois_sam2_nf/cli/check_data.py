"""``mois-sam2-nf check-data DIR``: list every problem of a raw-layout folder (exit 1 if any)."""

from __future__ import annotations

import argparse
import sys

from mois_sam2_nf.data.layout import PATIENT_REGEX_HELP, check_raw_layout, discover_sets, load_patient_map

HELP = "List every problem in a raw-layout data folder (one line each); exit 1 if there is any."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Positional raw folder, optional patient regex, and a names-only mode."""
    parser.add_argument("root", metavar="DIR", help="raw data folder (imagesTr/, labelsTr_instance/, ...)")
    parser.add_argument("--patient-regex", default=None, help=PATIENT_REGEX_HELP)
    parser.add_argument("--no-voxels", action="store_true",
                        help="check names and patients only; do not read the NIfTI files")


def run(args: argparse.Namespace) -> int:
    """Print each problem on stdout and return 1, or print a one-line OK summary and return 0."""
    problems = check_raw_layout(args.root, patient_regex=args.patient_regex, read_voxels=not args.no_voxels)
    if problems:
        for line in problems:
            print(line)
        print(f"check-data: {len(problems)} problem(s) in {args.root}", file=sys.stderr)
        return 1
    sets = discover_sets(args.root)
    patients = load_patient_map(args.root, args.patient_regex)
    cases = [c.case_id for s in sets for c in s.cases]
    print(f"OK: {args.root}: {len(sets)} set(s) ({', '.join(s.name for s in sets)}), {len(cases)} scans, "
          f"{len({patients[c] for c in cases})} patients")
    return 0
