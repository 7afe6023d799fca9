"""Adapters "sam2" and "mois_sam2": original-grid masks for any orientation, encode-once per scan, input errors."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, InteractiveSegmenter, Scan, create_segmenter

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CANONICAL_SHAPE = (36, 28, 5)
#: canonical (row, col, frame) clicks of two lesions, two interactions each
LESIONS = {1: [(14, 12, 2), (18, 10, 3)], 2: [(30, 22, 1), (28, 24, 1)]}


def _canonical_volume() -> np.ndarray:
    rng = np.random.default_rng(1)
    vol = (rng.random(CANONICAL_SHAPE) * 300).astype(np.int16)
    vol[10:22, 6:18, :] += 900
    vol[26:34, 18:27, :] += 700
    return vol


def _scan(affine: np.ndarray, canonical: np.ndarray) -> Scan:
    """Scan whose array, in the orientation of ``affine``, shows the given canonical volume."""
    probe = ScanView.from_affine(affine, (1, 1, 1))
    shape = [0, 0, 0]
    for axis, (new_axis, _) in enumerate(probe.transform):
        shape[axis] = canonical.shape[int(new_axis)]
    view = ScanView.from_affine(affine, tuple(shape))
    return Scan("case", view.from_canonical(canonical), affine, view)


def _make(name: str, reference: InteractiveSegmenter | None = None, **options: object) -> InteractiveSegmenter:
    config = "sam2_demo" if name == "sam2" else "mois_sam2_demo"
    segmenter = create_segmenter(name, config=config, checkpoint=None, device="cpu", **options)
    if reference is not None:
        segmenter.predictor.load_state_dict(reference.predictor.state_dict())
    else:
        with torch.no_grad():
            segmenter.predictor.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(4.0)
    return segmenter


def _run(segmenter: InteractiveSegmenter, scan: Scan) -> dict[int, np.ndarray]:
    segmenter.start_scan(scan)
    masks = {}
    for lesion_id, clicks in LESIONS.items():
        for rcf in clicks:
            i, j, k = (int(v) for v in scan.view.canonical_to_ijk(rcf))
            masks[lesion_id] = segmenter.add_clicks(lesion_id, [Click(i, j, k, True)])
    return masks


def test_sam2_masks_on_original_grid_for_permuted_flipped_affine() -> None:
    canonical = _canonical_volume()
    canonical_affine = np.array([[0, -1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    lps_affine = np.array([[-0.8, 0, 0, 10], [0, 0, -5.0, 3], [0, -0.8, 0, 7], [0, 0, 0, 1]], dtype=float)
    scan_a, scan_b = _scan(canonical_affine, canonical), _scan(lps_affine, canonical)
    assert scan_a.view.axcodes == ("I", "L", "A") and scan_b.view.axcodes == ("L", "I", "P")
    assert scan_b.shape != scan_a.shape
    first = _make("sam2")
    second = _make("sam2", reference=first)
    masks_a, masks_b = _run(first, scan_a), _run(second, scan_b)
    for lesion_id in LESIONS:
        assert masks_a[lesion_id].shape == scan_a.shape and masks_b[lesion_id].shape == scan_b.shape
        assert masks_a[lesion_id].dtype == bool and masks_a[lesion_id].any()
        expected = scan_b.view.from_canonical(scan_a.view.to_canonical(masks_a[lesion_id]))
        np.testing.assert_array_equal(masks_b[lesion_id], expected)
    assert first.propagate() is None and first.automatic() is None
    first.end_scan()


@pytest.mark.parametrize("mode", ["overlap", "com_prompted"])
def test_mois_adapter_encodes_each_frame_once_and_propagates(mode: str) -> None:
    segmenter = _make("mois_sam2", propagation_mode=mode)
    calls: list[int] = []
    forward_image = segmenter.predictor.forward_image
    segmenter.predictor.forward_image = lambda img: calls.append(1) or forward_image(img)
    scan = _scan(np.array([[0.7, 0, 0, 0], [0, 0, 3.0, 0], [0, 0.7, 0, 0], [0, 0, 0, 1]], dtype=float),
                 _canonical_volume())
    segmenter.start_scan(scan)
    lesion_masks = []
    for lesion_id, (row, col, frame) in enumerate([(14, 12, 2), (30, 22, 1), (5, 5, 4)], start=1):
        for t in range(3):
            i, j, k = (int(v) for v in scan.view.canonical_to_ijk((row, col + t, frame)))
            mask = segmenter.add_clicks(lesion_id, [Click(i, j, k, t != 2)])
        lesion_masks.append(mask)
    propagated = segmenter.propagate()
    assert propagated.shape == scan.shape and propagated.dtype == bool
    assert not (propagated & np.logical_or.reduce(lesion_masks)).any()
    assert len(calls) == CANONICAL_SHAPE[2]
    assert segmenter.propagates and segmenter.predictor.num_max_exemplars == 7
    segmenter.end_scan()


def test_missing_checkpoint_and_bad_precision_raise_input_error(tmp_path) -> None:
    missing = tmp_path / "nope.pt"
    for name in ("sam2", "mois_sam2"):
        with pytest.raises(InputError, match="nope.pt"):
            create_segmenter(name, config="sam2_demo", checkpoint=str(missing))
    with pytest.raises(InputError, match="precision"):
        create_segmenter("sam2", config="sam2_demo", precision="fp16")
    with pytest.raises(InputError, match="propagation mode"):
        create_segmenter("mois_sam2", config="mois_sam2_demo", propagation_mode="com")


def test_forget_lesion_drops_history_mask_and_exemplars() -> None:
    from mois_sam2_nf.models.mois_sam2.predictor import exemplar_bank

    segmenter = _make("mois_sam2")
    scan = _scan(np.diag([0.7, 3.0, 0.7, 1.0]), _canonical_volume())
    segmenter.start_scan(scan)
    for lesion_id, (row, col, frame) in ((1, (14, 12, 2)), (2, (30, 22, 1))):
        i, j, k = (int(v) for v in scan.view.canonical_to_ijk((row, col, frame)))
        segmenter.add_clicks(lesion_id, [Click(i, j, k, True)])
    bank = exemplar_bank(segmenter.session.state)
    assert {key.split("_")[0] for key in bank.keys()} == {"1", "2"}
    segmenter.forget_lesion(1)
    assert {key.split("_")[0] for key in bank.keys()} == {"2"}
    assert set(segmenter.history) == {2} and set(segmenter.session.masks) == {2}
    segmenter.forget_lesion(7)  # unknown ids are ignored
    segmenter.end_scan()
