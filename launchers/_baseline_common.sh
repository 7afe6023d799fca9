#!/usr/bin/env bash
# Shared by the baseline launchers (source it; do not run it): repository root, the CLI, the tiny smoke cohort.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
CLI=("${PYTHON}" -m mois_sam2_nf.cli.main)

# ensure_tiny_cohort: generate the synthetic tiny cohort under data/tiny/raw once (smoke runs train on it)
ensure_tiny_cohort() {
    if [[ ! -d data/tiny/raw/imagesTr ]]; then
        "${CLI[@]}" synth --preset tiny --out data/tiny/raw
    fi
}
