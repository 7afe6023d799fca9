"""MONAI Label infer tasks for MOIS-SAM2 and SAM2, and the app configuration (docs/architecture.md, MONAI Label app).

Tasks (names as the reference app, plus the plain SAM2 one):

- ``mois_sam_interaction`` (deepgrow): labels ``lesion_1 ... lesion_<max_lesions>`` (no ``background``: Slicer would
  offer it as a label to click on); the label's number is the object id. ``foreground`` / ``background`` are the
  label's full click history; the lesion is segmented with full 3-D forward and reverse propagation and added to the
  scan's exemplar bank. Answer: the lesion's binary mask.
- ``mois_sam_propagation`` (segmentation): propagation from the exemplar bank to the unprompted lesions (overlap
  filter, so labelled lesions stay out). Answer: ``propagated_neurofibromas``; before any lesion is clicked (Slicer's
  auto-run on "Next Sample") an empty mask and a ``message`` saying what to do.
- ``remove_propagation_component`` (deepgrow, no network): every ``background`` point removes the connected component
  of the label's current mask that contains it (3-D by default, 2-D coronal with ``fp_removal=2d``).
- ``sam2_interaction`` (deepgrow): plain SAM2, same click handling, for comparison.

The three MOIS tasks share one :class:`~mois_sam2_nf.serving.workspace.AnnotationWorkspace`, so the embedding cache,
the exemplar bank and the masks persist across requests on the same image. A request is validated completely (params,
points against the image header's shape) before it waits for the workspace, so a bad request is answered at once even
while a click is being computed; bad params become a :class:`~mois_sam2_nf.serving.errors.RejectedRequest` (HTTP 400)
with one line naming the problem; answers are NIfTI files in the image's space (same qform/sform and codes).
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
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from mois_sam2_nf.data.io import nifti_shape, save_nifti
from mois_sam2_nf.devices import check_device
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import create_segmenter
from mois_sam2_nf.models.interactive import apply_threads, conf_overrides, interactive_settings
from mois_sam2_nf.serving.errors import RejectedRequest
from mois_sam2_nf.serving.requests import (
    PROPAGATED_LABEL,
    ClickRequest,
    lesion_id,
    lesion_labels,
    parse_click_request,
    request_label,
)
from mois_sam2_nf.serving.workspace import AnnotationWorkspace, NoLesionClicked

#: models the app can serve (``conf models``) and their default checkpoint (relative to the repository root); the
#: config and frame normalisation come from the checkpoint's metadata
MODEL_DEFAULTS: dict[str, str] = {
    "mois_sam2": "model_weights/demo/mois_sam2_demo.pt",
    "sam2": "model_weights/demo/sam2_demo.pt",
}
#: default and largest number of lesion labels offered (``conf max_lesions``)
DEFAULT_MAX_LESIONS = 10
LIMIT_MAX_LESIONS = 1000


def app_labels(max_lesions: int) -> dict[str, int]:
    """The labels the app offers, in Slicer's segment order: ``lesion_1 ... lesion_<n>`` (values 1 ... n), then
    ``propagated_neurofibromas`` (n + 1). Slicer numbers saved segments in this order, so ``label_info`` indices
    match the saved voxel values."""
    return lesion_labels(max_lesions) | {PROPAGATED_LABEL: max_lesions + 1}


@dataclass(frozen=True)
class AppConfig:
    """The app's ``--conf`` options (all strings on the command line).

    Attributes:
        models: models to serve (``all`` = every key of :data:`MODEL_DEFAULTS`).
        configs / checkpoints: per model, config name or YAML (``None`` = from the checkpoint's metadata) and
            weights file (relative paths are relative to the repository root).
        device, precision: torch device and ``fp32`` / ``bf16`` (default: cuda + bf16 when available, else cpu + fp32).
        speed, speed_overrides: speed profile of the SAM2-family models (``interactive`` = the shortcuts of
            ``models/interactive.yaml``, ``exact`` = none;
            :func:`~mois_sam2_nf.models.interactive.interactive_settings`)
            and the ``--conf`` values that override that YAML (``early_stop_k``, ``correction_reuse_k``,
            ``cache_dtype``, ``threads``; ``none`` = null). On CPU ``precision`` defaults to the YAML's.
        max_lesions: lesion labels offered (``lesion_1`` ... ``lesion_<max_lesions>``; default
            :data:`DEFAULT_MAX_LESIONS`, at most :data:`LIMIT_MAX_LESIONS`).
        idle_timeout_s: seconds without requests after which an image's caches are dropped.
        fp_removal: ``3d`` or ``2d`` components for ``remove_propagation_component``.
    """

    models: tuple[str, ...]
    configs: dict[str, str | None]
    checkpoints: dict[str, Path]
    device: str
    precision: str
    speed: str
    speed_overrides: tuple[str, ...]
    max_lesions: int
    idle_timeout_s: float
    fp_removal: str

    @classmethod
    def from_conf(cls, conf: Mapping[str, str], repo_root: Path) -> AppConfig:
        """Parse MONAI Label's ``--conf key value`` pairs; :class:`InputError` for unknown models, a device this machine
        lacks, or bad numbers."""
        requested = conf.get("models", "all")
        models = tuple(MODEL_DEFAULTS) if requested == "all" else tuple(m.strip() for m in requested.split(","))
        unknown = [m for m in models if m not in MODEL_DEFAULTS]
        if unknown or not models:
            raise InputError(f"conf models={requested!r}: unknown model(s) {unknown} (choose from all, "
                             f"{', '.join(MODEL_DEFAULTS)})")
        import torch

        cuda = torch.cuda.is_available()
        try:
            speed, speed_overrides = conf.get("speed", "interactive"), conf_overrides(conf)
            cpu_precision = interactive_settings("mois_sam2", speed, speed_overrides).options.get("precision", "fp32")
            max_lesions = int(conf.get("max_lesions", str(DEFAULT_MAX_LESIONS)))
            config = cls(
                models=models,
                configs={m: conf.get(f"{m}_config") for m in models},
                checkpoints={m: repo_root / conf.get(f"{m}_checkpoint", MODEL_DEFAULTS[m]) for m in models},
                device=check_device(conf.get("device", "cuda" if cuda else "cpu"), "conf device"),
                precision=conf.get("precision", "bf16" if cuda else cpu_precision),
                speed=speed,
                speed_overrides=speed_overrides,
                max_lesions=max_lesions,
                idle_timeout_s=float(conf.get("idle_timeout", "600")),
                fp_removal=conf.get("fp_removal", "3d"),
            )
        except ValueError as err:
            raise InputError(f"conf: {err}") from None
        if not 1 <= config.max_lesions <= LIMIT_MAX_LESIONS:
            raise InputError(f"conf max_lesions={config.max_lesions}: expected 1 ... {LIMIT_MAX_LESIONS}")
        return config

    def workspace(self, model: str) -> AnnotationWorkspace:
        """Build ``model``'s segmenter (weights loaded now) inside a fresh workspace."""
        settings = interactive_settings(model, self.speed, self.speed_overrides)
        apply_threads(settings.threads)
        segmenter = create_segmenter(model, config=self.configs[model], checkpoint=str(self.checkpoints[model]),
                                     device=self.device, **(settings.options | {"precision": self.precision}))
        return AnnotationWorkspace(segmenter, idle_timeout_s=self.idle_timeout_s,
                                   removal_mode=self.fp_removal)  # type: ignore[arg-type]


class WorkspaceTask(InferTask):
    """An infer task answering from an :class:`AnnotationWorkspace`: validation, timing and the output file.

    Subclasses implement :meth:`check` (request + image shape -> validated arguments; no model, no lock) and
    :meth:`run` (validated arguments -> ``(label name, bool mask, extra answer params)`` under the workspace's lock).
    ``request["image"]`` is the image path (a datastore study or a session upload, resolved by the app), which also
    identifies the workspace's current image.
    """

    def __init__(self, workspace: AnnotationWorkspace, type: InferType, labels: Any, description: str) -> None:
        super().__init__(type=type, labels=labels, dimension=3, description=description)
        self.workspace = workspace

    def is_valid(self) -> bool:
        return True

    @abstractmethod
    def check(self, request: Mapping[str, Any], shape: tuple[int, int, int]) -> Any:
        """Validate ``request`` for an image of ``shape`` ``(I, J, K)``; :class:`InputError` for a bad request."""

    @abstractmethod
    def run(self, checked: Any, image_path: str) -> tuple[str, np.ndarray, dict[str, Any]]:
        """Return ``(label name, bool (I, J, K) mask, extra answer params)`` for the output of :meth:`check`."""

    def __call__(self, request: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        start = time.perf_counter()
        image_path = str(request.get("image", ""))
        try:
            checked = self.check(request, nifti_shape(image_path))
            with self.workspace.lock:  # the answer is written in the space of the image it was computed on
                label, mask, extra = self.run(checked, image_path)
                image = self.workspace.image
                assert image is not None  # set by run()
                handle, path = tempfile.mkstemp(suffix=".nii.gz", prefix="mois_sam2_nf_")
                os.close(handle)
                try:
                    save_nifti(path, mask.astype(np.uint8), image.affine, like=image.header)
                except BaseException:
                    os.unlink(path)
                    raise
        except InputError as err:
            raise RejectedRequest(str(err)) from None
        params = {"label": label, "label_names": {label: 1}, "voxels": int(mask.sum()),
                  "latency_s": round(time.perf_counter() - start, 3)} | extra
        return path, params


class LesionInteractionTask(WorkspaceTask):
    """One lesion per label from its full click history (``mois_sam_interaction``, ``sam2_interaction``)."""

    def __init__(self, workspace: AnnotationWorkspace, max_lesions: int, description: str) -> None:
        super().__init__(workspace, InferType.DEEPGROW, lesion_labels(max_lesions), description)
        self.max_lesions = max_lesions

    def check(self, request: Mapping[str, Any], shape: tuple[int, int, int]) -> tuple[ClickRequest, int]:
        clicks = parse_click_request(request, shape)
        lesion = lesion_id(clicks.label, self.max_lesions)
        clicks.require_foreground()
        return clicks, lesion

    def run(self, checked: tuple[ClickRequest, int], image_path: str) -> tuple[str, np.ndarray, dict[str, Any]]:
        clicks, lesion = checked
        mask = self.workspace.segment(image_path, lesion, clicks.label, clicks.clicks)
        return clicks.label, mask, {"lesion_id": lesion}


class PropagationTask(WorkspaceTask):
    """Exemplar propagation to the unprompted lesions (``mois_sam_propagation``)."""

    def __init__(self, workspace: AnnotationWorkspace, max_lesions: int) -> None:
        super().__init__(workspace, InferType.SEGMENTATION, {PROPAGATED_LABEL: max_lesions + 1},
                         "MOIS-SAM2: find the unprompted lesions that resemble the clicked ones")

    def check(self, request: Mapping[str, Any], shape: tuple[int, int, int]) -> tuple[int, int, int]:
        return shape

    def run(self, checked: tuple[int, int, int], image_path: str) -> tuple[str, np.ndarray, dict[str, Any]]:
        try:
            return PROPAGATED_LABEL, self.workspace.propagate(image_path), {}
        except NoLesionClicked as nothing:
            self.workspace.open(image_path)  # the empty answer is written in this image's space
            return PROPAGATED_LABEL, np.zeros(checked, dtype=bool), {"message": str(nothing)}


class ComponentRemovalTask(WorkspaceTask):
    """False-positive removal without a network (``remove_propagation_component``)."""

    def __init__(self, workspace: AnnotationWorkspace, max_lesions: int) -> None:
        super().__init__(workspace, InferType.DEEPGROW, app_labels(max_lesions),
                         "Remove the connected components under background clicks from a label")

    def check(self, request: Mapping[str, Any], shape: tuple[int, int, int]) -> tuple[str, list[tuple[int, int, int]]]:
        clicks = parse_click_request(request, shape)
        points = [(c.i, c.j, c.k) for c in clicks.negatives]
        if not points:
            raise InputError(f"{request_label(request)}: place background points on the components to remove")
        return clicks.label, points

    def run(self, checked: tuple[str, list[tuple[int, int, int]]],
            image_path: str) -> tuple[str, np.ndarray, dict[str, Any]]:
        label, points = checked
        return label, self.workspace.remove(image_path, label, points), {}


def build_infer_tasks(config: AppConfig) -> dict[str, InferTask]:
    """The app's infer tasks for the configured models (weights are loaded here, once)."""
    builders: dict[str, Callable[[AnnotationWorkspace], dict[str, InferTask]]] = {
        "mois_sam2": lambda ws: {
            "mois_sam_interaction": LesionInteractionTask(
                ws, config.max_lesions, "MOIS-SAM2: segment the lesion under the clicks (one label per lesion)"),
            "mois_sam_propagation": PropagationTask(ws, config.max_lesions),
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
