"""``mois-sam2-nf check-data``: list every problem of data/raw (or of the folder given as argument)."""

import sys

from _subcommand import REPO_ROOT, run_subcommand

if __name__ == "__main__":
    run_subcommand("check-data", [] if len(sys.argv) > 1 else [str(REPO_ROOT / "data" / "raw")])
