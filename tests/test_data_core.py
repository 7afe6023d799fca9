"""NIfTI io validation, canonical view round trips, intensity scaling and instance ordering."""

from __future__ import annotations

import itertools

import nibabel as nib
import nibabel.orientations as nio
import numpy as np
import pytest
import scipy.ndimage as ndi

from mois_sam2_nf.data.instances import keep_largest, size_ordered_components
from mois_sam2_nf.data.intensity import percentile_scale
from mois_sam2_nf.data.io import load_label, load_nifti, save_nifti
from mois_sam2_nf.data.masks import bounding_box, components_at, distance_transform, foreground
from mois_sam2_nf.data.view import ScanView, voxel_spacing
from mois_sam2_nf.errors import InputError


def _all_orientation_affines() -> list[np.ndarray]:
    """The 48 axis-aligned orientations (permutations x flips) with anisotropic zooms."""
    affines = []
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((1, -1), repeat=3):
            aff = np.eye(4)
            aff[:3, :3] = 0
            for col, (row, flip, zoom) in enumerate(zip(perm, flips, (0.7, 1.3, 5.0))):
                aff[row, col] = flip * zoom
            aff[:3, 3] = (10.0, -20.0, 5.0)
            affines.append(aff)
    return affines


@pytest.mark.parametrize("affine", _all_orientation_affines())
def test_view_round_trip_all_48_orientations(affine: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 1000, size=(5, 7, 3)).astype(np.int16)
    view = ScanView.from_affine(affine, arr.shape)
    canon = view.to_canonical(arr)
    assert canon.shape == view.canonical_shape
    back = view.from_canonical(canon)
    assert back.dtype == arr.dtype and np.array_equal(back, arr)
    # the canonical affine really points rows to I, cols to L, frames to A
    assert nio.aff2axcodes(view.canonical_affine) == ("I", "L", "A")
    # the canonical grid places each voxel at the same world position
    ijk = np.array([[1, 2, 0], [4, 6, 2]])
    rcf = view.ijk_to_canonical(ijk)
    assert np.array_equal(view.canonical_to_ijk(rcf), ijk)
    for p, q in zip(ijk, rcf):
        assert canon[tuple(q)] == arr[tuple(p)]
        world_p = affine @ np.append(p, 1)
        world_q = view.canonical_affine @ np.append(q, 1)
        assert np.allclose(world_p, world_q)


def test_view_oblique_affine_round_trip_and_spacing() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        zooms = rng.uniform(0.5, 8.0, size=3)
        affine = np.eye(4)
        affine[:3, :3] = q * zooms
        arr = rng.normal(size=(4, 6, 5)).astype(np.float32)
        view = ScanView.from_affine(affine, arr.shape)
        assert np.array_equal(view.from_canonical(view.to_canonical(arr)), arr)
        assert sorted(view.spacing) == pytest.approx(sorted(zooms))


def test_spacing_comes_from_the_affine_even_when_the_header_zooms_disagree(tmp_path) -> None:
    affine = np.array([[0.0, 0.0, -2.0, 5.0], [-1.5, 0.0, 0.0, 1.0], [0.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    image = nib.Nifti1Image(np.zeros((3, 4, 5), dtype=np.int16), affine)
    image.header.set_zooms((9.0, 9.0, 9.0))    # stale pixdim: the affine (sform) is what the voxels are
    nib.save(image, str(tmp_path / "stale.nii.gz"))
    volume = load_nifti(tmp_path / "stale.nii.gz")
    assert volume.header.get_zooms() == (9.0, 9.0, 9.0)
    assert volume.zooms == voxel_spacing(affine) == (1.5, 4.0, 2.0)
    assert volume.voxel_volume_mm3 == 12.0
    assert ScanView.from_affine(affine, (3, 4, 5)).spacing == (4.0, 2.0, 1.5)   # canonical (row, col, frame) order
    canonical = ScanView.of_canonical((3, 4, 5))
    assert canonical.canonical_shape == (3, 4, 5) and canonical.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(canonical.canonical_to_ijk((2, 1, 0)), (2, 1, 0))


def test_mask_helpers_match_numpy_and_scipy() -> None:
    rng = np.random.default_rng(5)
    mask = np.zeros((9, 7, 6), dtype=bool)
    assert foreground(mask).size == 0 and bounding_box(mask) is None
    mask[2:4, 5, 1:3] = True
    np.testing.assert_array_equal(foreground(mask.transpose(2, 0, 1)), np.flatnonzero(mask.transpose(2, 0, 1)))
    assert bounding_box(mask) == (slice(2, 4), slice(5, 6), slice(1, 3))
    assert bounding_box(mask, margin=2) == (slice(0, 6), slice(3, 7), slice(0, 5))
    for _ in range(5):
        mask = rng.random((10, 8, 7)) < 0.8
        mask[0, 0, 0] = False
        np.testing.assert_allclose(distance_transform(mask), ndi.distance_transform_edt(mask), rtol=1e-6)
        padded = ndi.distance_transform_edt(np.pad(mask, 1), sampling=(0.7, 1.3, 5.0))[1:-1, 1:-1, 1:-1]
        np.testing.assert_allclose(distance_transform(mask, (0.7, 1.3, 5.0), black_border=True), padded, rtol=1e-6)


def test_view_matches_monai_orientation_sra_with_flips() -> None:
    from monai.transforms import Orientation

    rng = np.random.default_rng(2)
    for affine in _all_orientation_affines()[::7]:
        arr = rng.normal(size=(4, 6, 5)).astype(np.float32)
        from monai.data import MetaTensor
        import torch

        mt = MetaTensor(torch.from_numpy(arr[None]), affine=torch.from_numpy(affine))
        monai_out = Orientation(axcodes="SRA")(mt).numpy()[0]
        expected = monai_out[::-1, ::-1, :]
        ours = ScanView.from_affine(affine, arr.shape).to_canonical(arr)
        assert np.array_equal(ours, expected)


def test_percentile_scale() -> None:
    rng = np.random.default_rng(3)
    v = rng.integers(0, 2000, size=(20, 20, 5)).astype(np.int16)
    v[:5] = 0
    x = percentile_scale(v)
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert np.all(x[v == 0] == 0)
    lo, hi = np.percentile(v[v > 0].astype(np.float64), [0.5, 99.5])
    assert np.allclose(x[v > 0], ((np.clip(v[v > 0], lo, hi) - lo) / (hi - lo)).astype(np.float32))
    const = np.where(v > 0, 7, 0).astype(np.int16)
    assert np.array_equal(percentile_scale(const), (const > 0).astype(np.float32))


def test_size_ordered_components_and_keep_largest() -> None:
    m = np.zeros((10, 10, 10), dtype=np.uint8)
    m[0:2, 0:2, 0:2] = 1  # 8 voxels
    m[5:9, 5:9, 5:9] = 1  # 64 voxels
    m[0, 9, 9] = 1  # 1 voxel
    m[9, 0, 0] = 1  # 1 voxel, later in raster order
    m[4, 4, 4] = 1  # diagonal neighbour of the 64-block -> same 26-component
    labels, sizes = size_ordered_components(m)
    assert list(sizes) == [65, 8, 1, 1]
    assert labels[6, 6, 6] == 1 and labels[4, 4, 4] == 1 and labels[0, 0, 0] == 2
    assert labels[0, 9, 9] == 3 and labels[9, 0, 0] == 4
    kept, dropped = keep_largest(labels, 2)
    assert dropped == 2 and kept.max() == 2 and kept[9, 0, 0] == 0
    labels6, sizes6 = size_ordered_components(m, connectivity=6)
    assert list(sizes6) == [64, 8, 1, 1, 1]


def _write(path, arr, affine=np.eye(4)):
    save_nifti(path, arr, affine)
    return path


def test_io_rejects_bad_input(tmp_path) -> None:
    img = _write(tmp_path / "a.nii.gz", np.ones((4, 5, 6), np.int16))
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"not a nifti at all")
    with pytest.raises(InputError, match="corrupt.nii.gz: not a readable NIfTI"):
        load_nifti(corrupt)
    with pytest.raises(InputError, match="file not found"):
        load_nifti(tmp_path / "missing.nii.gz")
    four_d = _write(tmp_path / "4d.nii.gz", np.ones((4, 5, 6, 2), np.int16))
    with pytest.raises(InputError, match="expected a 3-D volume"):
        load_nifti(four_d)
    nan = np.ones((4, 5, 6), np.float32)
    nan[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        load_nifti(_write(tmp_path / "nan.nii.gz", nan))
    image = load_nifti(img)
    with pytest.raises(InputError, match="does not match image"):
        load_label(_write(tmp_path / "l1.nii.gz", np.zeros((4, 5, 7), np.uint8)), image)
    shifted = np.eye(4)
    shifted[0, 3] = 0.01
    with pytest.raises(InputError, match="affine differs"):
        load_label(_write(tmp_path / "l2.nii.gz", np.zeros((4, 5, 6), np.uint8), shifted), image)
    with pytest.raises(InputError, match="integers"):
        load_label(_write(tmp_path / "l3.nii.gz", np.full((4, 5, 6), 0.5, np.float32)), image)
    with pytest.raises(InputError, match=">= 0"):
        load_label(_write(tmp_path / "l4.nii.gz", np.full((4, 5, 6), -1, np.int16)), image)
    ok = load_label(_write(tmp_path / "l5.nii.gz", np.ones((4, 5, 6), np.uint16)), image)
    assert ok.array.shape == (4, 5, 6)


def test_save_nifti_is_atomic_and_keeps_header_codes(tmp_path) -> None:
    affine = np.diag([2.0, -1.0, 3.0, 1.0])
    src = tmp_path / "img.nii.gz"
    img = nib.Nifti1Image(np.zeros((3, 4, 5), np.int16), affine)
    img.set_qform(affine, code=2)
    img.set_sform(affine, code=4)
    nib.save(img, src)
    like = load_nifti(src)
    out = save_nifti(tmp_path / "pred.nii.gz", np.ones((3, 4, 5), np.uint8), like.affine, like=like.header)
    back = nib.load(out)
    assert back.get_data_dtype() == np.uint8
    assert int(back.header["qform_code"]) == 2 and int(back.header["sform_code"]) == 4
    assert np.allclose(back.affine, affine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.nii.gz", "pred.nii.gz"]


def _reference_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy 26-connected labelling renumbered by (size desc, first voxel in C raster order)."""
    from scipy import ndimage

    raw, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    ids, first, counts = np.unique(raw.ravel(), return_index=True, return_counts=True)
    ids, first, counts = ids[1:], first[1:], counts[1:]
    order = np.lexsort((first, -counts))
    lookup = np.zeros(n + 1, dtype=np.int32)
    lookup[ids[order]] = np.arange(1, n + 1)
    return lookup[raw], counts[order]


def test_size_ordered_components_match_scipy_reference_on_random_masks() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        mask = np.zeros((30, 20, 8), dtype=bool)
        mask[2:25, 3:18, 1:7] = rng.random((23, 15, 6)) > 0.75
        labels, sizes = size_ordered_components(mask)
        expected, expected_sizes = _reference_components(mask)
        assert np.array_equal(labels, expected) and np.array_equal(sizes, expected_sizes)
    empty, no_sizes = size_ordered_components(np.zeros((4, 4, 4), bool))
    assert not empty.any() and no_sizes.size == 0


def test_components_at_keeps_the_components_under_the_points() -> None:
    volume = np.zeros((6, 6, 4), dtype=bool)
    volume[0:2, 0:2, 0] = True       # component A
    volume[2, 2, 1] = True           # touches A only diagonally: one 26-connected component, two 6-connected ones
    volume[4:6, 4:6, 3] = True       # component B, apart
    both = components_at(volume, [(0, 0, 0)])
    assert both.sum() == 5 and not both[4:, 4:, 3].any()
    assert components_at(volume, [(0, 0, 0)], connectivity=6).sum() == 4
    assert np.array_equal(components_at(volume, [(0, 0, 0), (5, 5, 3)]), volume)
    assert not components_at(volume, [(3, 0, 0)]).any()  # a point on background selects nothing
    plane = volume[:, :, 3]
    assert np.array_equal(components_at(plane, [(4, 5)]), plane)
