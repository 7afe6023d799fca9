#!/usr/bin/env bash
# Shared by every evaluation launcher in this folder (source it; do not run it).
#
# run_model_mode MODEL MODE [HYDRA_OVERRIDES...] evaluates MODEL with protocol MODE on every fold x test set and
# returns 1 at the first run that fails:
#
#   FOLDS         folds of the model weights        (default "1 2 3", as in the reference)
#   TEST_SETS     ts<k> and/or val_<k> sets          (default "ts1 ts2 ts3 ts4")
#   DATA_ROOT     raw NIfTI layout                   (default data/raw)
#   RESULTS_DIR   results root                       (default evaluation/results)
#   SEED          click seed                         (default 0)
#   SHARD         i/n share of the cases             (default 1/1; e.g. "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}")
#   CHECKPOINT    per-fold checkpoint, "{fold}" replaced by the fold, e.g.
#                 model_weights_finetuned/MOIS_SAM2/fold_{fold}/checkpoint.pt (default: the model config's checkpoint,
#                 i.e. the shipped demo weights for sam2 / mois_sam2)
#   MOIS_SAM2_NF  the command                        (default: mois-sam2-nf, else .venv/bin/mois-sam2-nf)
#
# Extra arguments are Hydra overrides passed to every run, e.g. model.device=cuda model.precision=bf16.
# Runs are resumable: rerunning a launcher skips finished cases.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${REPO_ROOT}"

FOLDS="${FOLDS:-1 2 3}"
TEST_SETS="${TEST_SETS:-ts1 ts2 ts3 ts4}"
DATA_ROOT="${DATA_ROOT:-data/raw}"
RESULTS_DIR="${RESULTS_DIR:-evaluation/results}"
SEED="${SEED:-0}"
SHARD="${SHARD:-1/1}"
CHECKPOINT="${CHECKPOINT:-}"

if [[ -z "${MOIS_SAM2_NF:-}" ]]; then
    if command -v mois-sam2-nf >/dev/null 2>&1; then
        MOIS_SAM2_NF="mois-sam2-nf"
    else
        MOIS_SAM2_NF="${REPO_ROOT}/.venv/bin/mois-sam2-nf"
    fi
fi

run_model_mode() {
    local model="$1" mode="$2"
    shift 2
    local fold test_set
    for fold in ${FOLDS}; do
        for test_set in ${TEST_SETS}; do
            local checkpoint_override=()
            if [[ -n "${CHECKPOINT}" ]]; then
                checkpoint_override=("++model.checkpoint=${CHECKPOINT//\{fold\}/\${fold\}}")
            fi
            echo "== ${model} | ${mode} | ${test_set} | fold ${fold}"
            "${MOIS_SAM2_NF}" evaluate "model=${model}" "protocol=${mode}" "data.root=${DATA_ROOT}" \
                "data.test_set=${test_set}" "fold=${fold}" "results_dir=${RESULTS_DIR}" "seed=${SEED}" \
                "${checkpoint_override[@]}" "$@" --shard "${SHARD}" || return 1
        done
    done
}
