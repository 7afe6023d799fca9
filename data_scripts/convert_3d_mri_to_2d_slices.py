"""Reference name of ``mois-sam2-nf slice``: data/raw -> data/processed (JPEG frames, palettised PNG masks)."""

from _subcommand import REPO_ROOT, run_subcommand

if __name__ == "__main__":
    run_subcommand("slice", ["--raw", str(REPO_ROOT / "data" / "raw"), "--out", str(REPO_ROOT / "data" / "processed")])
