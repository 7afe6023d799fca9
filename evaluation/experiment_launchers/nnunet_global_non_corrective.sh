#!/usr/bin/env bash
# nnU-Net v2, automatic (train it with launchers/train_nnunet.sh) -- global_non_corrective on every fold x test set (environment variables and extra Hydra overrides: see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run_model_mode nnunet global_non_corrective "$@"
