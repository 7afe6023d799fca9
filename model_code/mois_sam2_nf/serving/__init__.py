"""Serving MOIS-SAM2 and SAM2 to 3D Slicer through MONAI Label (model spec section 9).

- :mod:`.requests`: Slicer request params -> validated clicks (one :class:`~mois_sam2_nf.errors.InputError` line).
- :mod:`.workspace`: per-model server state for the image being annotated (segmenter, click lists, label masks).
- :mod:`.infer_tasks`: the MONAI Label infer tasks and the app wiring used by ``monai_label_app/main.py``.
"""
