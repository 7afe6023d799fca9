"""Train the nnU-Net v2 baseline with nnU-Net's own commands (docs/baselines.md, nnU-Net v2).

Layout (``work`` and ``out`` come from the caller; the launcher uses ``data/nnunet`` and
``model_weights_finetuned/nnUNet[_smoke]``)::

    <work>/nnUNet_raw/Dataset501_NF1WBMRI/            export of the raw layout (docs/synthetic_data.md)
    <work>/nnUNet_preprocessed/Dataset501_NF1WBMRI/   plans, preprocessed cases, splits_final.json
    <out>/fold_<k>/                                   nnUNet_results of project fold k (nnU-Net fold k - 1):
        Dataset501_NF1WBMRI/<trainer>__nnUNetPlans__3d_fullres/fold_<k-1>/checkpoint_final.pth
        meta.json                                     what the adapter checks before predicting

Every step is resumable: an existing plan is reused, a finished fold is skipped, an interrupted fold continues from
``checkpoint_latest.pth``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from mois_sam2_nf.atomic import write_json
from mois_sam2_nf.data.nnunet_export import DEFAULT_DATASET_ID, export_nnunet
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.provenance import git_state

#: folder with the project's nnU-Net trainer classes (exported as ``nnUNet_extTrainer``)
TRAINERS_DIR = Path(__file__).resolve().parent / "trainers"
PLANS = "nnUNetPlans"
CONFIGURATION = "3d_fullres"
META_FILE = "meta.json"

_Env = TypeVar("_Env", bound=MutableMapping[str, str])


@dataclass(frozen=True)
class NNUNetMeta:
    """``meta.json`` of one trained fold.

    Attributes:
        dataset: nnU-Net dataset folder name (``Dataset501_NF1WBMRI``).
        trainer, plans, configuration: nnU-Net identifiers of the trained model.
        fold: project fold k; ``nnunet_fold`` = k - 1.
        normalisation: nnU-Net's normalisation scheme(s) from the plans.
        spacing: target spacing of the configuration, nnU-Net axis order ``(z, y, x)`` = nibabel ``(k, j, i)``.
        orientation: how arrays are read (nnU-Net ignores orientation and works on the stored voxel order).
        seed: ``None``: nnU-Net trains unseeded.
        git_commit: commit of this repository when training ran.
    """

    dataset: str
    trainer: str
    plans: str
    configuration: str
    fold: int
    nnunet_fold: int
    normalisation: list[str]
    spacing: list[float]
    orientation: str
    seed: int | None
    git_commit: str | None

    def model_folder(self, fold_dir: str | os.PathLike[str]) -> Path:
        """nnU-Net's trained-model folder (``<trainer>__<plans>__<configuration>``) inside ``fold_dir``."""
        return Path(fold_dir) / self.dataset / f"{self.trainer}__{self.plans}__{self.configuration}"

    @classmethod
    def read(cls, fold_dir: str | os.PathLike[str]) -> NNUNetMeta:
        """Read ``<fold_dir>/meta.json``; :class:`InputError` if it is missing or malformed."""
        path = Path(fold_dir) / META_FILE
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise InputError(f"{path}: missing (train the fold with launchers/train_nnunet.sh)") from None
        except (json.JSONDecodeError, TypeError) as err:
            raise InputError(f"{path}: not an nnU-Net meta file ({err})") from None


def with_project_trainers(env: _Env) -> _Env:
    """Add :data:`TRAINERS_DIR` to ``env["nnUNet_extTrainer"]`` (kept paths first); returns ``env``.

    nnU-Net looks trainer classes up by name both to train and to rebuild a trained network for inference.
    """
    paths = [p for p in env.get("nnUNet_extTrainer", "").split(os.pathsep) if p]
    if str(TRAINERS_DIR) not in paths:
        env["nnUNet_extTrainer"] = os.pathsep.join([*paths, str(TRAINERS_DIR)])
    return env


def nnunet_command(name: str) -> str:
    """Path of an nnU-Net console command, preferring the one installed next to this interpreter."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise InputError(f"{name}: nnU-Net command not found (install the pinned environment with `make venv`)")
    return found


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed with exit code {done.returncode}")


def train_nnunet(
    raw_root: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    folds: tuple[int, ...] = (1, 2, 3),
    splits_dir: str | os.PathLike[str] | None = None,
    smoke: bool = False,
    device: str = "cuda",
    num_processes: int = 4,
    dataset_id: int = DEFAULT_DATASET_ID,
) -> list[Path]:
    """Export, plan/preprocess and train the given project folds; returns the ``fold_<k>`` folders.

    Args:
        raw_root: raw layout (``imagesTr/``, ``labelsTr_instance/``, ...).
        work_dir: holds ``nnUNet_raw`` and ``nnUNet_preprocessed``.
        out_dir: receives ``fold_<k>/`` (nnU-Net results + ``meta.json``).
        folds: project folds (1-based).
        splits_dir: project folds folder; ``None`` = the project's default patient-level folds.
        smoke: train with ``nnUNetTrainer_Smoke`` (2 epochs x 4 iterations) instead of ``nnUNetTrainer``.
        device: ``cuda``, ``cpu`` or ``mps`` (nnU-Net's ``-device``).
        num_processes: preprocessing workers (``-np``); 0-1 on small machines.
    """
    work, out = Path(work_dir), Path(out_dir)
    raw_dir, preprocessed = work / "nnUNet_raw", work / "nnUNet_preprocessed"
    dataset = export_nnunet(raw_root, raw_dir, dataset_id=dataset_id, splits_dir=splits_dir, include_test_sets=False)
    env = with_project_trainers(os.environ | {
        "nnUNet_raw": str(raw_dir.resolve()),
        "nnUNet_preprocessed": str(preprocessed.resolve()),
    })
    plans_file = preprocessed / dataset.name / f"{PLANS}.json"
    if not plans_file.is_file():
        _run([nnunet_command("nnUNetv2_plan_and_preprocess"), "-d", str(dataset_id), "-c", CONFIGURATION,
              "--verify_dataset_integrity", "-np", str(max(1, num_processes))], env)
    shutil.copyfile(dataset / "splits_final.json", preprocessed / dataset.name / "splits_final.json")
    plans = json.loads(plans_file.read_text(encoding="utf-8"))["configurations"][CONFIGURATION]
    trainer = "nnUNetTrainer_Smoke" if smoke else "nnUNetTrainer"
    written = []
    for fold in folds:
        fold_dir = out / f"fold_{fold}"
        meta = NNUNetMeta(dataset=dataset.name, trainer=trainer, plans=PLANS, configuration=CONFIGURATION, fold=fold,
                          nnunet_fold=fold - 1, normalisation=list(plans["normalization_schemes"]),
                          spacing=[float(s) for s in plans["spacing"]],
                          orientation="stored voxel order, read as (k, j, i) like SimpleITK",
                          seed=None, git_commit=git_state()["git_commit"])
        trained = meta.model_folder(fold_dir) / f"fold_{fold - 1}"
        if not (trained / "checkpoint_final.pth").is_file():
            command = [nnunet_command("nnUNetv2_train"), str(dataset_id), CONFIGURATION, str(fold - 1),
                       "-tr", trainer, "-device", device]
            if (trained / "checkpoint_latest.pth").is_file():
                command.append("--c")
            train_env = env | {"nnUNet_results": str(fold_dir.resolve())}
            if device == "cpu":  # augmentation in the training process (no worker pool) on small CPU machines
                train_env.setdefault("nnUNet_n_proc_DA", "0")
            _run(command, train_env)
        write_json(fold_dir / META_FILE, asdict(meta))
        written.append(fold_dir)
    return written
