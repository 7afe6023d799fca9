#!/usr/bin/env bash
# DINs (not available in this version) -- lesion_wise_non_corrective on every fold x test set (environment variables and extra Hydra overrides: see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run_model_mode dins lesion_wise_non_corrective "$@"
