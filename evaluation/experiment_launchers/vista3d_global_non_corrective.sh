#!/usr/bin/env bash
# VISTA3D, automatic (class head, NF = class 133; train it with launchers/train_vista3d.sh; smoke weights: model.config=vista3d_smoke) -- global_non_corrective on every fold x test set (environment variables and extra Hydra overrides: see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run_model_mode vista3d global_non_corrective protocol.automatic=true "$@"
