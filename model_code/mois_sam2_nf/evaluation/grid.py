"""One job of the benchmark grid (``grid_configs/grid.yaml``): a Hydra multirun task that runs one ``evaluate`` run.

A grid point is ``(model, fold, test_set, protocol)``; the job turns it into the overrides of
:func:`mois_sam2_nf.evaluation.runner.evaluate` and runs it. The runner skips finished cases (``metrics.csv`` is
written last and atomically), so jobs are idempotent: a killed job leaves only whole cases, and re-submitting the grid
computes the missing ones. Results land in the usual layout (``<results_dir>/<run_id>/...``); ``mois-sam2-nf report``
reads them all. Hydra's own per-job logs go to ``<results_dir>/.grid/``.

Run as ``python -m mois_sam2_nf.evaluation.grid --multirun key=v1,v2 ...`` (see the YAML); paths are relative to the
directory the grid is launched from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from mois_sam2_nf.evaluation.runner import evaluate

CONFIG_DIR = Path(__file__).resolve().parent / "grid_configs"


def grid_point_overrides(point: DictConfig | dict[str, Any], launch_dir: Path) -> list[str]:
    """``evaluate`` overrides of one grid point.

    Args:
        point: the job's config (keys of ``grid.yaml``).
        launch_dir: directory the grid was launched from; relative ``data_root`` / ``results_dir`` are resolved
            against it (a SLURM job may start elsewhere).

    Returns:
        Hydra overrides, e.g. ``["model=sam2", "protocol=...", "data.root=/abs/raw", ..., "++model.checkpoint=..."]``;
        a ``checkpoint`` with ``{fold}`` becomes a ``${fold}`` interpolation, so the folds of one configuration share
        their config hash (as in ``common.sh``).
    """
    overrides = [
        f"model={point['model']}",
        f"protocol={point['protocol']}",
        f"data.root={launch_dir / str(point['data_root'])}",
        f"data.test_set={point['test_set']}",
        f"fold={int(point['fold'])}",
        f"results_dir={launch_dir / str(point['results_dir'])}",
        f"seed={int(point['seed'])}",
        "progress=false",
    ]
    if point.get("checkpoint"):
        overrides.append("++model.checkpoint=" + str(point["checkpoint"]).replace("{fold}", "${fold}"))
    return overrides + [str(extra) for extra in point.get("evaluate") or []]


@hydra.main(config_path=str(CONFIG_DIR), config_name="grid", version_base="1.3")
def run_grid_point(config: DictConfig) -> dict[str, Any]:
    """Evaluate one grid point; returns (and prints) what it computed and skipped."""
    import torch

    torch.set_num_threads(int(config.threads))
    launch_dir = Path(hydra.utils.get_original_cwd()) if HydraConfig.initialized() else Path.cwd()
    result = evaluate(grid_point_overrides(config, launch_dir))
    summary = {"run_id": result.run_id, "computed": len(result.computed), "skipped": len(result.skipped),
               "done": result.n_cases_done}
    print(f"grid: {result.run_id}: {summary['computed']} case(s) evaluated, {summary['skipped']} already done")
    return summary


if __name__ == "__main__":
    run_grid_point()
