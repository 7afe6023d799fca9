"""NIfTI outputs keep their image's qform, sform and codes exactly (nibabel's own test images and constructed ones)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from mois_sam2_nf.data.io import load_nifti, save_nifti

SPATIAL_FIELDS = ("qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y",
                  "qoffset_z", "srow_x", "srow_y", "srow_z", "pixdim")


def _constructed(tmp_path: Path, qform_code: int, sform_code: int) -> Path:
    """An image whose qform is a rotated, shifted grid and whose sform is another (they differ by up to 12 mm)."""
    sform = np.array([[1.9, 0.3, 0.0, 7.0], [-0.3, 1.9, 0.0, -22.0], [0.0, 0.0, 3.1, 1.0], [0.0, 0.0, 0.0, 1.0]])
    qform = np.array([[0.0, -2.0, 0.0, 10.0], [2.0, 0.0, 0.0, -20.0], [0.0, 0.0, 3.0, 5.0], [0.0, 0.0, 0.0, 1.0]])
    image = nib.Nifti1Image(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), sform)
    image.header.set_qform(qform, code=qform_code)
    image.header.set_sform(sform, code=sform_code)
    path = tmp_path / f"constructed_q{qform_code}_s{sform_code}.nii.gz"
    nib.save(image, path)
    return path


@pytest.mark.parametrize("source", [
    "anatomical.nii",           # nibabel's test image, qform and sform code 2
    "standard.nii.gz",          # nibabel's test image, qform code 0, sform code 2
    "constructed_q1_s2",        # qform and sform differ
    "constructed_q0_s0",        # no spatial codes at all
    "constructed_q3_s4",        # qform and sform differ, codes talairach / mni
])
def test_written_mask_keeps_qform_sform_and_codes(tmp_path: Path, source: str) -> None:
    if source.startswith("constructed"):
        q, s = source.removeprefix("constructed_q").split("_s")
        path = _constructed(tmp_path, int(q), int(s))
    else:
        path = Path(data_path) / source
    image = load_nifti(path)
    mask = image.array > np.median(image.array)
    out = save_nifti(tmp_path / "mask.nii.gz", mask.astype(np.uint8), image.affine, like=image.header)
    written = nib.load(out)
    for field in SPATIAL_FIELDS:
        np.testing.assert_array_equal(written.header[field], image.header[field], err_msg=field)
    np.testing.assert_array_equal(written.header.get_qform(), image.header.get_qform())
    np.testing.assert_array_equal(written.header.get_sform(), image.header.get_sform())
    np.testing.assert_array_equal(written.affine, image.affine)
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(written.dataobj), mask)


def test_an_affine_other_than_the_headers_is_a_programming_error(tmp_path: Path) -> None:
    image = load_nifti(_constructed(tmp_path, 1, 2))
    with pytest.raises(ValueError, match="does not match"):
        save_nifti(tmp_path / "mask.nii.gz", np.zeros(image.array.shape, np.uint8), np.eye(4), like=image.header)
    assert not (tmp_path / "mask.nii.gz").exists()
