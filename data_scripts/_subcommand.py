"""Shared helper of the thin ``data_scripts``: run a ``mois-sam2-nf`` sub-command with repository-relative defaults.

Defaults are paths under the repository root (the parent of this folder); arguments given on the command line come
after them and therefore win (argparse keeps the last value of an option).
"""

from __future__ import annotations

import sys
from pathlib import Path

from mois_sam2_nf.cli.main import main

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_subcommand(command: str, defaults: list[str]) -> None:
    """Exit with the status of ``mois-sam2-nf <command> <defaults> <sys.argv[1:]>``."""
    sys.exit(main([command, *defaults, *sys.argv[1:]]))
