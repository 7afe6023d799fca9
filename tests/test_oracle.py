"""The oracle and imperfect-oracle segmenters: exact, hand-checkable masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from evaluation_cases import AFFINE, LESIONS, SHAPE, lesion_mask
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, Scan, create_segmenter

ALL = (0, 1, 2, 3)


def make_scan(indices: tuple[int, ...] = ALL) -> Scan:
    label = lesion_mask(indices).astype(np.uint16)
    view = ScanView.from_affine(AFFINE, SHAPE)
    return Scan("case", np.zeros(SHAPE, dtype=np.int16), AFFINE, view, label)


def centre(index: int, positive: bool = True) -> Click:
    """A click at the centre voxel of lesion box ``index``."""
    i, j, k = ((s.start + s.stop - 1) // 2 for s in LESIONS[index])
    return Click(i, j, k, positive)


def test_oracle_returns_union_of_lesions_under_positive_clicks() -> None:
    oracle = create_segmenter("oracle")
    oracle.start_scan(make_scan())
    assert not oracle.add_clicks(1, [centre(0, positive=False)]).any()
    np.testing.assert_array_equal(oracle.add_clicks(1, [centre(0)]), lesion_mask((0,)))
    np.testing.assert_array_equal(oracle.add_clicks(1, [centre(2)]), lesion_mask((0, 2)))
    np.testing.assert_array_equal(oracle.add_clicks(2, [centre(1)]), lesion_mask((1,)))
    oracle.forget_lesion(1)  # lesion 1 starts afresh: its earlier clicks on lesions 0 and 2 are gone
    np.testing.assert_array_equal(oracle.add_clicks(1, [centre(3)]), lesion_mask((3,)))
    background = Click(20, 11, 30, True)
    np.testing.assert_array_equal(oracle.add_clicks(3, [background]), np.zeros(SHAPE, dtype=bool))
    assert oracle.propagate() is None and oracle.automatic() is None
    with pytest.raises(InputError, match="outside the volume"):
        oracle.add_clicks(1, [Click(24, 0, 0, True)])


def test_oracle_automatic_option_returns_ground_truth() -> None:
    oracle = create_segmenter("oracle", automatic=True)
    oracle.start_scan(make_scan())
    assert oracle.automatic_capable
    np.testing.assert_array_equal(oracle.automatic(), lesion_mask(ALL))


def test_oracle_needs_label() -> None:
    scan = make_scan()
    with pytest.raises(InputError, match="needs the ground-truth label"):
        create_segmenter("oracle").start_scan(Scan("x", scan.image, scan.affine, scan.view, None))


def test_imperfect_oracle_erodes_dilates_misses_and_adds_cube() -> None:
    model = create_segmenter("imperfect_oracle")
    model.start_scan(make_scan())
    # size rank 1 (7x8x7 box) is eroded by one voxel -> 5x6x5, plus the 2x2x2 cube
    first = model.add_clicks(1, [centre(0)])
    eroded = first & lesion_mask((0,))
    assert eroded.sum() == 5 * 6 * 5 and (first & ~lesion_mask((0,))).sum() == 8
    cube = first & ~lesion_mask((0,))
    labels, n = ndimage.label(cube)
    assert n == 1 and np.ptp(np.argwhere(cube), axis=0).tolist() == [1, 1, 1]
    # the cube keeps at least one free voxel to every dilated lesion (never touches them, 26-connectivity)
    grown = ndimage.binary_dilation(lesion_mask(ALL), ndimage.generate_binary_structure(3, 1))
    assert not (ndimage.binary_dilation(cube, ndimage.generate_binary_structure(3, 3)) & grown).any()
    # size rank 2 (6x6x6) is dilated: 216 + 6 * 36 voxels; rank 3 missed (cube only); rank 4 dilated: 8 + 6 * 4
    assert (model.add_clicks(2, [centre(1)]) & ~cube).sum() == 216 + 6 * 36
    np.testing.assert_array_equal(model.add_clicks(3, [centre(2)]), cube)
    assert (model.add_clicks(4, [centre(3)]) & ~cube).sum() == 8 + 6 * 4
    # a negative click inside the cube removes it from that target only
    corner = Click(*(int(v) for v in np.argwhere(cube)[0]), False)
    np.testing.assert_array_equal(model.add_clicks(1, [corner]), eroded)
    assert model.add_clicks(2, []).sum() == 216 + 6 * 36 + 8


def test_imperfect_oracle_propagates_untouched_lesions() -> None:
    model = create_segmenter("imperfect_oracle", propagates=True)
    model.start_scan(make_scan())
    assert model.propagates
    np.testing.assert_array_equal(model.propagate(), lesion_mask((0, 1, 3)))  # rank 3 is missed
    model.add_clicks(1, [centre(1)])
    np.testing.assert_array_equal(model.propagate(), lesion_mask((0, 3)))
    assert create_segmenter("imperfect_oracle").propagate() is None


def test_imperfect_oracle_automatic_and_options() -> None:
    model = create_segmenter("imperfect_oracle", automatic=True, fp_edge=0, miss_every=0, margin=0)
    model.start_scan(make_scan())
    np.testing.assert_array_equal(model.automatic(), lesion_mask(ALL))
    with pytest.raises(InputError, match="invalid options"):
        create_segmenter("imperfect_oracle", dilate_every=0)
