"""``mois-sam2-nf export-nnunet``: data/raw -> data/nnunet_raw/Dataset501_NF1WBMRI (folds: data/splits if present)."""

from _subcommand import REPO_ROOT, run_subcommand

if __name__ == "__main__":
    splits = REPO_ROOT / "data" / "splits"
    run_subcommand(
        "export-nnunet",
        ["--raw", str(REPO_ROOT / "data" / "raw"), "--out", str(REPO_ROOT / "data" / "nnunet_raw"),
         "--dataset-id", "501", *(["--splits", str(splits)] if splits.is_dir() else [])],
    )
