"""``mois-sam2-nf evaluate [hydra overrides] [--shard i/n] [--overwrite]``: one resumable evaluation run.

Example::

    mois-sam2-nf evaluate model=oracle protocol=lesion_wise_corrective data.root=data/raw data.test_set=ts1 \
        fold=1 results_dir=evaluation/results seed=0

``--help`` lists the choices of each config group (the YAML files of ``evaluation/configs/<group>/``);
``--print-config`` prints the composed config instead of running. The logic lives in
:mod:`mois_sam2_nf.evaluation.runner`.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

HELP = "simulated-click evaluation of a model (Hydra overrides such as model=mois_sam2 data.test_set=ts1 fold=1)"

#: the evaluation's Hydra config folder (one sub-folder per config group)
CONFIG_DIR = Path(__file__).resolve().parents[1] / "evaluation" / "configs"
#: config groups listed by ``--help``
GROUPS: tuple[str, ...] = ("model", "protocol", "click", "metrics", "data")


def group_choices() -> dict[str, list[str]]:
    """``{group: sorted config names}`` of :data:`GROUPS` (file names without ``.yaml``)."""
    return {group: sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml")) for group in GROUPS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Hydra overrides as positional arguments, sharding and overwrite flags; the config choices as epilog."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "config groups (GROUP=CHOICE):\n" + "\n".join(
        f"  {group:<9} {', '.join(choices)}" for group, choices in group_choices().items())
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="Hydra overrides, e.g. model=sam2 protocol=global_corrective data.test_set=ts2 fold=2")
    parser.add_argument("--shard", default="1/1", metavar="I/N",
                        help="evaluate only shard I of N (1-based, round-robin over sorted cases; default 1/1)")
    parser.add_argument("--overwrite", action="store_true", help="recompute cases whose metrics.csv already exists")
    parser.add_argument("--print-config", action="store_true", help="print the composed config and exit")


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print one summary line."""
    from mois_sam2_nf.evaluation.runner import compose_config, evaluate, parse_shard

    if args.print_config:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(compose_config(args.overrides)[1]), end="")
        return 0
    flags = ["--shard", args.shard] + (["--overwrite"] if args.overwrite else [])
    command = shlex.join(["mois-sam2-nf", "evaluate", *args.overrides, *flags])
    result = evaluate(args.overrides, shard=parse_shard(args.shard), overwrite=args.overwrite, command=command)
    print(f"{result.run_id}: {len(result.computed)} case(s) evaluated, {len(result.skipped)} already done, "
          f"{result.n_cases_done} done in total -> {result.run_dir}")
    return 0
