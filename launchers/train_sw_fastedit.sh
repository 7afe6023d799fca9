#!/usr/bin/env bash
# Train the SW-FastEdit baseline (MONAI DynUNet + click-ball guidance, DeepEdit-style simulated corrections).
#
#   launchers/train_sw_fastedit.sh [smoke] [extra train-sw-fastedit options and key=value overrides]
#
#   launchers/train_sw_fastedit.sh            data/raw + data/splits, reference config, folds 1 2 3, CUDA
#                                                                   -> model_weights_finetuned/SW_FastEdit/
#   launchers/train_sw_fastedit.sh smoke      synthetic tiny cohort, sw_fastedit_smoke config, CPU, fold 1 (~30 s)
#                                                                   -> model_weights_finetuned/SW_FastEdit_smoke/
#   launchers/train_sw_fastedit.sh --device cpu training.epochs=20
#
# Each fold folder holds checkpoint.pt, meta.json, logs/train_log.csv and checkpoints/last.pt (runs resume). Evaluate
# with mois-sam2-nf evaluate model=sw_fastedit ...
source "$(dirname "${BASH_SOURCE[0]}")/_baseline_common.sh"

if [[ "${1:-}" == "smoke" ]]; then
    shift
    ensure_tiny_cohort
    exec "${CLI[@]}" train-sw-fastedit --raw data/tiny/raw -c sw_fastedit_smoke \
        --out model_weights_finetuned/SW_FastEdit_smoke --folds ${FOLDS:-1} --device cpu "$@"
fi
exec "${CLI[@]}" train-sw-fastedit --raw data/raw --splits data/splits --out model_weights_finetuned/SW_FastEdit \
    --folds ${FOLDS:-1 2 3} --device cuda "$@"
