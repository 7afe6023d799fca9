#!/usr/bin/env bash
# The `make demo` job: evaluate the shipped demo weights (model_weights/demo/) and the region-growing baseline on the
# synthetic demo cohort, then write the report:
#
#   - lesion-wise corrective (the 20 largest lesions x 3 simulated clicks, one propagation pass) on ts1-ts4 for
#     MODELS;
#   - the prompted-lesion sweep (metrics after K = 1..20 prompted lesions) on SWEEP_TEST_SETS for SWEEP_MODELS.
#
# Each (model, mode, test sets) evaluation is one job; a queue runs JOBS of them at a time, one CPU thread each, the
# heaviest (MOIS-SAM2) first.
#
# Demo settings on top of the benchmark defaults: clicks use the reference's physical patch size (click=patch_dt_mm,
# the demo preset has coarse voxels) and the SAM2-family models stop propagating after 1 slice without the object
# (model.early_stop_k=1, chosen on the validation scans: docs/demo_results.md; exact full propagation is the default
# everywhere else).
#
#   DATA_ROOT        demo cohort                   (default data/demo/raw)
#   RESULTS_DIR      results root                  (default evaluation/results/demo)
#   TEST_SETS        lesion-wise corrective sets   (default "ts1 ts2 ts3 ts4")
#   MODELS           lesion-wise corrective models (default "mois_sam2 sam2 region_growing"; add
#                    mois_sam2_no_propagation for the ablation on every set)
#   SWEEP_TEST_SETS  sweep sets                    (default "ts1 ts2")
#   SWEEP_MODELS     sweep models                  (default "mois_sam2 sam2 mois_sam2_no_propagation region_growing")
#   JOBS             evaluations at a time         (default 2)
# Extra arguments are Hydra overrides passed to every evaluation.
set -euo pipefail
LAUNCHERS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${LAUNCHERS}/../.."

export DATA_ROOT="${DATA_ROOT:-data/demo/raw}" RESULTS_DIR="${RESULTS_DIR:-evaluation/results/demo}"
export FOLDS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
TEST_SETS="${TEST_SETS:-ts1 ts2 ts3 ts4}"
MODELS="${MODELS:-mois_sam2 sam2 region_growing}"
SWEEP_TEST_SETS="${SWEEP_TEST_SETS:-ts1 ts2}"
SWEEP_MODELS="${SWEEP_MODELS:-mois_sam2 sam2 mois_sam2_no_propagation region_growing}"
JOBS="${JOBS:-2}"
source "${LAUNCHERS}/common.sh"

# run_job MODEL MODE "TEST SETS" [HYDRA_OVERRIDES...]
run_job() {
    local model="$1" mode="$2" test_sets="$3"
    shift 3
    local options=(click=patch_dt_mm)
    case "${model}" in
        sam2 | mois_sam2*) options+=(model.early_stop_k=1) ;;  # SAM2-family option
    esac
    JOBS=1 REPORT=0 MODELS="${model}" MODE="${mode}" TEST_SETS="${test_sets}" "${LAUNCHERS}/run_benchmark.sh" \
        "${options[@]}" "$@"
}

# the job list: per model (sweep models first, in their order) its sweep, then its lesion-wise corrective run
queue=()
seen=" "
for model in ${SWEEP_MODELS} ${MODELS}; do
    if [[ "${seen}" == *" ${model} "* ]]; then
        continue
    fi
    seen+="${model} "
    if [[ " ${SWEEP_MODELS} " == *" ${model} "* ]]; then
        queue+=("${model}|prompted_lesion_sweep|${SWEEP_TEST_SETS}")
    fi
    if [[ " ${MODELS} " == *" ${model} "* ]]; then
        queue+=("${model}|lesion_wise_corrective|${TEST_SETS}")
    fi
done

status=0
running=0
for job in "${queue[@]}"; do
    if (( running >= JOBS )); then
        wait -n || status=1
        running=$((running - 1))
    fi
    IFS="|" read -r model mode test_sets <<< "${job}"
    echo "demo: start ${model} | ${mode} | ${test_sets}"
    run_job "${model}" "${mode}" "${test_sets}" "$@" &
    running=$((running + 1))
done
while (( running > 0 )); do
    wait -n || status=1
    running=$((running - 1))
done
if (( status )); then
    echo "demo: an evaluation failed (see above)" >&2
    exit 1
fi
"${MOIS_SAM2_NF}" report "${RESULTS_DIR}" --data-root "${DATA_ROOT}"
