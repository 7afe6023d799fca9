"""Thin wrapper: ``python data_scripts/generate_synthetic_cohort.py --preset demo --out data/raw --seed 0``.

Same arguments as ``mois-sam2-nf synth``; the logic lives in ``mois_sam2_nf.data.synthetic``.
"""

import sys

from mois_sam2_nf.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["synth", *sys.argv[1:]]))
