"""``mois-sam2-nf report RESULTS_DIR``: analyse a results folder into report.md, summary.csv and PNG figures."""

from __future__ import annotations

import argparse

HELP = (
    "Analyse a results folder (one run folder or a tree of them): writes report.md, summary.csv, statistics.csv and "
    "figures/*.png. Figures whose inputs are missing (no sweep runs, no predictions or images) are skipped with a "
    "note in report.md. The last line printed is the report path."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="results folder, e.g. evaluation/results/demo")
    parser.add_argument(
        "--data-root",
        default=None,
        help="raw data folder with imagesTs_<k>/ and labelsTs_<k>_instance/ for the overlays "
        "(default: each run's manifest data.root)",
    )
    parser.add_argument("--out", default=None, help="output folder (default: RESULTS_DIR)")
    parser.add_argument(
        "--reference",
        default="mois_sam2",
        help="model tested against every other model (default mois_sam2; all pairs when it is absent)",
    )
    parser.add_argument(
        "--overlay-cases", type=int, default=1, help="cases per test set in the qualitative figure (default 1)"
    )
    parser.add_argument("--overlay-mode", default=None, help="mode shown in the qualitative figure")


def run(args: argparse.Namespace) -> int:
    from mois_sam2_nf.analysis.report import build_report
    from mois_sam2_nf.errors import InputError

    if args.overlay_cases < 1:
        raise InputError(f"--overlay-cases must be >= 1 (got {args.overlay_cases})")
    report = build_report(
        args.results_dir,
        data_root=args.data_root,
        out_dir=args.out,
        reference=args.reference,
        overlay_cases_per_test_set=args.overlay_cases,
        overlay_mode=args.overlay_mode,
    )
    print(f"report: {report}")
    return 0
