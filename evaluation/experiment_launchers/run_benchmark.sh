#!/usr/bin/env bash
# The benchmark grid: a Hydra multirun (python -m mois_sam2_nf.evaluation.grid; configs in
# model_code/mois_sam2_nf/evaluation/grid_configs/) over MODELS x FOLDS x TEST_SETS x PROTOCOLS, one job per grid
# point, each job one resumable `evaluate` run; then one `report` over every run in RESULTS_DIR. Re-running the
# script (or re-submitting the grid after a killed job) skips finished cases. Any failed job makes the script exit
# non-zero after the whole grid ran (a model that is not available, e.g. nninteractive without its model folder,
# fails its own jobs only).
#
#   MODELS      models                    (default "mois_sam2 sam2"; nnunet runs global_non_corrective, its only
#                                          protocol, in a grid of its own)
#   PROTOCOLS   protocols                 (default "${MODE:-lesion_wise_corrective}")
#   FOLDS, TEST_SETS, DATA_ROOT, RESULTS_DIR, SEED, CHECKPOINT   as in common.sh
#   LAUNCHER    local (default; hydra-joblib-launcher, JOBS jobs at a time) or slurm (hydra-submitit-launcher:
#               one job array, one GPU per job; see grid_configs/grid_slurm.yaml)
#   JOBS        local jobs at a time      (default 2)
#   THREADS     torch threads per job     (default: 1 local, 8 on SLURM)
#   GRID_ARGS   extra grid overrides, e.g. "hydra.launcher.partition=gpu hydra.launcher.timeout_min=600"
#   REPORT      1 (default) = run `report` at the end; 0 = skip it
# Extra arguments are Hydra overrides of every evaluate run, e.g. model.device=cuda model.precision=bf16.
#
# Examples:
#   MODELS="mois_sam2 sam2 nnunet" FOLDS="1" TEST_SETS="ts1 ts2" evaluation/experiment_launchers/run_benchmark.sh
#   LAUNCHER=slurm GRID_ARGS="hydra.launcher.partition=gpu" evaluation/experiment_launchers/run_benchmark.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

MODELS="${MODELS:-mois_sam2 sam2}"
PROTOCOLS="${PROTOCOLS:-${MODE:-lesion_wise_corrective}}"
LAUNCHER="${LAUNCHER:-local}"
JOBS="${JOBS:-2}"
REPORT="${REPORT:-1}"
PYTHON="${PYTHON:-${REPO_ROOT}/.venv/bin/python}"
[[ -x "${PYTHON}" ]] || PYTHON=python

comma() { local IFS=","; echo "$*"; }

launcher_args=()
case "${LAUNCHER}" in
    local) launcher_args=("hydra.launcher.n_jobs=${JOBS}" "threads=${THREADS:-1}") ;;
    slurm) launcher_args=("--config-name=grid_slurm" "threads=${THREADS:-8}") ;;
    *) echo "run_benchmark: LAUNCHER must be local or slurm, not ${LAUNCHER}" >&2; exit 2 ;;
esac

evaluate_overrides=()
for override in "$@"; do
    evaluate_overrides+=("\"${override//\"/\\\"}\"")
done
shared=("fold=$(comma ${FOLDS})" "test_set=$(comma ${TEST_SETS})" "data_root=${DATA_ROOT}"
        "results_dir=${RESULTS_DIR}" "seed=${SEED}")
[[ -n "${CHECKPOINT}" ]] && shared+=("checkpoint=${CHECKPOINT}")
(( ${#evaluate_overrides[@]} )) && shared+=("evaluate=[$(comma "${evaluate_overrides[@]}")]")

# grid MODELS PROTOCOLS: one multirun
grid() {
    "${PYTHON}" -m mois_sam2_nf.evaluation.grid --multirun "${launcher_args[@]}" "model=$(comma $1)" \
        "protocol=$(comma $2)" "${shared[@]}" ${GRID_ARGS:-}
}

interactive=() automatic=()
for model in ${MODELS}; do
    if [[ "${model}" == "nnunet" ]]; then automatic+=("${model}"); else interactive+=("${model}"); fi
done
status=0
if (( ${#interactive[@]} )); then
    grid "${interactive[*]}" "${PROTOCOLS}" || status=1
fi
if (( ${#automatic[@]} )); then
    grid "${automatic[*]}" "global_non_corrective" || status=1
fi
if [[ "${REPORT}" == "1" ]]; then
    "${MOIS_SAM2_NF}" report "${RESULTS_DIR}" --data-root "${DATA_ROOT}" || status=1
fi
if (( status )); then
    echo "benchmark: a grid job failed (see above); re-run to resume" >&2
    exit 1
fi
echo "benchmark: done -> ${RESULTS_DIR}"
