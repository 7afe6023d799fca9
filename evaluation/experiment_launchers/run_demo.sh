#!/usr/bin/env bash
# The `make demo` job: evaluate the shipped demo weights (model_weights/demo/) of every model in MODELS on the
# synthetic demo test sets ts1-ts4 -- lesion-wise corrective, the 20 largest lesions x 3 simulated clicks, one
# propagation pass -- plus the prompted-lesion sweep on ts1 (scan Dice against the number of prompted lesions), then
# write the report. Models run side by side, one CPU thread each.
#
# Demo settings on top of the benchmark defaults: clicks use the reference's physical patch size (click=patch_dt_mm,
# the demo preset has coarse voxels) and propagation stops after 2 slices without the object (model.early_stop_k=2;
# exact full propagation is the default everywhere else).
#
#   DATA_ROOT    demo cohort     (default data/demo/raw)
#   RESULTS_DIR  results root    (default evaluation/results/demo)
#   MODELS       models          (default "mois_sam2 sam2"; add mois_sam2_no_propagation for the ablation)
set -euo pipefail
LAUNCHERS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${LAUNCHERS}/../.."

export DATA_ROOT="${DATA_ROOT:-data/demo/raw}" RESULTS_DIR="${RESULTS_DIR:-evaluation/results/demo}"
export FOLDS=1 TEST_SETS="${TEST_SETS:-ts1 ts2 ts3 ts4}" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
MODELS="${MODELS:-mois_sam2 sam2}"
source "${LAUNCHERS}/common.sh"

pids=()
for model in ${MODELS}; do
    (
        MODELS="${model}" "${LAUNCHERS}/run_benchmark.sh" click=patch_dt_mm model.early_stop_k=2 "$@"
        MODELS="${model}" MODE=prompted_lesion_sweep TEST_SETS=ts1 "${LAUNCHERS}/run_benchmark.sh" \
            click=patch_dt_mm model.early_stop_k=2 "$@"
    ) &
    pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do wait "${pid}" || status=1; done
if (( status )); then
    echo "demo: an evaluation failed (see above)" >&2
    exit 1
fi
"${MOIS_SAM2_NF}" report "${RESULTS_DIR}" --data-root "${DATA_ROOT}"
