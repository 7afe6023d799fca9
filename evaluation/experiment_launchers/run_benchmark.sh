#!/usr/bin/env bash
# The benchmark: every model in MODELS x folds x test sets with protocol MODE (see common.sh for FOLDS, TEST_SETS,
# DATA_ROOT, RESULTS_DIR, SEED, SHARD, CHECKPOINT). A model that is not available (vista3d) is reported and
# skipped; the script exits non-zero if any model failed.
#
#   MODELS  (default "mois_sam2 sam2")     MODE  (default lesion_wise_corrective; nnunet always runs
#                                                  global_non_corrective, its only mode)
# Example: MODELS="mois_sam2 sam2 nnunet" FOLDS="1" TEST_SETS="ts1 ts2" evaluation/experiment_launchers/run_benchmark.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

MODELS="${MODELS:-mois_sam2 sam2}"
MODE="${MODE:-lesion_wise_corrective}"
failed=()
for model in ${MODELS}; do
    mode="${MODE}"
    [[ "${model}" == "nnunet" ]] && mode="global_non_corrective"
    if ! run_model_mode "${model}" "${mode}" "$@"; then
        failed+=("${model}")
    fi
done
if (( ${#failed[@]} )); then
    echo "benchmark: failed model(s): ${failed[*]}" >&2
    exit 1
fi
echo "benchmark: done -> ${RESULTS_DIR}/summary.csv"
