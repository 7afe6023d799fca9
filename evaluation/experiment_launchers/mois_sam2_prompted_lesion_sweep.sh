#!/usr/bin/env bash
# MOIS-SAM2 -- prompted_lesion_sweep on every fold x test set (environment variables and extra Hydra overrides: see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run_model_mode mois_sam2 prompted_lesion_sweep "$@"
