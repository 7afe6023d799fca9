#!/usr/bin/env bash
# Train MOIS-SAM2 (reference recipe: SAM2.1 Hiera-B+ initialisation from model_weights/sam2.1_hiera_base_plus.pt,
# 4-frame clips, 100 epochs, bf16 on CUDA) on folds 1-3 of data/processed + data/splits.
#
#   launchers/train_mois_sam2.sh [demo] [HYDRA_OVERRIDES...]
#
#   launchers/train_mois_sam2.sh                          full recipe, folds 1 2 3, one process
#   NPROC=8 launchers/train_mois_sam2.sh                  8 GPUs with torchrun (DDP, nccl)
#   launchers/train_mois_sam2.sh demo                     demo config on the synthetic demo cohort (CPU is fine)
#   FOLDS=2 launchers/train_mois_sam2.sh trainer.epochs=50
#
# Output: model_weights_finetuned/MOIS_SAM2[_demo]/fold_<k>/ (checkpoints/, logs/, config.yaml, checkpoint.pt).
# See launchers/_train_common.sh for the environment variables.
source "$(dirname "${BASH_SOURCE[0]}")/_train_common.sh"
run_training train_mois_sam2 MOIS_SAM2 "$@"
