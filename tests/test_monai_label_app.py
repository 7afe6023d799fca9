"""MONAI Label app: the real MONAILabelApp with its datastore, driven with 3D Slicer-shaped requests."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monailabel.interfaces.exception import MONAILabelError, MONAILabelException

from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import create_segmenter
from mois_sam2_nf.serving.app import MOISSAM2App
from mois_sam2_nf.serving.requests import PROPAGATED_LABEL, parse_click_request
from mois_sam2_nf.serving.workspace import AnnotationWorkspace, remove_components

pytestmark = pytest.mark.usefixtures("one_torch_thread")

APP_DIR = Path(__file__).resolve().parents[1] / "monai_label_app"
SHAPE = (40, 12, 64)
AFFINE = np.diag([2.0, 4.0, 2.0, 1.0])


def _write_study(folder: Path, name: str, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    image = (rng.random(SHAPE) * 100).astype(np.int16)
    image[10:18, 4:8, 20:30] = 900
    image[26:32, 4:8, 44:52] = 900
    path = folder / f"{name}.nii.gz"
    nib.save(nib.Nifti1Image(image, AFFINE), path)
    return path


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> MOISSAM2App:
    studies = tmp_path_factory.mktemp("studies")
    _write_study(studies, "scan_a", 0)
    _write_study(studies, "scan_b", 1)
    return MOISSAM2App(app_dir=str(APP_DIR), studies=str(studies), conf={"models": "all", "early_stop_k": "2"})


def _answer(app: MOISSAM2App, **request: object) -> tuple[np.ndarray, dict]:
    result = app.infer(dict(request))
    image = nib.load(result["file"])
    np.testing.assert_array_equal(image.affine, AFFINE)
    array = np.asarray(image.dataobj)
    os.unlink(result["file"])  # the HTTP front removes the answer file after sending it; here the test does
    return array, result["params"]


def _invalid(app: MOISSAM2App, match: str, **request: object) -> None:
    with pytest.raises(MONAILabelException) as info:
        app.infer(dict(request))
    assert info.value.error == MONAILabelError.INVALID_INPUT and match in info.value.msg


def test_info_lists_the_four_tasks(app: MOISSAM2App) -> None:
    models = app.info()["models"]
    assert set(models) == {"mois_sam_interaction", "mois_sam_propagation", "remove_propagation_component",
                           "sam2_interaction"}
    assert models["mois_sam_interaction"]["type"] == "deepgrow"
    # a short list without Slicer's "background": segments lesion_1 ... lesion_10, then the propagation, numbered
    # 1 ... 11 in that order, which is how Slicer numbers the saved label's values and its label_info
    assert list(models["mois_sam_interaction"]["labels"]) == [f"lesion_{n}" for n in range(1, 11)]
    assert app.info()["labels"] == [f"lesion_{n}" for n in range(1, 11)] + [PROPAGATED_LABEL]
    assert models["mois_sam_propagation"]["labels"] == {PROPAGATED_LABEL: 11}
    # the demo weights' metadata sets config and normalisation: plain SAM2 runs on [0, 1] frames as it was trained
    assert app.app_config.configs == {"mois_sam2": None, "sam2": None}
    plain = app._infers["sam2_interaction"].workspace.segmenter
    assert plain.imagenet_norm is False and plain.predictor.image_size == 256


def test_click_propagate_and_remove_on_one_image(app: MOISSAM2App, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = app._infers["mois_sam_interaction"].workspace
    calls: list[int] = []
    add_clicks = workspace.segmenter.add_clicks
    monkeypatch.setattr(workspace.segmenter, "add_clicks",
                        lambda lid, clicks: calls.append(lid) or add_clicks(lid, clicks))

    lesion, params = _answer(app, model="mois_sam_interaction", image="scan_a", label="lesion_1",
                             foreground=[[14, 6, 25]], background=[])
    assert lesion.shape == SHAPE and lesion.dtype == np.uint8 and set(np.unique(lesion)) <= {0, 1}
    assert params["label"] == "lesion_1" and params["lesion_id"] == 1 and params["voxels"] == int(lesion.sum())
    again, _ = _answer(app, model="mois_sam_interaction", image="scan_a", label="lesion_1", foreground=[[14, 6, 25]])
    np.testing.assert_array_equal(again, lesion)
    assert calls == [1]                          # an unchanged click list is answered from the stored mask
    _answer(app, model="mois_sam_interaction", image="scan_a", label="lesion_1", foreground=[[14, 6, 25]],
            background=[[2, 2, 2]])
    assert calls == [1, 1] and workspace.clicks[1][-1].positive is False

    propagated, params = _answer(app, model="mois_sam_propagation", image="scan_a")
    assert params["label"] == PROPAGATED_LABEL
    assert not (propagated.astype(bool) & workspace.masks["lesion_1"]).any()  # labelled lesions stay out
    assert workspace.segmenter.session.encode_count == SHAPE[1]  # each coronal slice encoded once over 4 requests

    current = workspace.masks["lesion_1"]
    target = tuple(int(v) for v in np.argwhere(current)[0])
    removed, _ = _answer(app, model="remove_propagation_component", image="scan_a", label="lesion_1",
                         foreground=[], background=[list(target)])
    assert not removed[target] and removed.sum() < current.sum()

    _answer(app, model="mois_sam_interaction", image="scan_b", label="lesion_1", foreground=[[28, 6, 48]])
    assert workspace.image_id.endswith("scan_b.nii.gz") and list(workspace.clicks) == [1]  # new image, new state


def test_bad_requests_give_one_invalid_input_line(app: MOISSAM2App, tmp_path: Path) -> None:
    _invalid(app, "not a study", model="mois_sam_interaction", image="nope", label="lesion_1", foreground=[[1, 1, 1]])
    outside = _write_study(tmp_path, "outside")
    _invalid(app, "not a study", model="mois_sam_interaction", image=str(outside), label="lesion_1",
             foreground=[[1, 1, 1]])
    _invalid(app, "outside the image", model="mois_sam_interaction", image="scan_a", label="lesion_1",
             foreground=[[40, 1, 1]])
    _invalid(app, "not a lesion label", model="mois_sam_interaction", image="scan_a", label="lesion_11",
             foreground=[[1, 1, 1]])
    _invalid(app, "pick one of lesion_1 ... lesion_10", model="mois_sam_interaction", image="scan_a",
             label="background", foreground=[[1, 1, 1]])
    _invalid(app, "foreground (positive)", model="mois_sam_interaction", image="scan_a", label="lesion_2",
             background=[[1, 1, 1]])
    _invalid(app, "[i, j, k]", model="sam2_interaction", image="scan_a", label="lesion_1", foreground=[[1, 1]])
    _invalid(app, "background points", model="remove_propagation_component", image="scan_a", label="lesion_1",
             foreground=[[1, 1, 1]])
    _invalid(app, "has no mask yet", model="remove_propagation_component", image="scan_b",
             label=PROPAGATED_LABEL, background=[[1, 1, 1]])
    with pytest.raises(MONAILabelException) as info:
        MOISSAM2App(app_dir=str(APP_DIR), studies=str(tmp_path), conf={"models": "vista3d"})
    assert info.value.error == MONAILabelError.APP_INIT_ERROR and "vista3d" in info.value.msg


def test_propagation_needs_a_clicked_lesion(tmp_path: Path) -> None:
    segmenter = create_segmenter("mois_sam2", config="mois_sam2_demo", checkpoint=None)
    workspace = AnnotationWorkspace(segmenter)
    path = _write_study(tmp_path, "scan")
    with pytest.raises(InputError, match="click at least one lesion"):
        workspace.propagate(path)
    plain = AnnotationWorkspace(create_segmenter("sam2", config="sam2_demo", checkpoint=None))
    with pytest.raises(InputError, match="does not propagate"):
        plain.propagate(path)


def test_idle_workspace_drops_the_image(tmp_path: Path) -> None:
    torch.manual_seed(0)
    segmenter = create_segmenter("sam2", config="sam2_demo", checkpoint=None)
    workspace = AnnotationWorkspace(segmenter, idle_timeout_s=1.0)
    path = _write_study(tmp_path, "scan")
    clicks = parse_click_request({"label": "lesion_1", "foreground": [[14, 6, 25]]}, SHAPE).clicks
    workspace.segment(path, 1, "lesion_1", clicks)
    assert workspace.image_id == str(path) and segmenter.session is not None
    deadline = time.monotonic() + 10
    while workspace.image_id is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workspace.image_id is None and workspace.masks == {} and segmenter.session is None


def test_remove_components_3d_and_2d() -> None:
    view = ScanView.from_affine(AFFINE, (6, 5, 4))  # j is the anterior axis: coronal slices are constant j
    mask = np.zeros((6, 5, 4), dtype=bool)
    mask[0:2, 0:2, 0:4] = True       # one 3-D component on coronal slices j = 0 and 1
    mask[4:6, 3:5, 1] = True         # a second one
    kept = remove_components(mask, [(0, 0, 0)], view, "3d")
    assert not kept[0:2, 0:2, :].any() and kept[4:6, 3:5, 1].all() and kept.sum() == 4
    kept_2d = remove_components(mask, [(0, 0, 0)], view, "2d")
    assert not kept_2d[0:2, 0, :].any() and kept_2d[0:2, 1, :].all() and kept_2d[4:6, 3:5, 1].all()
    np.testing.assert_array_equal(remove_components(mask, [(3, 3, 3)], view, "3d"), mask)  # background click


class _BrightVoxels:
    """A stand-in segmenter whose lesion mask is the bright voxels of the scan it was started on (content-dependent)."""

    name = "bright_voxels"

    def __init__(self) -> None:
        self.started: list[np.ndarray] = []

    def start_scan(self, scan) -> None:
        self.started.append(np.asarray(scan.image))

    def add_clicks(self, lesion_id: int, clicks) -> np.ndarray:
        return self.started[-1] > 500

    def forget_lesion(self, lesion_id: int) -> None:
        pass

    def end_scan(self) -> None:
        pass


def test_workspace_notices_new_content_under_the_same_path(tmp_path: Path) -> None:
    segmenter = _BrightVoxels()
    workspace = AnnotationWorkspace(segmenter)  # type: ignore[arg-type]
    path = _write_study(tmp_path, "scan", seed=0)
    clicks = parse_click_request({"label": "lesion_1", "foreground": [[14, 6, 25]]}, SHAPE).clicks
    first = workspace.segment(path, 1, "lesion_1", clicks).copy()
    replacement = np.zeros(SHAPE, np.int16)
    replacement[0:4, 0:4, 0:4] = 900
    nib.save(nib.Nifti1Image(replacement, AFFINE), tmp_path / "upload.nii.gz")
    os.replace(tmp_path / "upload.nii.gz", path)  # a re-upload under the same name
    second = workspace.segment(path, 1, "lesion_1", clicks)
    assert len(segmenter.started) == 2 and not np.array_equal(first, second)
    np.testing.assert_array_equal(second, replacement > 500)
    workspace.segment(path, 1, "lesion_1", clicks)
    assert len(segmenter.started) == 2  # unchanged file: the cached scan is kept


def test_app_conf_refuses_a_missing_device_and_bad_label_counts() -> None:
    from mois_sam2_nf.serving.infer_tasks import AppConfig

    with pytest.raises(InputError, match="conf device 'bogus'"):
        AppConfig.from_conf({"device": "bogus"}, APP_DIR.parent)
    for count in ("0", "5000"):
        with pytest.raises(InputError, match="max_lesions"):
            AppConfig.from_conf({"max_lesions": count, "device": "cpu"}, APP_DIR.parent)
    assert AppConfig.from_conf({"max_lesions": "3", "device": "cpu"}, APP_DIR.parent).max_lesions == 3


def test_internal_failure_is_a_500_with_its_message_and_the_front_keeps_serving(
        app: MOISSAM2App, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient
    from monailabel.config import settings
    from monailabel.interfaces.utils import app as app_cache

    from mois_sam2_nf.serving.http import create_app

    monkeypatch.setattr(settings, "MONAI_LABEL_APP_DIR", app.app_dir)
    monkeypatch.setattr(settings, "MONAI_LABEL_STUDIES", app.studies)
    monkeypatch.setitem(app_cache.apps, f"{app.app_dir}{app.studies}", app)
    workspace = app._infers["sam2_interaction"].workspace

    def broken(*args: object) -> np.ndarray:
        raise RuntimeError("out of memory on the test device")

    client = TestClient(create_app(), raise_server_exceptions=False)
    params = {"params": (None, '{"label": "lesion_1", "foreground": [[14, 6, 25]]}')}
    with monkeypatch.context() as failing:
        failing.setattr(workspace, "segment", broken)
        answer = client.post("/infer/sam2_interaction", params={"image": "scan_a", "output": "json"}, files=params)
        assert answer.status_code == 500
        assert answer.json() == {"detail": "internal error (RuntimeError): out of memory on the test device"}
    assert client.get("/info/").status_code == 200
    answer = client.post("/infer/sam2_interaction", params={"image": "scan_a", "output": "json"}, files=params)
    assert answer.status_code == 200 and answer.json()["lesion_id"] == 1
