"""``track_continuity``: a lesion's propagation pass ends where its slice masks stop overlapping; and
``keep_clicked_components``: a lesion's mask keeps only the 3-D components that touch its positive clicks.

The tracker's per-slice output is scripted (a random-weight demo model underneath), so the test controls where the
"lesion" is on every slice: blob A continues from the clicked slice, then the track jumps to a disjoint blob B.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.segmenters import Click, Scan, create_segmenter
from mois_sam2_nf.models.session import continues_track

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE = (36, 28, 6)
#: original (i, j, k) = canonical (row, col, frame) up to flips for this view
AFFINE = np.array([[0, -1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
CLICKED = 2


def _blob(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(SHAPE[:2], dtype=bool)
    mask[rows, cols] = True
    return mask


BLOB_A = _blob(slice(10, 22), slice(6, 18))
BLOB_A_SHIFTED = _blob(slice(11, 23), slice(7, 19))
BLOB_B = _blob(slice(28, 35), slice(20, 27))
#: what the scripted tracker "finds" on each slice: A around the click, empty below it, B beyond slice 3
SCRIPT = {0: np.zeros(SHAPE[:2], dtype=bool), 1: BLOB_A, 2: BLOB_A, 3: BLOB_A_SHIFTED, 4: BLOB_B, 5: BLOB_B}


def test_continues_track_needs_overlap_with_the_smaller_mask() -> None:
    assert continues_track(BLOB_A_SHIFTED, BLOB_A)
    assert not continues_track(BLOB_B, BLOB_A)
    assert not continues_track(np.zeros(SHAPE[:2], dtype=bool), BLOB_A)
    small = _blob(slice(14, 16), slice(10, 12))
    assert continues_track(small, BLOB_A) and continues_track(BLOB_A, small)  # a lesion shrinking or growing
    half = _blob(slice(20, 24), slice(6, 18))  # 2 of its 4 rows on A: exactly half of the smaller mask
    assert continues_track(half, BLOB_A)
    assert not continues_track(_blob(slice(21, 24), slice(6, 18)), BLOB_A)  # one third


def _scan() -> Scan:
    volume = (np.random.default_rng(0).random(SHAPE) * 300).astype(np.int16)
    return Scan("case", volume, AFFINE, ScanView.from_affine(AFFINE, SHAPE))


def _scripted_segmenter(name: str, track_continuity: bool, keep_clicked_components: bool = False):
    """A segmenter whose tracker yields :data:`SCRIPT`; the clicked-components filter is off unless asked for."""
    torch.manual_seed(0)
    config = "sam2_demo" if name == "sam2" else "mois_sam2_demo"
    segmenter = create_segmenter(name, config=config, checkpoint=None, device="cpu", imagenet_norm=False,
                                 track_continuity=track_continuity, keep_clicked_components=keep_clicked_components)
    tracked = segmenter.predictor.propagate_in_video

    def scripted(state, *args, **kwargs):
        for frame, obj_ids, _ in tracked(state, *args, **kwargs):
            yield frame, obj_ids, torch.where(torch.from_numpy(SCRIPT[frame]), 10.0, -10.0)[None, None]

    segmenter.predictor.propagate_in_video = scripted
    return segmenter


def _clicked_masks(name: str, scan: Scan, **options: bool) -> tuple[np.ndarray, np.ndarray]:
    """One centre click on blob A of the clicked slice: (original-grid mask returned, canonical session mask)."""
    i, j, k = (int(v) for v in scan.view.canonical_to_ijk((15, 12, CLICKED)))
    segmenter = _scripted_segmenter(name, **options)
    segmenter.start_scan(scan)
    returned = segmenter.add_clicks(1, [Click(i, j, k, True)])
    stored = segmenter.session.masks[1]
    segmenter.end_scan()
    return returned, stored


@pytest.mark.parametrize("name", ["sam2", "mois_sam2"])
def test_a_track_that_jumps_to_another_structure_ends_there(name: str) -> None:
    scan = _scan()
    exact = _clicked_masks(name, scan, track_continuity=False)[1]
    continuous = _clicked_masks(name, scan, track_continuity=True)[1]
    # without the setting the pass follows the tracker onto blob B
    assert np.array_equal(exact[:, :, 4], BLOB_B) and np.array_equal(exact[:, :, 5], BLOB_B)
    # with it: A on both sides of the click, nothing from the jump on, the empty slice ends the reverse pass
    assert np.array_equal(continuous[:, :, 1], BLOB_A) and np.array_equal(continuous[:, :, 3], BLOB_A_SHIFTED)
    assert not continuous[:, :, 4:].any() and not continuous[:, :, 0].any()
    # up to the jump both agree (the clicked slice included: same weights, same decode)
    assert np.array_equal(exact[:, :, :4], continuous[:, :, :4])


@pytest.mark.parametrize("name", ["sam2", "mois_sam2"])
def test_a_lesion_keeps_only_the_components_connected_to_its_clicks(name: str) -> None:
    scan = _scan()
    raw = _clicked_masks(name, scan, track_continuity=False, keep_clicked_components=False)[1]
    returned, kept = _clicked_masks(name, scan, track_continuity=False, keep_clicked_components=True)
    assert np.array_equal(returned, np.ascontiguousarray(scan.view.from_canonical(kept)))
    assert np.array_equal(raw[:, :, 4], BLOB_B) and np.array_equal(raw[:, :, 5], BLOB_B)
    # blob B does not touch the clicked blob A: dropped; A (slices 1-3) is kept as the model gave it
    assert not kept[:, :, 4:].any()
    assert np.array_equal(kept[:, :, :4], raw[:, :, :4])
