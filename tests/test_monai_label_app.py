"""MONAI Label app: the real MONAILabelApp with its datastore, driven with 3D Slicer-shaped requests."""

from __future__ import annotations

import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monailabel.interfaces.exception import MONAILabelError, MONAILabelException

from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.interface import create_segmenter
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
    return np.asarray(image.dataobj), result["params"]


def _invalid(app: MOISSAM2App, match: str, **request: object) -> None:
    with pytest.raises(MONAILabelException) as info:
        app.infer(dict(request))
    assert info.value.error == MONAILabelError.INVALID_INPUT and match in info.value.msg


def test_info_lists_the_four_tasks(app: MOISSAM2App) -> None:
    models = app.info()["models"]
    assert set(models) == {"mois_sam_interaction", "mois_sam_propagation", "remove_propagation_component",
                           "sam2_interaction"}
    assert models["mois_sam_interaction"]["type"] == "deepgrow"
    assert "lesion_100" in models["mois_sam_interaction"]["labels"]
    assert list(models["mois_sam_propagation"]["labels"]) == [PROPAGATED_LABEL]
    # the demo weights' metadata sets config and normalisation: plain SAM2 runs on [0, 1] frames as it was trained
    assert app.app_config.configs == {"mois_sam2": None, "sam2": None}
    plain = app._infers["sam2_interaction"].workspace.segmenter
    assert plain.imagenet_norm is False and plain.predictor.image_size == 256


def test_click_propagate_and_remove_on_one_image(app: MOISSAM2App, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = app._infers["mois_sam_interaction"].workspace
    calls: list[int] = []
    add_clicks = workspace.segmenter.add_clicks
    monkeypatch.setattr(workspace.segmenter, "add_clicks", lambda lid, clicks: calls.append(lid) or add_clicks(lid, clicks))

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
    _invalid(app, "not a lesion label", model="mois_sam_interaction", image="scan_a", label="lesion_101",
             foreground=[[1, 1, 1]])
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


@pytest.mark.slow
def test_server_answers_slicer_requests_over_http(tmp_path: Path) -> None:
    """The start script serves the app: /info/, one click (200 + label file) and one bad point (400 + message)."""
    import os
    import socket
    import subprocess
    import urllib.error
    import urllib.request

    _write_study(tmp_path, "scan_a")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"PORT": str(port), "MODELS": "mois_sam2"}
    server = subprocess.Popen([str(APP_DIR / "start_server.sh"), str(tmp_path), "--conf", "early_stop_k", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def post(params: str) -> tuple[int, bytes]:
        boundary = "mois-sam2-nf"
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="params"\r\n\r\n{params}\r\n'
                f"--{boundary}--\r\n").encode()
        request = urllib.request.Request(f"{base}/infer/mois_sam_interaction?image=scan_a&output=json", data=body,
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"{base}/info/", timeout=5) as answer:
                    assert b"mois_sam_interaction" in answer.read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(2)
        status, body = post('{"label": "lesion_1", "foreground": [[14, 6, 25]], "background": []}')
        assert status == 200 and b'"lesion_id":1' in body
        status, body = post('{"label": "lesion_1", "foreground": [[99, 6, 25]]}')
        assert status == 400 and b"outside the image" in body
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
