"""Serving MOIS-SAM2 and SAM2 to 3D Slicer through MONAI Label (monai_label_app/README.md, docs/security.md).

- :mod:`.requests`: Slicer request params -> validated clicks and names (one :class:`~mois_sam2_nf.errors.InputError`
  line).
- :mod:`.workspace`: per-model server state for the image being annotated (segmenter, click lists, label masks).
- :mod:`.infer_tasks`: the MONAI Label infer tasks and the app configuration.
- :mod:`.datastore`: the datastore whose writes stay inside the studies folder.
- :mod:`.errors`: the 4xx answer of a rejected request.
- :mod:`.app`: the MONAI Label app class used by ``monai_label_app/main.py``.
- :mod:`.http`: the HTTP front uvicorn serves (kept endpoints, threads, JSON errors, uploads).
"""
