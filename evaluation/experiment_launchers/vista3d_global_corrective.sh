#!/usr/bin/env bash
# VISTA3D, point prompts (train it with launchers/train_vista3d.sh; smoke weights: model.config=vista3d_smoke) -- global_corrective on every fold x test set (environment variables and extra Hydra overrides: see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run_model_mode vista3d global_corrective "$@"
