#!/usr/bin/env bash
# Train the nnU-Net v2 baseline (default nnUNetTrainer, 3d_fullres) with nnU-Net's own commands.
#
#   launchers/train_nnunet.sh [smoke] [extra train-nnunet options]
#
#   launchers/train_nnunet.sh               data/raw + data/splits, folds 1 2 3, CUDA      -> model_weights_finetuned/nnUNet/
#   launchers/train_nnunet.sh smoke         synthetic tiny cohort, nnUNetTrainer_Smoke, CPU, fold 1
#                                                                                     -> model_weights_finetuned/nnUNet_smoke/
#   FOLDS="1" launchers/train_nnunet.sh --device cpu
#
# Each fold folder holds nnU-Net's results and meta.json; evaluate with
#   mois-sam2-nf evaluate model=nnunet protocol=global_non_corrective ...
# Runs resume (plans are reused, finished folds skipped, interrupted folds continue).
source "$(dirname "${BASH_SOURCE[0]}")/_baseline_common.sh"

if [[ "${1:-}" == "smoke" ]]; then
    shift
    ensure_tiny_cohort
    exec "${CLI[@]}" train-nnunet --raw data/tiny/raw --work data/tiny/nnunet --out model_weights_finetuned/nnUNet_smoke \
        --folds ${FOLDS:-1} --smoke --device cpu --num-processes 1 "$@"
fi
exec "${CLI[@]}" train-nnunet --raw data/raw --splits data/splits --work data/nnunet \
    --out model_weights_finetuned/nnUNet --folds ${FOLDS:-1 2 3} "$@"
