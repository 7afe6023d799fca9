"""The MONAI Label server over HTTP, started by monai_label_app/start_server.sh: what it writes, how it answers bad
requests, whether it stays responsive during a long click, and 3D Slicer's request flow (driven with MONAI Label's
Python client, which builds the requests as Slicer's plugin does)."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests
from monailabel.client import MONAILabelClient

pytestmark = pytest.mark.slow

APP_DIR = Path(__file__).resolve().parents[1] / "monai_label_app"
SHAPE = (40, 12, 64)
LONG_SHAPE = (40, 64, 48)
AFFINE = np.diag([2.0, 4.0, 2.0, 1.0])  # j is the anterior axis: the coronal frames are the j slices


def _scan(shape: tuple[int, int, int], seed: int) -> nib.Nifti1Image:
    rng = np.random.default_rng(seed)
    image = (rng.random(shape) * 100).astype(np.int16)
    image[10:18, 4:8, 20:30] = 900
    image[26:32, 4:8, 36:44] = 900
    return nib.Nifti1Image(image, AFFINE)


def _long_scan() -> nib.Nifti1Image:
    """A lesion through every coronal slice: a click on it propagates over all 64 frames (a long request)."""
    image = np.asarray(_scan(LONG_SHAPE, 5).dataobj)
    image[10:18, :, 20:30] = 900
    return nib.Nifti1Image(image, AFFINE)


@dataclass(frozen=True)
class Server:
    base: str
    studies: Path
    tmp: Path
    sessions: Path
    root: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("server")
    studies, tmp, sessions = root / "studies", root / "tmp", root / "sessions"
    for folder in (studies, tmp, sessions):
        folder.mkdir()
    nib.save(_scan(SHAPE, 0), studies / "scan_a.nii.gz")
    nib.save(_scan(SHAPE, 1), studies / "scan_b.nii.gz")
    nib.save(_long_scan(), studies / "scan_long.nii.gz")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"PORT": str(port), "MODELS": "all", "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1",
                        "MONAI_LABEL_SESSION_PATH": str(sessions)}
    log = (root / "server.log").open("wb")
    process = subprocess.Popen([str(APP_DIR / "start_server.sh"), str(studies), "--conf", "early_stop_k", "2"],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if requests.get(f"{base}/info/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (root / "server.log").read_text()[-3000:]
            time.sleep(1)
        yield Server(base, studies, tmp, sessions, root)
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)
        log.close()


def _gz(image: nib.Nifti1Image) -> bytes:
    """The bytes of ``image`` as a .nii.gz file."""
    return gzip.compress(image.to_bytes())


def _infer(server: Server, model: str, params: object, **query: str) -> requests.Response:
    text = params if isinstance(params, str) else json.dumps(params)
    return requests.post(f"{server.base}/infer/{model}", params={"output": "json"} | query,
                         files={"params": (None, text)}, timeout=300)


def _one_line_error(answer: requests.Response, status: int, words: str) -> None:
    assert answer.status_code == status, (answer.status_code, answer.text)
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and words in detail, detail


CLICK = {"label": "lesion_1", "foreground": [[14, 6, 25]], "background": []}


def test_info_offers_a_short_label_list_without_background(server: Server) -> None:
    info = requests.get(f"{server.base}/info/", timeout=30).json()
    assert info["labels"] == [f"lesion_{n}" for n in range(1, 11)] + ["propagated_neurofibromas"]
    assert "background" not in info["models"]["mois_sam_interaction"]["labels"]
    answer = _infer(server, "mois_sam_interaction", CLICK | {"label": "background"}, image="scan_a")
    _one_line_error(answer, 400, "pick one of lesion_1 ... lesion_10")


def test_writes_stay_inside_the_datastore(server: Server, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    for tag in (str(outside), "../../escape", "a/b", "..", ""):
        answer = _infer(server, "mois_sam_interaction", CLICK | {"save_label": True, "label_tag": tag}, image="scan_a")
        _one_line_error(answer, 400, "label_tag")
    assert not any(outside.iterdir()) and not (server.studies.parent / "escape").exists()
    answer = _infer(server, "mois_sam_interaction", CLICK | {"save_label": True, "label_tag": "mine"}, image="scan_a")
    assert answer.status_code == 200 and (server.studies / "labels" / "mine" / "scan_a.nii.gz").is_file()

    label = nib.Nifti1Image(np.zeros(SHAPE, np.uint8), AFFINE)
    label_bytes = _gz(label)
    put = f"{server.base}/datastore/label"
    for tag in (str(outside), "../x", "/etc"):
        answer = requests.put(put, params={"image": "scan_a", "tag": tag},
                              files={"label": ("l.nii.gz", label_bytes)}, timeout=60)
        _one_line_error(answer, 400, "label tag")
    answer = requests.put(put, params={"image": "scan_a", "tag": "final"},
                          files={"label": ("l.exe", label_bytes)}, timeout=60)
    _one_line_error(answer, 400, "must be a NIfTI file")
    assert not any(outside.iterdir()) and not list(server.studies.rglob("*.exe"))

    study = (server.studies / "scan_b.nii.gz").read_bytes()
    answer = requests.put(f"{server.base}/datastore/", params={"image": "scan_b"},
                          files={"file": ("x.nii.gz", _gz(_scan(SHAPE, 7)))}, timeout=60)
    _one_line_error(answer, 409, "cannot replace a study")
    for image_id in ("../evil", "/tmp/evil", "a/b"):
        answer = requests.put(f"{server.base}/datastore/image", params={"image": image_id},
                              files={"file": ("x.nii.gz", _gz(_scan(SHAPE, 7)))}, timeout=60)
        _one_line_error(answer, 400, "image id")
    answer = requests.put(f"{server.base}/datastore/image", params={"image": "junk"},
                          files={"file": ("x.nii.gz", b"not a scan")}, timeout=60)
    _one_line_error(answer, 400, "uploaded file 'x.nii.gz': not a readable NIfTI")
    assert requests.delete(f"{server.base}/datastore/image", params={"id": "scan_b"}, timeout=30).status_code in (404,
                                                                                                              405)
    assert requests.post(f"{server.base}/train/", timeout=30).status_code in (404, 405)
    assert (server.studies / "scan_b.nii.gz").read_bytes() == study
    assert sorted(p.name for p in server.studies.glob("*.nii*")) == ["scan_a.nii.gz", "scan_b.nii.gz",
                                                                      "scan_long.nii.gz"]

    answer = requests.put(f"{server.base}/datastore/image", params={"image": "scan_new"},
                          files={"file": ("x.nii.gz", _gz(_scan(SHAPE, 7)))}, timeout=60)
    assert answer.status_code == 200 and (server.studies / "scan_new.nii.gz").is_file()


def test_saved_label_info_must_name_every_saved_value(server: Server) -> None:
    values = np.zeros(SHAPE, np.uint8)
    values[10:18, 4:8, 20:30] = 1
    values[26:32, 4:8, 36:44] = 11
    label_bytes = _gz(nib.Nifti1Image(values, AFFINE))
    put = f"{server.base}/datastore/label"
    shifted = [{"name": "lesion_1", "idx": 2}, {"name": "propagated_neurofibromas", "idx": 12}]  # the old offset
    answer = requests.put(put, params={"image": "scan_a"}, data={"params": json.dumps({"label_info": shifted})},
                          files={"label": ("l.nii.gz", label_bytes)}, timeout=60)
    _one_line_error(answer, 400, "voxel value(s) [1, 11] have no entry")
    matching = [{"name": f"lesion_{n}", "idx": n} for n in range(1, 11)] + [
        {"name": "propagated_neurofibromas", "idx": 11}]
    answer = requests.put(put, params={"image": "scan_a"}, data={"params": json.dumps({"label_info": matching})},
                          files={"label": ("l.nii.gz", label_bytes)}, timeout=60)
    assert answer.status_code == 200, answer.text
    saved = requests.get(f"{server.base}/datastore/", params={"output": "all"}, timeout=30).json()
    info = saved["objects"]["scan_a"]["labels"]["final"]["info"]
    assert info["label_info"] == matching
    np.testing.assert_array_equal(np.asarray(nib.load(server.studies / "labels" / "final" / "scan_a.nii.gz")
                                             .dataobj), values)


@pytest.mark.parametrize(("params", "query", "status", "words"), [
    ("{not json", {"image": "scan_a"}, 400, "not valid JSON"),
    ("[1, 2]", {"image": "scan_a"}, 400, "must be a JSON object, got list"),
    ("null", {"image": "scan_a"}, 400, "got NoneType"),
    ('"lesion_1"', {"image": "scan_a"}, 400, "got str"),
    ("[" * 100_000 + "]" * 100_000, {"image": "scan_a"}, 400, "nested too deeply"),
    (json.dumps(CLICK), {}, 400, "needs 'image'"),
    (json.dumps(CLICK), {"image": ""}, 400, "needs 'image'"),
    (json.dumps(CLICK), {"image": "/etc/passwd"}, 400, "not a study"),
    (json.dumps(CLICK), {"image": "scan_a", "session_id": "../../etc"}, 400, "session_id"),
    (json.dumps(CLICK), {"image": "scan_a", "session_id": "0f0e"}, 404, "not found"),
    (json.dumps(CLICK | {"save_label": "maybe"}), {"image": "scan_a"}, 400, "save_label"),
    (json.dumps(CLICK | {"foreground": [[1, 2]]}), {"image": "scan_a"}, 400, "[i, j, k]"),
    (json.dumps(CLICK | {"foreground": [[99, 6, 25]]}), {"image": "scan_a"}, 400, "outside the image"),
])
def test_malformed_requests_get_a_4xx_with_one_line(server: Server, params: str, query: dict[str, str], status: int,
                                                    words: str) -> None:
    _one_line_error(_infer(server, "mois_sam_interaction", params, **query), status, words)


def test_unknown_model_uploads_and_missing_fields_are_4xx(server: Server) -> None:
    _one_line_error(_infer(server, "vista3d", CLICK, image="scan_a"), 404, "not served here")
    answer = requests.post(f"{server.base}/infer/mois_sam_interaction", params={"image": "scan_a"},
                           files={"params": (None, json.dumps(CLICK)), "file": ("x.nii.gz", b"junk")}, timeout=60)
    _one_line_error(answer, 400, "PUT /session/")
    answer = requests.put(f"{server.base}/datastore/label", params={"tag": "final"},
                          files={"label": ("l.nii.gz", b"x")}, timeout=60)
    _one_line_error(answer, 422, "image")
    assert requests.get(f"{server.base}/info/", timeout=30).status_code == 200  # still serving


def test_unknown_next_sample_strategy_and_bad_label_files_are_4xx_naming_the_problem(server: Server) -> None:
    for strategy, body, status in (("bogus", None, 404), ("random", {"strategy": ["x"]}, 400)):
        answer = requests.post(f"{server.base}/activelearning/{strategy}", json=body, timeout=30)
        _one_line_error(answer, status, "active learning strategy")
    assert requests.post(f"{server.base}/activelearning/random", timeout=30).status_code == 200
    put = f"{server.base}/datastore/label"
    wrong_grid = _gz(nib.Nifti1Image(np.zeros((3, 3, 3), np.uint8), AFFINE))
    negative = _gz(nib.Nifti1Image(np.full(SHAPE, -1, np.int16), AFFINE))
    for content, words in ((b"junk", "not a readable NIfTI"), (wrong_grid, "shape (3, 3, 3)"), (negative, ">= 0")):
        answer = requests.put(put, params={"image": "scan_a", "tag": "checked"},
                              files={"label": ("mine.nii.gz", content)}, timeout=60)
        _one_line_error(answer, 400, words)
        assert "label file 'mine.nii.gz'" in answer.json()["detail"] and str(server.tmp) not in answer.json()["detail"]
    assert not (server.studies / "labels" / "checked").exists() or not any((server.studies / "labels" / "checked")
                                                                             .iterdir())


def test_rejected_and_accepted_uploads_leave_no_temporary_files(server: Server) -> None:
    before = set(os.listdir(server.tmp))
    sessions_before = set(os.listdir(server.sessions))
    for name, content in (("bad.nii.gz", b"not a scan"), ("bad.txt", b"x"), ("rgb.nii.gz", _gz(nib.Nifti1Image(
            np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]), AFFINE)))):
        answer = requests.put(f"{server.base}/session/", files={"files": (name, content)}, timeout=60)
        assert 400 <= answer.status_code < 500 and "\n" not in answer.json()["detail"]
    answer = requests.put(f"{server.base}/datastore/image", params={"image": "scan_a"},
                          files={"file": ("x.nii.gz", _gz(_scan(SHAPE, 3)))}, timeout=60)
    assert answer.status_code == 409
    answer = requests.put(f"{server.base}/session/", files={"files": ("ok.nii.gz", _gz(_scan(SHAPE, 3)))}, timeout=60)
    assert answer.status_code == 200
    assert set(os.listdir(server.tmp)) <= before
    assert set(os.listdir(server.sessions)) - sessions_before == {answer.json()["session_id"]}


def test_slicer_flow_on_a_locally_opened_scan(server: Server, tmp_path: Path) -> None:
    """A scan opened with Add Data is uploaded to PUT /session/, then every click names the session (Slicer's way)."""
    local = tmp_path / "local_scan.nii.gz"
    nib.save(_scan(SHAPE, 4), local)
    client = MONAILabelClient(server.base, tmpdir=str(tmp_path))
    session_id = client.create_session(str(local))["session_id"]
    label_file, params = client.infer("mois_sam_interaction", "local_scan", CLICK, session_id=session_id)
    assert params["label"] == "lesion_1" and params["lesion_id"] == 1
    mask = np.asarray(nib.load(label_file).dataobj)
    assert mask.shape == SHAPE and mask[14, 6, 25] == 1
    _, params = client.infer("mois_sam_propagation", "local_scan", {}, session_id=session_id)
    assert params["label"] == "propagated_neurofibromas" and "message" not in params
    target = [int(v) for v in np.argwhere(mask)[0]]
    removed_file, _ = client.infer("remove_propagation_component", "local_scan",
                                   {"label": "lesion_1", "foreground": [], "background": [target]},
                                   session_id=session_id)
    assert not np.asarray(nib.load(removed_file).dataobj)[tuple(target)]
    # a path into the session store that is not the session's image is not a server-managed upload
    stray = server.sessions / session_id / "other.nii.gz"
    nib.save(_scan(SHAPE, 4), stray)
    _one_line_error(_infer(server, "mois_sam_interaction", CLICK, image=str(stray)), 400, "not a study")
    assert client.get_session(session_id)["name"] == session_id
    _one_line_error(requests.delete(f"{server.base}/session/%2E%2E", timeout=30), 400, "session_id")
    client.remove_session(session_id)
    assert not (server.sessions / session_id).exists() and server.sessions.is_dir()


def test_auto_run_on_next_sample_gets_an_empty_answer_not_an_error(server: Server) -> None:
    """Slicer's "Next Sample" with auto-run calls the segmentation model (propagation) before any click."""
    client = MONAILabelClient(server.base)
    sample = client.next_sample("random", {})
    assert sample["id"] in ("scan_a", "scan_b", "scan_long", "scan_new")
    label_file, params = client.infer("mois_sam_propagation", "scan_b", {})
    assert "click at least one lesion" in params["message"] and params["voxels"] == 0
    os.unlink(label_file)


def test_server_stays_responsive_during_a_long_click(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    long_click = {"label": "lesion_1", "foreground": [[14, 30, 25]], "background": []}
    finished: dict[str, float] = {}

    def long_request() -> None:
        answer = _infer(server, "mois_sam_interaction", long_click, image="scan_long")
        finished["long"] = time.monotonic()
        finished["status"] = answer.status_code

    worker = threading.Thread(target=long_request)
    started = time.monotonic()
    worker.start()
    time.sleep(1.0)
    info_latencies: list[float] = []
    invalid_latency = other_model_status = None
    while worker.is_alive():
        sent = time.monotonic()
        assert requests.get(f"{server.base}/info/", timeout=30).status_code == 200
        if worker.is_alive():
            info_latencies.append(time.monotonic() - sent)
        if invalid_latency is None:
            sent = time.monotonic()
            _one_line_error(_infer(server, "mois_sam_interaction", CLICK | {"label": "lesion_99"}, image="scan_long"),
                            400, "not a lesion label")
            invalid_latency = time.monotonic() - sent if worker.is_alive() else None
        if other_model_status is None:
            other_model_status = _infer(server, "sam2_interaction", CLICK, image="scan_a").status_code
            assert worker.is_alive(), "the long request ended before the other model's answer"
        time.sleep(0.2)
    worker.join()
    assert finished["status"] == 200 and other_model_status == 200
    assert len(info_latencies) >= 3 and max(info_latencies) < 1.0
    assert invalid_latency is not None and invalid_latency < 1.0
    with capsys.disabled():
        print(f"\nlong click {finished['long'] - started:.1f} s; /info/ during it: {len(info_latencies)} answers, "
              f"max {max(info_latencies) * 1000:.0f} ms, median {np.median(info_latencies) * 1000:.0f} ms; "
              f"invalid request {invalid_latency * 1000:.0f} ms")


def test_start_script_refuses_an_open_bind_without_authentication(tmp_path: Path) -> None:
    env = os.environ | {"HOST": "0.0.0.0", "MONAI_LABEL_AUTH_ENABLE": "false"}
    env.pop("ALLOW_UNAUTHENTICATED_REMOTE", None)
    done = subprocess.run([str(APP_DIR / "start_server.sh"), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "not a loopback address" in done.stderr
    help_text = subprocess.run([str(APP_DIR / "start_server.sh"), "--help"], capture_output=True, text=True,
                               timeout=60).stdout
    assert "MONAI_LABEL_AUTH_ENABLE" in help_text and "ALLOW_UNAUTHENTICATED_REMOTE" in help_text
