#!/usr/bin/env bash
# Train the DINs baseline (3-D U-Net with guide branch, ExpDT clicks) and export it to ONNX.
#
#   launchers/train_dins.sh [smoke] [extra train-dins options and key=value overrides]
#
#   launchers/train_dins.sh            data/raw + data/splits, reference config, folds 1 2 3, CUDA
#                                                              -> model_weights_finetuned/DINs/
#   launchers/train_dins.sh smoke      synthetic tiny cohort, dins_smoke config, CPU, fold 1
#                                                              -> model_weights_finetuned/DINs_smoke/
#
# Each fold folder holds checkpoint.onnx (what the evaluation loads), checkpoint.pt, meta.json, logs/train_log.csv
# and checkpoints/last.pt (runs resume). Evaluate with mois-sam2-nf evaluate model=dins ...
source "$(dirname "${BASH_SOURCE[0]}")/_baseline_common.sh"

if [[ "${1:-}" == "smoke" ]]; then
    shift
    ensure_tiny_cohort
    exec "${CLI[@]}" train-dins --raw data/tiny/raw -c dins_smoke --out model_weights_finetuned/DINs_smoke \
        --folds ${FOLDS:-1} --device cpu "$@"
fi
exec "${CLI[@]}" train-dins --raw data/raw --splits data/splits --out model_weights_finetuned/DINs \
    --folds ${FOLDS:-1 2 3} --device cuda "$@"
