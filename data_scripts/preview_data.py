"""``mois-sam2-nf preview``: coronal MIP sheets and the scans/lesions table of data/raw in data/previews."""

from _subcommand import REPO_ROOT, run_subcommand

if __name__ == "__main__":
    run_subcommand("preview", ["--raw", str(REPO_ROOT / "data" / "raw"), "--out", str(REPO_ROOT / "data" / "previews")])
