"""The MONAI Label app class served by ``monai_label_app/main.py`` (``monailabel start_server --app monai_label_app``).

It reads its options from ``--conf`` (:class:`~mois_sam2_nf.serving.infer_tasks.AppConfig`), loads the weights once at
start-up and answers only for images that are studies of its datastore (ids as listed by ``GET /datastore``); a file
path or an unknown id is rejected before any model runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.exception import MONAILabelError, MONAILabelException
from monailabel.interfaces.tasks.infer_v2 import InferTask

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.serving.infer_tasks import AppConfig, RejectedRequest, build_infer_tasks


class MOISSAM2App(MONAILabelApp):
    """MOIS-SAM2 / SAM2 interactive lesion segmentation for 3D Slicer.

    Args:
        app_dir: the ``monai_label_app`` folder; relative weight paths are resolved against its parent (the repository).
        studies: folder of NIfTI images (the datastore).
        conf: ``--conf`` options (strings), see :class:`AppConfig`.
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        try:
            self.app_config = AppConfig.from_conf(conf or {}, Path(app_dir).resolve().parent)
        except InputError as err:
            raise MONAILabelException(MONAILabelError.APP_INIT_ERROR, str(err)) from None
        super().__init__(app_dir=app_dir, studies=studies, conf=conf or {}, name="mois-sam2-nf",
                         description="MOIS-SAM2: click a few neurofibromas, propagate to the similar ones",
                         version="1.0")

    def init_infers(self) -> dict[str, InferTask]:
        try:
            return build_infer_tasks(self.app_config)
        except InputError as err:
            raise MONAILabelException(MONAILabelError.APP_INIT_ERROR, str(err)) from None

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """Reject images that are not studies of the datastore, then run the task as MONAI Label does."""
        image = request.get("image")
        store = datastore if datastore is not None else self.datastore()
        if not isinstance(image, str) or image not in store.list_images():
            raise RejectedRequest(f"image {image!r} is not a study of this server's datastore")
        return super().infer(request, datastore)
