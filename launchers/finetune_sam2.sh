#!/usr/bin/env bash
# Fine-tune plain SAM2.1 Hiera-B+ (from model_weights/sam2.1_hiera_base_plus.pt) with the MOIS-SAM2 recipe minus
# exemplars and the semantic loss, on folds 1-3 of data/processed + data/splits.
#
#   launchers/finetune_sam2.sh [demo] [HYDRA_OVERRIDES...]
#
#   launchers/finetune_sam2.sh                            full recipe, folds 1 2 3, one process
#   NPROC=8 launchers/finetune_sam2.sh                    8 GPUs with torchrun (DDP, nccl)
#   launchers/finetune_sam2.sh demo                       SAM2 of the demo size on the synthetic demo cohort
#
# Output: model_weights_finetuned/SAM2[_demo]/fold_<k>/ (checkpoints/, logs/, config.yaml, checkpoint.pt).
# See launchers/_train_common.sh for the environment variables.
source "$(dirname "${BASH_SOURCE[0]}")/_train_common.sh"
run_training finetune_sam2 SAM2 "$@"
