"""MONAI Label entry point: ``monailabel start_server --app monai_label_app --studies <folder> --conf models all``.

MONAI Label loads this file and instantiates the MONAILabelApp subclass it finds here; the app itself (infer tasks,
sessions, validation) lives in the package, :mod:`mois_sam2_nf.serving`.
"""

from mois_sam2_nf.serving.app import MOISSAM2App

__all__ = ["MOISSAM2App"]
