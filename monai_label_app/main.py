"""MONAI Label entry point, served by ``monai_label_app/start_server.sh`` (MONAI Label with this app and the app's
HTTP front, ``--uvicorn_app mois_sam2_nf.serving.http:app``; see docs/security.md).

MONAI Label loads this file and instantiates the MONAILabelApp subclass it finds here; the app itself (infer tasks,
sessions, validation, datastore) lives in the package, :mod:`mois_sam2_nf.serving`.
"""

from mois_sam2_nf.serving.app import MOISSAM2App

__all__ = ["MOISSAM2App"]
