"""3-D -> 2-D slice export: round trip of frames and masks, instance limit, atomic and resumable case writes."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image
from raw_cohort_helpers import CASES, LPS_AFFINE, label_dir, make_raw_cohort, save, shape_mismatch

from mois_sam2_nf.data import slicing
from mois_sam2_nf.data.layout import select_sets
from mois_sam2_nf.data.slicing import (
    PALETTE,
    load_sliced_case,
    read_mask_png,
    slice_case,
    slice_dataset,
    view_from_meta,
)
from mois_sam2_nf.errors import InputError


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_raw_cohort(tmp_path_factory.mktemp("slicing") / "raw", seed=3)


@pytest.fixture(scope="module")
def sliced(cohort: Path) -> Path:
    out = cohort.parent / "processed"
    slice_dataset(cohort, out, progress=False)
    return out


def canonical(array: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Reorient to ("I", "L", "A") with nibabel only (independent of ScanView)."""
    ornt = nib.orientations.ornt_transform(nib.orientations.io_orientation(affine),
                                           nib.orientations.axcodes2ornt(("I", "L", "A")))
    return nib.orientations.apply_orientation(array, ornt)


def expected_instances(label: np.ndarray, limit: int = 255) -> np.ndarray:
    """26-connected components of label > 0 ranked by size, ties by first voxel in C order, the ``limit`` largest."""
    comps, n = ndi.label(label > 0, structure=np.ones((3, 3, 3)))
    flat = comps.ravel()
    sizes = np.bincount(flat, minlength=n + 1)[1:]
    first = np.array([np.flatnonzero(flat == i)[0] for i in range(1, n + 1)])
    order = sorted(range(n), key=lambda i: (-sizes[i], first[i]))
    out = np.zeros(label.shape, dtype=np.uint8)
    for rank, comp in enumerate(order[:limit], start=1):
        out[comps == comp + 1] = rank
    return out


def test_slicing_round_trip_every_case(cohort: Path, sliced: Path) -> None:
    for set_name, case, _ in CASES:
        img = nib.load(str(cohort / set_name / f"{case}.nii.gz"))
        lab = nib.load(str(cohort / label_dir(set_name) / f"{case}.nii.gz"))
        image, label = np.asanyarray(img.dataobj), np.asanyarray(lab.dataobj)
        back = load_sliced_case(sliced, set_name, case)
        canon_img, canon_lab = canonical(image, img.affine), canonical(label, img.affine)
        h, w, f = canon_img.shape
        # frame files 00000..F-1 of full canonical size
        assert sorted(p.name for p in (sliced / set_name / case).glob("*.jpg")) == [f"{i:05d}.jpg" for i in range(f)]
        assert back.frames.shape == back.masks.shape == (h, w, f)
        # masks: the size-ranked 26-components in the canonical view
        assert np.array_equal(back.masks, expected_instances(canon_lab))
        # images: round(255 x) of the percentile scaling, within JPEG tolerance
        positive = image[image > 0].astype(np.float64)
        lo, hi = np.percentile(positive, [0.5, 99.5])
        x = np.where(canon_img == 0, 0.0, (np.clip(canon_img, lo, hi) - lo) / (hi - lo))
        diff = np.abs(back.frames.astype(float) - np.round(255 * x))
        assert diff.mean() < 2.0 and diff.max() <= 40, (diff.mean(), diff.max())
        # meta maps back onto the original grid
        meta = back.meta
        assert meta["original_shape"] == list(image.shape) and np.allclose(meta["affine"], img.affine)
        assert meta["n_frames"] == f and meta["n_dropped"] == 0 and meta["lo"] == pytest.approx(lo)
        view = view_from_meta(meta)
        assert np.array_equal(view.from_canonical(back.masks) > 0, label > 0)
        assert tuple(meta["canonical_spacing"]) == pytest.approx(view.spacing)


def test_masks_are_palettised_with_the_fixed_palette(sliced: Path) -> None:
    set_name, case, _ = CASES[0]
    png = sliced / label_dir(set_name) / case / "00000.png"
    with Image.open(png) as im:
        assert im.mode == "P"
        assert im.getpalette()[: len(PALETTE)] == PALETTE


def test_reader_accepts_mode_l_and_rejects_rgb(tmp_path: Path) -> None:
    ids = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(ids, mode="L").save(tmp_path / "l.png")
    assert np.array_equal(read_mask_png(tmp_path / "l.png"), ids)
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="mode"):
        read_mask_png(tmp_path / "rgb.png")


def test_only_the_255_largest_instances_are_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = tmp_path / "raw"
    label = np.zeros((60, 3, 60), dtype=np.uint8)
    label[::3, 0, ::3] = 1  # 400 isolated single voxels
    label[:30:3, 1, ::3] = 1  # the first 100 of them grow to two voxels
    image = np.where(label > 0, 500, 100).astype(np.int16)
    save(raw / "imagesTr" / "many.nii.gz", image, LPS_AFFINE)
    save(raw / "labelsTr_instance" / "many.nii.gz", label, LPS_AFFINE)
    (raw / "patients.csv").write_text("case_id,patient_id\nmany,1\n")
    with caplog.at_level(logging.WARNING):
        summary = slice_dataset(raw, tmp_path / "out", progress=False)
    assert summary.dropped == {"imagesTr": 145}
    assert "145 instance(s)" in caplog.text
    back = load_sliced_case(tmp_path / "out", "imagesTr", "many")
    assert back.meta["n_dropped"] == 145 and back.meta["n_instances"] == 255
    canon = canonical(label, LPS_AFFINE)
    assert np.array_equal(back.masks, expected_instances(canon))
    assert (np.bincount(back.masks.ravel())[1:101] == 2).all()


def test_rerun_skips_finished_cases_and_redoes_incomplete_ones(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = slice_dataset(cohort, out, sets=["imagesTs_1"], progress=False)
    assert first.written == {"imagesTs_1": 2} and not (out / "imagesTr").exists()
    case, interrupted = [c for s, c, _ in CASES if s == "imagesTs_1"]
    stamp = (out / "imagesTs_1" / case / "00000.jpg").stat().st_mtime_ns
    (out / "imagesTs_1" / interrupted / "meta.json").unlink()  # an interrupted case
    (out / "imagesTs_1" / f".{interrupted}.tmp999").mkdir()  # leftover of a killed run
    second = slice_dataset(cohort, out, sets=["imagesTs_1"], progress=False)
    assert second.written == {"imagesTs_1": 1} and second.skipped == {"imagesTs_1": 1}
    assert (out / "imagesTs_1" / case / "00000.jpg").stat().st_mtime_ns == stamp
    assert (out / "imagesTs_1" / interrupted / "meta.json").is_file()
    assert not (out / "imagesTs_1" / f".{interrupted}.tmp999").exists()


def test_failure_inside_a_case_leaves_no_partial_folder(cohort: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = slicing.write_mask_png

    def failing(path: Path, ids: np.ndarray) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        original(path, ids)

    monkeypatch.setattr(slicing, "write_mask_png", failing)
    case = select_sets(cohort, ["imagesTr"])[0].cases[0]
    with pytest.raises(OSError):
        slice_case(case, tmp_path / "out")
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.is_file() or p.name.startswith(".")]
    assert leftovers == []


def test_bad_input_writes_nothing(cohort: Path, tmp_path: Path) -> None:
    raw = Path(shutil.copytree(cohort, tmp_path / "raw"))
    shape_mismatch(raw)
    with pytest.raises(InputError, match="shape"):
        slice_dataset(raw, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="quality"):
        slice_dataset(cohort, tmp_path / "out", quality=0, progress=False)


def test_meta_json_is_plain_json(sliced: Path) -> None:
    set_name, case, _ = CASES[-1]
    meta = json.loads((sliced / set_name / case / "meta.json").read_text())
    assert meta["axcodes"] == ["R", "A", "S"] and meta["canonical_codes"] == ["I", "L", "A"]
    assert meta["jpeg_quality"] == 95


def test_tiny_synthetic_cohort_slices_to_canonical_frames(tiny_cohort: Path, tmp_path: Path) -> None:
    slice_dataset(tiny_cohort, tmp_path, sets=["imagesTs_1", "imagesTs_4"], progress=False)
    for set_name, shape in (("imagesTs_1", (290, 80, 10)), ("imagesTs_4", (232, 64, 13))):
        for case in select_sets(tiny_cohort, [set_name])[0].cases:
            back = load_sliced_case(tmp_path, set_name, case.case_id)
            assert back.frames.shape == shape and back.meta["canonical_shape"] == list(shape)
            label = np.asanyarray(nib.load(str(case.label)).dataobj)
            img = nib.load(str(case.image))
            assert np.array_equal(back.masks, expected_instances(canonical(label, img.affine)))
            assert np.array_equal(back.view.from_canonical(back.masks) > 0, label > 0)
