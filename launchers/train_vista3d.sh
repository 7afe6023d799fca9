#!/usr/bin/env bash
# Fine-tune the VISTA3D baseline (MONAI vista3d132; point and automatic branches, NF as zero-shot class 133).
#
#   launchers/train_vista3d.sh [smoke] [extra train-vista3d options and key=value overrides]
#
#   launchers/train_vista3d.sh            data/raw + data/splits, full-scale config, folds 1 2 3, CUDA
#                                                                   -> model_weights_finetuned/VISTA3D/
#   launchers/train_vista3d.sh smoke      synthetic tiny cohort, narrow vista3d_smoke config, CPU, fold 1
#                                                                   -> model_weights_finetuned/VISTA3D_smoke/
#   launchers/train_vista3d.sh training.init_weights=model_weights/vista3d   start from MONAI's VISTA3D bundle
#
# Each fold folder holds model.pt, meta.json, logs/train_log.csv and checkpoints/last.pt (runs resume; raise
# training.epochs to continue a finished run). Evaluate with mois-sam2-nf evaluate model=vista3d ...
source "$(dirname "${BASH_SOURCE[0]}")/_baseline_common.sh"

if [[ "${1:-}" == "smoke" ]]; then
    shift
    ensure_tiny_cohort
    exec "${CLI[@]}" train-vista3d --raw data/tiny/raw -c vista3d_smoke \
        --out model_weights_finetuned/VISTA3D_smoke --folds ${FOLDS:-1} --device cpu "$@"
fi
exec "${CLI[@]}" train-vista3d --raw data/raw --splits data/splits --out model_weights_finetuned/VISTA3D \
    --folds ${FOLDS:-1 2 3} --device cuda "$@"
