"""The benchmark grid (Hydra multirun, local joblib launcher): one run folder per grid point, one report over all of
them, and a grid re-submitted after a job was killed midway computes only the missing cases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from evaluation_cases import COHORT, make_cohort
from mois_sam2_nf.cli.main import main

GRID = [sys.executable, "-m", "mois_sam2_nf.evaluation.grid", "--multirun", "test_set=ts1", "fold=1",
        "data_root=raw", "results_dir=results", 'evaluate=["data.splits_dir=none","metrics.min_volume_ml=0"]']
#: a grid job whose process is killed (SIGKILL) while its second case runs (joblib runs a single job in-process)
KILLED_JOB = """
import os, signal, sys
from mois_sam2_nf.evaluation import runner
from mois_sam2_nf.evaluation.grid import run_grid_point
evaluate_case = runner._Run.evaluate_case
calls = []
def dies_on_the_second_case(self, segmenter, case):
    calls.append(case.case_id)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    evaluate_case(self, segmenter, case)
runner._Run.evaluate_case = dies_on_the_second_case
run_grid_point()
"""


def _grid(cwd: Path, *args: str, code: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", code, *GRID[3:], *args] if code else [*GRID, *args]
    env = os.environ | {"OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def _done(results: Path) -> dict[str, dict[str, float]]:
    """run id -> case id -> mtime of the case's metrics.csv."""
    return {run.name: {case.name: (case / "metrics.csv").stat().st_mtime for case in (run / "cases").iterdir()
                       if (case / "metrics.csv").is_file()}
            for run in results.iterdir() if (run / "cases").is_dir()}


@pytest.mark.timeout(900)
def test_grid_runs_one_job_per_point_resumes_a_killed_job_and_reports_all(tmp_path: Path) -> None:
    make_cohort(tmp_path / "raw")
    results = tmp_path / "results"
    killed = _grid(tmp_path, "model=oracle", "hydra.launcher.n_jobs=1", code=KILLED_JOB)
    assert killed.returncode != 0
    [(oracle_run, before)] = _done(results).items()
    assert len(before) == 1  # the first case finished, the second was killed, the third never started

    grid = _grid(tmp_path, "model=oracle,imperfect_oracle")
    assert grid.returncode == 0, grid.stderr[-2000:]
    assert "launching 2 jobs" in grid.stdout + grid.stderr
    assert f"grid: {oracle_run}: 2 case(s) evaluated, 1 already done" in grid.stdout
    after = _done(results)
    assert len(after) == 2 and all(len(cases) == len(COHORT) for cases in after.values())
    finished = next(iter(before))
    assert after[oracle_run][finished] == before[finished]  # not recomputed

    again = _grid(tmp_path, "model=oracle,imperfect_oracle")
    assert again.returncode == 0 and again.stdout.count("0 case(s) evaluated, 3 already done") == 2
    assert _done(results) == after

    assert main(["report", str(results), "--data-root", str(tmp_path / "raw")]) == 0
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary["model"]) == {"oracle", "imperfect_oracle"}
