"""``mois-sam2-nf evaluate [hydra overrides] [--shard i/n] [--overwrite]``: one resumable evaluation run.

Example::

    mois-sam2-nf evaluate model=oracle protocol=lesion_wise_corrective data.root=data/raw data.test_set=ts1 \
        fold=1 results_dir=evaluation/results seed=0

Config groups: ``model`` (oracle, imperfect_oracle, sam2, mois_sam2), ``protocol`` (lesion_wise_corrective,
lesion_wise_non_corrective, prompted_lesion_sweep, global_corrective, global_non_corrective), ``click`` (patch_dt,
patch_dt_mm, center), ``metrics`` (default), ``data`` (raw). The logic lives in
:mod:`mois_sam2_nf.evaluation.runner`.
"""

from __future__ import annotations

import argparse
import shlex

HELP = "simulated-click evaluation of a model (Hydra overrides such as model=mois_sam2 data.test_set=ts1 fold=1)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Hydra overrides as positional arguments, plus sharding and overwrite flags."""
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="Hydra overrides, e.g. model=sam2 protocol=global_corrective data.test_set=ts2 fold=2")
    parser.add_argument("--shard", default="1/1", metavar="I/N",
                        help="evaluate only shard I of N (1-based, round-robin over sorted cases; default 1/1)")
    parser.add_argument("--overwrite", action="store_true", help="recompute cases whose metrics.csv already exists")


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print one summary line."""
    from mois_sam2_nf.evaluation.runner import evaluate, parse_shard

    flags = ["--shard", args.shard] + (["--overwrite"] if args.overwrite else [])
    command = shlex.join(["mois-sam2-nf", "evaluate", *args.overrides, *flags])
    result = evaluate(args.overrides, shard=parse_shard(args.shard), overwrite=args.overwrite, command=command)
    print(f"{result.run_id}: {len(result.computed)} case(s) evaluated, {len(result.skipped)} already done, "
          f"{result.n_cases_done} done in total -> {result.run_dir}")
    return 0
