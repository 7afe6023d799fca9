"""Corrective clicks are SAM2 corrections of the lesion's object, in the scan session, the adapters and the server.

A random-weight demo model (object-score head biased so that objects look present) on a small canonical volume.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.segmenters import Click, Scan, create_segmenter
from mois_sam2_nf.models.mois_sam2.predictor import exemplar_bank
from mois_sam2_nf.serving.workspace import AnnotationWorkspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE = (36, 28, 6)
#: identity affine: original (i, j, k) = canonical (row, col, frame) for this view
AFFINE = np.array([[0, -1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)


def _scan() -> Scan:
    rng = np.random.default_rng(2)
    volume = (rng.random(SHAPE) * 300).astype(np.int16)
    volume[10:22, 6:18, 1:5] += 900
    volume[26:34, 18:27, :] += 700
    view = ScanView.from_affine(AFFINE, SHAPE)
    assert view.to_canonical(volume).shape == SHAPE
    return Scan("case", volume, AFFINE, view)


def _segmenter(name: str = "sam2", seed: int = 0):
    torch.manual_seed(seed)
    config = "sam2_demo" if name == "sam2" else "mois_sam2_demo"
    segmenter = create_segmenter(name, config=config, checkpoint=None, device="cpu", imagenet_norm=False)
    with torch.no_grad():
        segmenter.predictor.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(4.0)
    return segmenter


def _spy_prev_logits(segmenter) -> list[torch.Tensor | None]:
    """Record the ``prev_sam_mask_logits`` of every single-frame decode that carries clicks."""
    seen: list[torch.Tensor | None] = []
    original = segmenter.predictor._run_single_frame_inference

    def spy(*args, **kwargs):
        if kwargs.get("point_inputs") is not None:
            seen.append(kwargs.get("prev_sam_mask_logits"))
        return original(*args, **kwargs)

    segmenter.predictor._run_single_frame_inference = spy
    return seen


def _click(row: int, col: int, frame: int, positive: bool = True) -> Click:
    i, j, k = (int(v) for v in ScanView.from_affine(AFFINE, SHAPE).canonical_to_ijk((row, col, frame)))
    return Click(i, j, k, positive)


def test_second_click_on_a_tracked_slice_is_a_correction_with_previous_logits() -> None:
    segmenter = _segmenter()
    seen = _spy_prev_logits(segmenter)
    scan = _scan()
    segmenter.start_scan(scan)
    first = segmenter.add_clicks(1, [_click(15, 12, 2)])
    assert seen == [None]  # a fresh object: no previous mask on the clicked slice
    second = segmenter.add_clicks(1, [_click(16, 10, 2, positive=False)])
    assert len(seen) == 2 and seen[1] is not None  # the frame's previous low-res logits feed the decoder
    state = segmenter.session.state
    points = state["point_inputs_per_obj"][0][2]
    assert points["point_labels"].tolist() == [[1, 0]]  # the new click joined the frame's earlier click
    assert 2 in state["output_dict_per_obj"][0]["cond_frame_outputs"]
    assert not np.array_equal(first, second)
    # a click on a slice the object was tracked to (not clicked before) is a correction as well
    segmenter.add_clicks(1, [_click(14, 12, 3)])
    assert seen[2] is not None and 3 in state["output_dict_per_obj"][0]["cond_frame_outputs"]
    segmenter.end_scan()


def test_replaying_a_click_sequence_is_deterministic_and_interleaving_lesions_changes_nothing() -> None:
    sequence = [(1, _click(15, 12, 2)), (1, _click(18, 10, 3)), (2, _click(30, 22, 1)), (1, _click(12, 8, 2, False))]
    results = []
    for _ in range(2):
        segmenter = _segmenter(seed=5)
        segmenter.start_scan(_scan())
        results.append([segmenter.add_clicks(lesion, [click]) for lesion, click in sequence])
        segmenter.end_scan()
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    # lesion 1 resumed after lesion 2 (its object replayed) equals lesion 1 clicked without interruption
    straight = _segmenter(seed=5)
    straight.start_scan(_scan())
    for lesion, click in sequence:
        if lesion == 1:
            final = straight.add_clicks(1, [click])
    np.testing.assert_array_equal(final, results[0][-1])


def test_mois_correction_updates_the_prompted_exemplar_of_the_corrected_slice() -> None:
    segmenter = _segmenter("mois_sam2")
    segmenter.start_scan(_scan())
    segmenter.add_clicks(1, [_click(15, 12, 2)])
    bank = exemplar_bank(segmenter.session.state)
    before = {key: e.maskmem_features.clone() for key, e in zip(bank.keys(), bank) if e.is_prompted}
    assert list(before) == ["1_2_prompted"]
    segmenter.add_clicks(1, [_click(16, 10, 2, positive=False)])
    after = {key: e for key, e in zip(bank.keys(), bank) if e.is_prompted}
    assert list(after) == ["1_2_prompted"]
    assert not torch.equal(after["1_2_prompted"].maskmem_features, before["1_2_prompted"])
    segmenter.add_clicks(2, [_click(30, 22, 1)])  # a new lesion: fresh object, the bank keeps lesion 1
    assert {key.split("_")[0] for key in bank.keys()} == {"1", "2"}
    segmenter.end_scan()


def test_server_applies_only_the_new_points_of_an_extended_list_and_restarts_an_edited_one(tmp_path) -> None:
    import nibabel as nib

    scan = _scan()
    path = tmp_path / "case.nii.gz"
    nib.save(nib.Nifti1Image(scan.image, AFFINE), str(path))
    segmenter = _segmenter()
    calls: list[tuple[str, int, int]] = []
    add_clicks, forget = segmenter.add_clicks, segmenter.forget_lesion
    segmenter.add_clicks = lambda lesion, clicks: calls.append(("add", lesion, len(clicks))) or add_clicks(lesion,
                                                                                                          clicks)
    segmenter.forget_lesion = lambda lesion: calls.append(("forget", lesion, 0)) or forget(lesion)
    workspace = AnnotationWorkspace(segmenter)
    a, b, c = _click(15, 12, 2), _click(18, 10, 3), _click(12, 8, 2, False)
    workspace.segment(path, 1, "nf", [a])
    workspace.segment(path, 1, "nf", [a, b])
    extended = workspace.segment(path, 1, "nf", [a, b, c])
    assert calls == [("forget", 1, 0), ("add", 1, 1), ("add", 1, 1), ("add", 1, 1)]
    assert [len(i) for i in segmenter.session._interactions[1]] == [1, 1, 1]
    # the same clicks one interaction each, as the evaluation protocol sends them: the same mask
    direct = _segmenter()
    direct.start_scan(scan)
    for click in (a, b, c):
        expected = direct.add_clicks(1, [click])
    np.testing.assert_array_equal(extended, expected)
    direct.end_scan()
    workspace.segment(path, 1, "nf", [a, b, c])  # unchanged: nothing recomputed
    assert len(calls) == 4
    edited = workspace.segment(path, 1, "nf", [b, c])  # a point removed: the lesion restarts from the list
    assert calls[4:] == [("forget", 1, 0), ("add", 1, 2)]
    assert [len(i) for i in segmenter.session._interactions[1]] == [2]
    assert edited.shape == extended.shape == scan.image.shape
    workspace.close()
