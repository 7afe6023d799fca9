#!/usr/bin/env bash
# Shared by launchers/train_mois_sam2.sh and launchers/finetune_sam2.sh (source it; do not run it).
#
# run_training CONFIG NAME [demo] [HYDRA_OVERRIDES...]
#   Trains CONFIG (a training config of mois_sam2_nf/training/configs) on every fold in FOLDS, then strips each
#   fold's last training checkpoint to model_weights_finetuned/<NAME>/fold_<k>/checkpoint.pt ({"model": ...}), the
#   file the evaluation launchers load. With "demo" the CONFIG_demo variant runs on the synthetic demo cohort, which
#   is generated, sliced and split under data/demo/ first if missing.
#
# Environment:
#   NPROC        processes (GPUs) per node               (default 1; >1 or NNODES>1 runs torchrun with DDP)
#   NNODES       nodes; with NODE_RANK, MASTER_ADDR, MASTER_PORT passed to torchrun for multi-node runs (default 1)
#   FOLDS        folds to train                          (default "1 2 3", demo: "1")
#   PYTHON       interpreter                             (default .venv/bin/python if present, else python3)
# Runs resume: a fold whose output folder holds checkpoints/checkpoint.pt continues from it.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
NPROC="${NPROC:-1}"
NNODES="${NNODES:-1}"

prepare_demo_data() {
    if [[ ! -d data/demo/raw/imagesTr ]]; then
        "${PYTHON}" -m mois_sam2_nf.cli.main synth --preset demo --out data/demo/raw
    fi
    "${PYTHON}" -m mois_sam2_nf.cli.main slice --raw data/demo/raw --out data/demo/processed --sets imagesTr
    if [[ ! -d data/demo/splits/fold_1 ]]; then
        "${PYTHON}" -m mois_sam2_nf.cli.main split --raw data/demo/raw --out data/demo/splits
    fi
}

# TRAIN: the train command, through torchrun when more than one process is asked for
TRAIN=("${PYTHON}" -m mois_sam2_nf.cli.main train)
if [[ "${NPROC}" -gt 1 || "${NNODES}" -gt 1 ]]; then
    RDZV=(--standalone)
    if [[ "${NNODES}" -gt 1 ]]; then
        RDZV=(--nnodes="${NNODES}" --node_rank="${NODE_RANK:?set NODE_RANK}"
              --master_addr="${MASTER_ADDR:?set MASTER_ADDR}" --master_port="${MASTER_PORT:-29500}")
    fi
    TRAIN=("${PYTHON}" -m torch.distributed.run "${RDZV[@]}" --nproc_per_node="${NPROC}"
           -m mois_sam2_nf.cli.main train)
fi

run_training() {
    local config="$1" name="$2"
    shift 2
    local folds="${FOLDS:-1 2 3}"
    if [[ "${1:-}" == "demo" ]]; then
        shift
        config="${config}_demo"
        name="${name}_demo"
        folds="${FOLDS:-1}"
        prepare_demo_data
    fi
    local fold out
    for fold in ${folds}; do
        out="model_weights_finetuned/${name}/fold_${fold}"
        "${TRAIN[@]}" -c "${config}" "data.fold=${fold}" "trainer.name=${name}" "trainer.out_dir=${out}" "$@"
        "${PYTHON}" model_weights/export_sam2_model_weights.py "${out}/checkpoints/checkpoint.pt" "${out}/checkpoint.pt"
    done
}
