#!/usr/bin/env bash
# DINs (train it with launchers/train_dins.sh) -- global_non_corrective on every fold x test set (environment variables and extra Hydra overrides: see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run_model_mode dins global_non_corrective "$@"
