"""The app's datastore: MONAI Label's local datastore (a folder of NIfTI studies) whose writes stay inside it.

What it allows (docs/security.md):

- ``add_image`` (Slicer's "Upload volume"): a new study whose id is a :func:`~mois_sam2_nf.serving.requests.safe_name`
  not in use yet, from a readable 3-D scalar NIfTI file. A study is never replaced (409).
- ``save_label`` (Slicer's "Submit label", an infer request with ``save_label``): a label of an existing study under a
  tag that is a safe name, from a NIfTI file on the study's grid with non-negative integer values; when the params
  carry Slicer's ``label_info``, every saved value must have an entry there.
- Removing studies or labels is refused; the studies folder is managed on the server's file system.

Every refusal is a :class:`~mois_sam2_nf.serving.errors.RejectedRequest` with one line. Files are written by MONAI
Label's datastore under ``<studies>/<id>.nii[.gz]`` and ``<studies>/labels/<tag>/<id>.nii[.gz]``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from monailabel.datastore.local import LocalDatastore

from mois_sam2_nf.data.io import NIFTI_SUFFIX, load_label, load_nifti
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.serving.errors import RejectedRequest
from mois_sam2_nf.serving.requests import safe_name

#: file patterns of the studies (MONAI Label's ``extensions``)
NIFTI_PATTERNS = ("*.nii.gz", "*.nii")


def nifti_suffix(what: str, filename: str) -> str:
    """``.nii.gz`` or ``.nii`` from the end of ``filename``; :class:`InputError` naming ``what`` for anything else."""
    match = NIFTI_SUFFIX.search(Path(filename).name)
    if match is None:
        raise InputError(f"{what} {Path(filename).name!r} must be a NIfTI file (.nii or .nii.gz)")
    return match.group(0)


def check_label_info(label_info: object, values: np.ndarray, label_path: str) -> None:
    """Every non-zero value of a label must be named in Slicer's ``label_info`` (``[{"name": ..., "idx": n}, ...]``).

    Args:
        label_info: the ``label_info`` param as sent.
        values: the distinct voxel values of the label file (int array).
        label_path: the label file, for the message.
    """
    if not isinstance(label_info, list) or not all(
        isinstance(entry, Mapping) and isinstance(entry.get("name"), str)
        and isinstance(entry.get("idx"), int) and not isinstance(entry.get("idx"), bool)
        for entry in label_info
    ):
        raise InputError("params 'label_info' must be a list of {\"name\": <label>, \"idx\": <voxel value>} entries")
    named = {int(entry["idx"]) for entry in label_info}
    missing = sorted(int(v) for v in values if v != 0 and int(v) not in named)
    if missing:
        raise InputError(f"{label_path}: voxel value(s) {missing} have no entry in params 'label_info' "
                         f"(entries: {sorted(named)})")


class GuardedDatastore(LocalDatastore):
    """MONAI Label's :class:`LocalDatastore` over a folder of NIfTI studies with validated writes (module docstring).

    Args:
        studies: the studies folder.
        auto_reload, read_only: as :class:`LocalDatastore` (MONAI Label's settings).
    """

    def __init__(self, studies: str, auto_reload: bool, read_only: bool) -> None:
        super().__init__(studies, extensions=NIFTI_PATTERNS, auto_reload=auto_reload, read_only=read_only)
        self._write_lock = threading.Lock()

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        """Add a new study ``image_id`` from ``image_filename`` (a NIfTI file); an existing id is refused."""
        try:
            safe_name("image id", image_id)
            nifti_suffix("uploaded file", image_filename)
            load_nifti(image_filename)
        except InputError as err:
            raise RejectedRequest(str(err)) from None
        with self._write_lock:
            if image_id in self.list_images():
                raise RejectedRequest(f"image id {image_id!r} is already a study of this datastore; uploads cannot "
                                      f"replace a study (choose another name)", status=409)
            return super().add_image(image_id, image_filename, image_info)

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        """Save ``label_filename`` as study ``image_id``'s label under ``label_tag`` (see the module docstring)."""
        if image_id not in self.list_images():
            raise RejectedRequest(f"image {image_id!r} is not a study of this server's datastore", status=404)
        try:
            safe_name("label tag", label_tag)
            nifti_suffix("label file", label_filename)
            label = load_label(label_filename, image=load_nifti(self.get_image_uri(image_id)))
            if label_info and "label_info" in label_info:
                check_label_info(label_info["label_info"], np.unique(label.array), Path(label_filename).name)
        except InputError as err:
            raise RejectedRequest(str(err)) from None
        with self._write_lock:
            return super().save_label(image_id, label_filename, label_tag, label_info)

    def remove_image(self, image_id: str) -> None:
        raise RejectedRequest("removing studies is not allowed through this server", status=403)

    def remove_label(self, label_id: str, label_tag: str) -> None:
        raise RejectedRequest("removing labels is not allowed through this server", status=403)
