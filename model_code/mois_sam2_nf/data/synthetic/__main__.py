"""``python -m mois_sam2_nf.data.synthetic --preset {tiny,demo,full} --out DIR --seed N [--workers N]``."""

import sys

from mois_sam2_nf.cli.main import main

sys.exit(main(["synth", *sys.argv[1:]]))
