"""Reference name of ``mois-sam2-nf split``: patient-level folds of data/raw/imagesTr into data/splits."""

from _subcommand import REPO_ROOT, run_subcommand

if __name__ == "__main__":
    run_subcommand("split", ["--raw", str(REPO_ROOT / "data" / "raw"), "--out", str(REPO_ROOT / "data" / "splits")])
