"""The resumable evaluation runner behind ``mois-sam2-nf evaluate``.

Protocols and result files: docs/evaluation_protocol.md.

One run = one (model, mode, test set, fold, config). The config is composed with Hydra's compose API from the
package's ``configs/evaluate.yaml`` plus command-line overrides (no working-directory change, no Hydra output
folders). Relative paths (``data.root``, ``data.splits_dir``, ``results_dir``, ``model.checkpoint``) are relative to
the current directory.

Per case (skipped when ``cases/<case>/metrics.csv`` exists, unless ``overwrite``):

1. load and validate the image and label (one :class:`InputError` line on a corrupt file or a grid mismatch);
2. plan the prompted targets and run the protocol;
3. save the prediction as uint8 ``predictions/<case>.nii.gz`` with the image's header, read it back (validated)
   and compute the final metrics from the saved file;
4. write ``interactions.csv``, ``lesions.csv`` (for ``prompted_lesion_sweep`` also ``sweep.csv``: the final metrics
   of the prediction after each number of prompted lesions) and, last, ``metrics.csv`` atomically.

Afterwards the run-level CSVs and ``manifest.json`` are rewritten from all finished cases of the run folder (also
those of other shards), and ``<results_dir>/summary.csv`` is updated. Cases are split over shards round-robin in
sorted order (``--shard i/n``, 1-based).
"""

from __future__ import annotations

import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mois_sam2_nf.data.eval_sets import EvalSet, parse_eval_set
from mois_sam2_nf.data.io import Volume, load_label, load_nifti, save_nifti
from mois_sam2_nf.data.layout import CaseFiles, load_patient_map, select_sets
from mois_sam2_nf.data.splits import read_fold
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.clicks import ClickConfig
from mois_sam2_nf.segmenters import InteractiveSegmenter, Scan, create_segmenter
from mois_sam2_nf.evaluation.manifest import build_manifest, run_id as make_run_id, sha256_file, sha256_tree
from mois_sam2_nf.evaluation.metrics import MetricConfig, case_metrics, noc
from mois_sam2_nf.evaluation.protocols import CaseOutcome, ProtocolConfig, prompted_lesion_dice, run_protocol
from mois_sam2_nf.evaluation.results import (
    DONE_FILE,
    MANIFEST_FILE,
    SWEEP_METRICS,
    case_dir,
    concatenate_run,
    done_cases,
    is_case_done,
    relative_prediction_path,
    update_summary,
    write_case_tables,
)
from mois_sam2_nf.evaluation.targets import PromptPlan, plan_targets
from mois_sam2_nf.atomic import write_json

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
CONFIG_NAME = "evaluate"


def compose_config(overrides: Sequence[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """``configs/evaluate.yaml`` with Hydra ``overrides`` as plain dicts ``(resolved, unresolved)``.

    The unresolved form keeps interpolations such as ``model.checkpoint=.../fold_${fold}/checkpoint.pt`` literal; it
    feeds the config hash, so the runs of one configuration share their hash across folds.
    """
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from mois_sam2_nf.hydra_compose import compose_isolated, config_dict

    try:
        config = compose_isolated(CONFIG_DIR, CONFIG_NAME, overrides)
        return config_dict(config, resolve=True), config_dict(config, resolve=False)
    except (HydraException, OmegaConfBaseException) as err:
        raise InputError(f"evaluate config: {str(err).splitlines()[0]}") from None


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (1-based, ``1 <= i <= n``) -> ``(i, n)``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise InputError(f"--shard {text!r}: expected i/n with 1 <= i <= n (e.g. 1/4)")
    return int(match.group(1)), int(match.group(2))


def resolve_eval_set(value: object) -> EvalSet:
    """``data.test_set`` parsed (:func:`parse_eval_set`); a bad value is an :class:`InputError` naming the key."""
    try:
        return parse_eval_set(value)
    except InputError as err:
        raise InputError(f"data.test_set: {err}") from None


def resolve_cases(root: Path, test_set: str, splits_dir: Path) -> list[CaseFiles]:
    """Cases of ``test_set``: ``ts<k>`` = ``imagesTs_<k>``; ``val_<k>`` = fold k's ``val_set.txt`` in ``imagesTr``."""
    eval_set = resolve_eval_set(test_set)
    in_folder = list(select_sets(root, [eval_set.image_folder])[0].cases)
    if eval_set.kind == "test":
        cases = in_folder
    else:
        wanted = read_fold(splits_dir, eval_set.index).val
        available = {c.case_id: c for c in in_folder}
        missing = [c for c in wanted if c not in available]
        if missing:
            raise InputError(f"{splits_dir}/fold_{eval_set.index}: validation case {missing[0]} not in "
                             f"{root / eval_set.image_folder}")
        cases = [available[c] for c in wanted]
    if not cases:
        raise InputError(f"{root}: test set {test_set} has no images")
    unlabelled = [c for c in cases if c.label is None]
    if unlabelled:
        raise InputError(f"{unlabelled[0].image}: label file missing")
    return sorted(cases, key=lambda c: c.case_id)


def _patient_map(root: Path) -> dict[str, str]:
    """Case -> patient from ``patients.csv`` (empty when the file is absent)."""
    if not (root / "patients.csv").is_file():
        return {}
    return load_patient_map(root)


@dataclass(frozen=True)
class RunResult:
    """What one call of :func:`evaluate` did.

    Attributes:
        run_id: the run folder name.
        run_dir: the run folder.
        computed: cases evaluated by this call.
        skipped: cases of this shard already finished (resumed).
        n_cases_done: finished cases in the run folder after this call (all shards).
    """

    run_id: str
    run_dir: Path
    computed: list[str]
    skipped: list[str]
    n_cases_done: int


class _Run:
    """One evaluation run: configuration, data, segmenter and output folder."""

    def __init__(self, config: dict[str, Any], unresolved: dict[str, Any], command: str) -> None:
        self.config, self.command = config, command
        data = config["data"]
        self.root, self.splits_dir = Path(data["root"]), Path(data["splits_dir"])
        self.test_set = resolve_eval_set(data["test_set"]).name
        self.fold, self.seed = int(config["fold"]), int(config["seed"])
        self.protocol = ProtocolConfig(**config["protocol"])
        self.clicks = ClickConfig(**_tuples(config["click"]))
        self.metrics = MetricConfig(**config["metrics"])
        self.model_options = {k: v for k, v in config["model"].items() if k not in ("name", "label")}
        # the adapter is looked up by `name`; run ids and CSVs use `label` (a variant of a model, e.g. an ablation)
        self.adapter_name = str(config["model"]["name"])
        self.model_name = str(config["model"].get("label") or self.adapter_name)
        self.progress = bool(config.get("progress", True))
        self.run_id = make_run_id(self.model_name, self.protocol.mode, self.test_set, self.fold, unresolved)
        self.run_dir = Path(config["results_dir"]) / self.run_id
        self.cases = resolve_cases(self.root, self.test_set, self.splits_dir)
        if data.get("cases"):
            wanted = set(map(str, data["cases"]))
            unknown = sorted(wanted - {c.case_id for c in self.cases})
            if unknown:
                raise InputError(f"data.cases: {unknown[0]} is not in test set {self.test_set}")
            self.cases = [c for c in self.cases if c.case_id in wanted]
        self.patients = _patient_map(self.root)

    def identifiers(self, case_id: str) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "model": self.model_name, "mode": self.protocol.mode, "test_set": self.test_set,
            "fold": self.fold, "case_id": case_id, "patient_id": self.patients.get(case_id, ""),
        }

    def write_manifest(self) -> int:
        """(Re)write ``manifest.json``; returns the number of finished cases."""
        n_done = len(done_cases(self.run_dir))
        checkpoint = self.model_options.get("checkpoint")
        manifest = build_manifest(
            run_id=self.run_id,
            command=self.command,
            config=self.config,
            checkpoint=str(checkpoint) if checkpoint else None,
            data={
                "root": str(self.root),
                "test_set": self.test_set,
                "fold": self.fold,
                "case_ids": [c.case_id for c in self.cases],
                "splits_sha256": sha256_tree(self.splits_dir),
                "patients_csv_sha256": sha256_file(self.root / "patients.csv"),
            },
            n_cases_done=n_done,
        )
        write_json(self.run_dir / MANIFEST_FILE, manifest)
        return n_done

    def evaluate_case(self, segmenter: InteractiveSegmenter, case: CaseFiles) -> None:
        """Run the protocol on one case and write its prediction and three CSV files.

        A previous ``metrics.csv`` is removed first, so a recomputation that fails leaves the case marked unfinished.
        """
        start = time.perf_counter()
        (case_dir(self.run_dir, case.case_id) / DONE_FILE).unlink(missing_ok=True)
        image = load_nifti(case.image)
        label = load_label(case.require_label(), image=image)
        view = ScanView.from_affine(image.affine, image.array.shape)
        voxel_ml = image.voxel_volume_mm3 / 1000.0
        gt = label.array > 0
        plan = plan_targets(label.array, view, self.protocol.num_lesions, self.protocol.lesion_order, voxel_ml)
        scan = Scan(case_id=case.case_id, image=image.array, affine=image.affine, view=view, label=label.array)
        spacing = image.zooms
        ids = self.identifiers(case.case_id)
        sweep: list[dict[str, Any]] = []

        def after_target(k: int, prediction: np.ndarray) -> None:
            values = case_metrics(gt, prediction, spacing, self.metrics)[0]
            sweep.append({**ids, "n_prompted": k, **{name: values[name] for name in SWEEP_METRICS}})

        segmenter.start_scan(scan)
        try:
            outcome = run_protocol(segmenter, scan, gt, plan, self.protocol, self.clicks, seed=self.seed,
                                   voxel_volume_ml=voxel_ml, progress=self.progress, on_prompted=after_target)
        finally:
            segmenter.end_scan()
        prediction_file = relative_prediction_path(case.case_id)
        saved = self._save_prediction(image, outcome.prediction, self.run_dir / prediction_file)
        metrics, lesions = case_metrics(gt, saved, spacing, self.metrics, prompt_ranks=plan.rank_map)
        row = {**ids, **metrics, **self._bookkeeping(outcome, plan, gt, spacing, metrics)}
        row["runtime_s"] = time.perf_counter() - start
        row["prediction_file"] = prediction_file.as_posix()
        steps = [{**ids, **step.as_row()} for step in outcome.steps]
        lesion_rows = [{"run_id": self.run_id, "case_id": case.case_id, **lesion} for lesion in lesions]
        write_case_tables(self.run_dir, case.case_id, steps, lesion_rows, row,
                          sweep=sweep if self.protocol.sweep else None)

    def _save_prediction(self, image: Volume, prediction: np.ndarray, path: Path) -> np.ndarray:
        """Write the uint8 prediction with the image header, read it back through the label validator."""
        save_nifti(path, prediction.astype(np.uint8), image.affine, like=image.header,
                   descrip=f"mois-sam2-nf {self.model_name} {self.protocol.mode}")
        saved = load_label(path, image=image).array
        if saved.size and saved.max() > 1:
            raise InputError(f"{path}: prediction values must be 0 or 1 (found {saved.max()})")
        return saved > 0

    def _bookkeeping(
        self, outcome: CaseOutcome, plan: PromptPlan, gt: np.ndarray, spacing: tuple[float, float, float],
        metrics: dict[str, Any],
    ) -> dict[str, Any]:
        """Counts, flooding, scan Dice before propagation and NoC columns of ``case_metrics.csv``."""
        before = outcome.prediction_before_propagation
        if np.array_equal(before, outcome.prediction):
            scan_dice_before = metrics["scan_dice"]
        else:
            scan_dice_before = case_metrics(gt, before, spacing, self.metrics)[0]["scan_dice"]
        curve = outcome.scan_dice_curve
        global_corrective = self.protocol.mode == "global_corrective"
        budget = self.protocol.max_interactions
        return {
            "n_prompted": plan.n_targets if self.protocol.lesion_wise else 0,
            "n_interactions": outcome.n_interactions,
            "n_clicks": outcome.n_clicks,
            "max_slice_fraction": outcome.max_slice_fraction if self.protocol.lesion_wise else None,
            "prompted_lesion_dice": prompted_lesion_dice(outcome.steps) if self.protocol.lesion_wise else None,
            "scan_dice_before_propagation": scan_dice_before,
            "noc_80": noc(curve, 0.80, budget) if global_corrective else None,
            "noc_85": noc(curve, 0.85, budget) if global_corrective else None,
        }


def _tuples(options: dict[str, Any]) -> dict[str, Any]:
    """YAML lists -> tuples (dataclass fields such as ``patch_size`` are tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def evaluate(
    overrides: Sequence[str] = (),
    *,
    shard: tuple[int, int] = (1, 1),
    overwrite: bool = False,
    command: str | None = None,
) -> RunResult:
    """Evaluate one run (see the module docstring); returns what was computed and skipped.

    Args:
        overrides: Hydra overrides, e.g. ``["model=oracle", "data.root=DIR", "data.test_set=ts1", "fold=1"]``.
        shard: ``(i, n)``: evaluate the cases ``i-1, i-1+n, ...`` of the sorted case list (1-based ``i``).
        overwrite: recompute finished cases.
        command: the command line recorded in the manifest (default: ``sys.argv``).
    """
    index, count = shard
    if not 1 <= index <= count:
        raise InputError(f"--shard {index}/{count}: expected 1 <= i <= n")
    run = _Run(*compose_config(overrides), command or shlex.join(sys.argv))
    mine = run.cases[index - 1 :: count]
    todo = [c for c in mine if overwrite or not is_case_done(run.run_dir, c.case_id)]
    skipped = [c.case_id for c in mine if c not in todo]
    segmenter = create_segmenter(run.adapter_name, **run.model_options) if todo else None
    run.write_manifest()
    if segmenter is not None:
        bar = tqdm(todo, desc=f"{run.run_id} cases", unit="case", disable=not run.progress)
        for case in bar:
            bar.set_postfix_str(case.case_id)
            run.evaluate_case(segmenter, case)
    concatenate_run(run.run_dir)
    n_done = run.write_manifest()
    update_summary(run.run_dir.parent)
    return RunResult(run.run_id, run.run_dir, [c.case_id for c in todo], skipped, n_done)
