"""MONAI Label infer tasks for MOIS-SAM2 and SAM2, and the app configuration (model spec section 9).

Tasks (names as the reference app, plus the plain SAM2 one):

- ``mois_sam_interaction`` (deepgrow): labels ``lesion_1 ... lesion_<max_lesions>``; the label's number is the object
  id. ``foreground`` / ``background`` are the label's full click history; the lesion is segmented with full 3-D
  forward and reverse propagation and added to the scan's exemplar bank. Answer: the lesion's binary mask.
- ``mois_sam_propagation`` (segmentation): propagation from the exemplar bank to the unprompted lesions (overlap
  filter of spec 6.4, so labelled lesions stay out). Answer: ``propagated_neurofibromas``.
- ``remove_propagation_component`` (deepgrow, no network): every ``background`` point removes the connected component
  of the label's current mask that contains it (3-D by default, 2-D coronal with ``fp_removal=2d``).
- ``sam2_interaction`` (deepgrow): plain SAM2, same click handling, for comparison.

The three MOIS tasks share one :class:`~mois_sam2_nf.serving.workspace.AnnotationWorkspace`, so the embedding cache,
the exemplar bank and the masks persist across requests on the same image. Bad params become a MONAI Label
``INVALID_INPUT`` error (HTTP 400) with one line naming the problem; answers are NIfTI files in the image's space.
"""

from __future__ import annotations

import os
import tempfile
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import HTTPException
from monailabel.interfaces.exception import MONAILabelError, MONAILabelException
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from mois_sam2_nf.data.io import save_nifti
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.interface import create_segmenter
from mois_sam2_nf.serving.requests import (
    PROPAGATED_LABEL,
    lesion_id,
    lesion_labels,
    parse_click_request,
    request_label,
)
from mois_sam2_nf.serving.workspace import AnnotationWorkspace

#: models the app can serve (``conf models``) and their default checkpoint (relative to the repository root); the
#: config and frame normalisation come from the checkpoint's metadata
MODEL_DEFAULTS: dict[str, str] = {
    "mois_sam2": "model_weights/demo/mois_sam2_demo.pt",
    "sam2": "model_weights/demo/sam2_demo.pt",
}


class RejectedRequest(MONAILabelException, HTTPException):
    """An invalid request: MONAI Label's ``INVALID_INPUT`` error, answered by the server as HTTP 400 with the message
    (MONAI Label itself would answer a bare 500)."""

    def __init__(self, message: str) -> None:
        MONAILabelException.__init__(self, MONAILabelError.INVALID_INPUT, message)
        HTTPException.__init__(self, status_code=400, detail=message)


@dataclass(frozen=True)
class AppConfig:
    """The app's ``--conf`` options (all strings on the command line).

    Attributes:
        models: models to serve (``all`` = every key of :data:`MODEL_DEFAULTS`).
        configs / checkpoints: per model, config name or YAML (``None`` = from the checkpoint's metadata) and
            weights file (relative paths are relative to the repository root).
        device, precision: torch device and ``fp32`` / ``bf16`` (default: cuda + bf16 when available, else cpu + fp32).
        early_stop_k: early stop of propagation (``None`` = exact).
        max_lesions: lesion labels offered (``lesion_1`` ... ``lesion_<max_lesions>``).
        idle_timeout_s: seconds without requests after which an image's caches are dropped.
        fp_removal: ``3d`` or ``2d`` components for ``remove_propagation_component``.
    """

    models: tuple[str, ...]
    configs: dict[str, str | None]
    checkpoints: dict[str, Path]
    device: str
    precision: str
    early_stop_k: int | None
    max_lesions: int
    idle_timeout_s: float
    fp_removal: str

    @classmethod
    def from_conf(cls, conf: Mapping[str, str], repo_root: Path) -> AppConfig:
        """Parse MONAI Label's ``--conf key value`` pairs; :class:`InputError` for unknown models or bad numbers."""
        requested = conf.get("models", "all")
        models = tuple(MODEL_DEFAULTS) if requested == "all" else tuple(m.strip() for m in requested.split(","))
        unknown = [m for m in models if m not in MODEL_DEFAULTS]
        if unknown or not models:
            raise InputError(f"conf models={requested!r}: unknown model(s) {unknown} (choose from all, "
                             f"{', '.join(MODEL_DEFAULTS)})")
        import torch

        cuda = torch.cuda.is_available()
        try:
            early_stop = conf.get("early_stop_k", "none")
            return cls(
                models=models,
                configs={m: conf.get(f"{m}_config") for m in models},
                checkpoints={m: repo_root / conf.get(f"{m}_checkpoint", MODEL_DEFAULTS[m]) for m in models},
                device=conf.get("device", "cuda" if cuda else "cpu"),
                precision=conf.get("precision", "bf16" if cuda else "fp32"),
                early_stop_k=None if early_stop.lower() == "none" else int(early_stop),
                max_lesions=int(conf.get("max_lesions", "100")),
                idle_timeout_s=float(conf.get("idle_timeout", "600")),
                fp_removal=conf.get("fp_removal", "3d"),
            )
        except ValueError as err:
            raise InputError(f"conf: {err}") from None

    def workspace(self, model: str) -> AnnotationWorkspace:
        """Build ``model``'s segmenter (weights loaded now) inside a fresh workspace."""
        segmenter = create_segmenter(model, config=self.configs[model], checkpoint=str(self.checkpoints[model]),
                                     device=self.device, precision=self.precision, early_stop_k=self.early_stop_k)
        return AnnotationWorkspace(segmenter, idle_timeout_s=self.idle_timeout_s,
                                   removal_mode=self.fp_removal)  # type: ignore[arg-type]


class WorkspaceTask(InferTask):
    """An infer task answering from an :class:`AnnotationWorkspace`: validation, timing and the output file.

    Subclasses implement :meth:`run` (request -> ``(label name, bool mask)``); ``request["image"]`` is the image path
    (MONAI Label resolves the datastore id), which also identifies the workspace's current image.
    """

    def __init__(self, workspace: AnnotationWorkspace, type: InferType, labels: Any, description: str) -> None:
        super().__init__(type=type, labels=labels, dimension=3, description=description)
        self.workspace = workspace

    def is_valid(self) -> bool:
        return True

    @abstractmethod
    def run(self, request: Mapping[str, Any], image_path: str) -> tuple[str, np.ndarray, dict[str, Any]]:
        """Return ``(label name, bool (I, J, K) mask, extra answer params)``."""

    def __call__(self, request: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        start = time.perf_counter()
        image_path = str(request.get("image", ""))
        with self.workspace.lock:  # the answer is written in the space of the image it was computed on
            try:
                label, mask, extra = self.run(request, image_path)
            except InputError as err:
                raise RejectedRequest(str(err)) from None
            image = self.workspace.image
            handle, path = tempfile.mkstemp(suffix=".nii.gz", prefix="mois_sam2_nf_")
            os.close(handle)
            save_nifti(path, mask.astype(np.uint8), image.affine, like=image.header)
        params = {"label": label, "label_names": {label: 1}, "voxels": int(mask.sum()),
                  "latency_s": round(time.perf_counter() - start, 3)} | extra
        return path, params


class LesionInteractionTask(WorkspaceTask):
    """One lesion per label from its full click history (``mois_sam_interaction``, ``sam2_interaction``)."""

    def __init__(self, workspace: AnnotationWorkspace, max_lesions: int, description: str) -> None:
        labels = {"background": 0} | lesion_labels(max_lesions)
        super().__init__(workspace, InferType.DEEPGROW, labels, description)
        self.max_lesions = max_lesions

    def run(self, request: Mapping[str, Any], image_path: str) -> tuple[str, np.ndarray, dict[str, Any]]:
        image = self.workspace.open(image_path)
        clicks = parse_click_request(request, tuple(image.array.shape))
        lesion = lesion_id(clicks.label, self.max_lesions)
        mask = self.workspace.segment(image_path, lesion, clicks.label, clicks.clicks)
        return clicks.label, mask, {"lesion_id": lesion}


class PropagationTask(WorkspaceTask):
    """Exemplar propagation to the unprompted lesions (``mois_sam_propagation``)."""

    def __init__(self, workspace: AnnotationWorkspace) -> None:
        super().__init__(workspace, InferType.SEGMENTATION, {PROPAGATED_LABEL: 1},
                         "MOIS-SAM2: find the unprompted lesions that resemble the clicked ones")

    def run(self, request: Mapping[str, Any], image_path: str) -> tuple[str, np.ndarray, dict[str, Any]]:
        return PROPAGATED_LABEL, self.workspace.propagate(image_path), {}


class ComponentRemovalTask(WorkspaceTask):
    """False-positive removal without a network (``remove_propagation_component``)."""

    def __init__(self, workspace: AnnotationWorkspace, max_lesions: int) -> None:
        labels = {PROPAGATED_LABEL: 1} | {name: n + 1 for name, n in lesion_labels(max_lesions).items()}
        super().__init__(workspace, InferType.DEEPGROW, labels,
                         "Remove the connected components under background clicks from a label")

    def run(self, request: Mapping[str, Any], image_path: str) -> tuple[str, np.ndarray, dict[str, Any]]:
        image = self.workspace.open(image_path)
        clicks = parse_click_request(request, tuple(image.array.shape))
        points = [(c.i, c.j, c.k) for c in clicks.negatives]
        if not points:
            raise InputError(f"{request_label(request)}: place background points on the components to remove")
        return clicks.label, self.workspace.remove(image_path, clicks.label, points), {}


def build_infer_tasks(config: AppConfig) -> dict[str, InferTask]:
    """The app's infer tasks for the configured models (weights are loaded here, once)."""
    builders: dict[str, Callable[[AnnotationWorkspace], dict[str, InferTask]]] = {
        "mois_sam2": lambda ws: {
            "mois_sam_interaction": LesionInteractionTask(
                ws, config.max_lesions, "MOIS-SAM2: segment the lesion under the clicks (one label per lesion)"),
            "mois_sam_propagation": PropagationTask(ws),
            "remove_propagation_component": ComponentRemovalTask(ws, config.max_lesions),
        },
        "sam2": lambda ws: {
            "sam2_interaction": LesionInteractionTask(
                ws, config.max_lesions, "SAM2: segment the lesion under the clicks (one label per lesion)"),
        },
    }
    tasks: dict[str, InferTask] = {}
    for model in config.models:
        tasks |= builders[model](config.workspace(model))
    return tasks
