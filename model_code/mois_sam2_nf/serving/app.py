"""The MONAI Label app class served by ``monai_label_app/main.py`` (``monai_label_app/start_server.sh``).

It reads its options from ``--conf`` (:class:`~mois_sam2_nf.serving.infer_tasks.AppConfig`), loads the weights once at
start-up and answers only for server-managed images: studies of its datastore (ids as listed by ``GET /datastore``)
and scans uploaded to MONAI Label's session store (``PUT /session/``, what 3D Slicer sends for a scan opened
locally). A file path the caller chose, an unknown id, a bad label tag or an unknown model is rejected with one line
before any model runs; see docs/security.md for what the server writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from monailabel.config import settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.exception import MONAILabelError, MONAILabelException
from monailabel.interfaces.tasks.infer_v2 import InferTask

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.serving.datastore import GuardedDatastore
from mois_sam2_nf.serving.errors import RejectedRequest
from mois_sam2_nf.serving.infer_tasks import AppConfig, app_labels, build_infer_tasks
from mois_sam2_nf.serving.requests import safe_name


def _flag(name: str, value: object) -> bool:
    """A yes/no request param: JSON ``true`` / ``false`` (or the strings), missing = ``False``."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise RejectedRequest(f"request param {name!r} must be true or false, got {value!r}")


class MOISSAM2App(MONAILabelApp):
    """MOIS-SAM2 / SAM2 interactive lesion segmentation for 3D Slicer.

    Args:
        app_dir: the ``monai_label_app`` folder; relative weight paths are resolved against its parent (the repository).
        studies: folder of NIfTI images (the datastore).
        conf: ``--conf`` options (strings), see :class:`AppConfig`.
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        if studies.startswith(("http://", "https://")):
            raise MONAILabelException(MONAILabelError.APP_INIT_ERROR,
                                      f"studies {studies!r}: this app serves a local folder of NIfTI scans")
        try:
            self.app_config = AppConfig.from_conf(conf or {}, Path(app_dir).resolve().parent)
        except InputError as err:
            raise MONAILabelException(MONAILabelError.APP_INIT_ERROR, str(err)) from None
        super().__init__(app_dir=app_dir, studies=studies, conf=conf or {}, name="mois-sam2-nf",
                         description="MOIS-SAM2: click a few neurofibromas, propagate to the similar ones",
                         version="1.0", labels=list(app_labels(self.app_config.max_lesions)))

    def init_datastore(self) -> Datastore:
        return GuardedDatastore(self.studies, auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
                                read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY)

    def init_infers(self) -> dict[str, InferTask]:
        try:
            return build_infer_tasks(self.app_config)
        except InputError as err:
            raise MONAILabelException(MONAILabelError.APP_INIT_ERROR, str(err)) from None

    def session_image(self, path: str) -> str | None:
        """The real path of ``path`` if it is the image of a live MONAI Label session (``PUT /session/``), else None.

        Session uploads live in ``<session store>/<session id>/<file>``; the path must be exactly the image recorded
        for that session, so a caller cannot point into the store at anything else.
        """
        sessions = self.sessions()
        if sessions is None or not os.path.isabs(path):
            return None
        store = os.path.realpath(sessions.store_path)
        real = os.path.realpath(path)
        relative = os.path.relpath(real, store)
        parts = Path(relative).parts
        if relative.startswith("..") or len(parts) != 2:
            return None
        info = sessions.get_session(parts[0], update_ts=False)
        if info is None or os.path.realpath(info.image) != real or not os.path.isfile(real):
            return None
        return real

    def next_sample(self, request: dict[str, Any]) -> dict[str, Any]:
        """Slicer's "Next Sample" (``POST /activelearning/{strategy}``); an unknown strategy is refused with one line
        (404; 400 when it is not a name) instead of MONAI Label's 500."""
        strategy = request.get("strategy") or "random"
        if not isinstance(strategy, str) or strategy not in self._strategies:
            available = ", ".join(self._strategies) or "none"
            raise RejectedRequest(f"active learning strategy {strategy!r} is not available here (available: "
                                  f"{available})", status=404 if isinstance(strategy, str) else 400)
        answer: dict[str, Any] = super().next_sample(request)
        return answer

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """Validate the request, run the task, save the label in the datastore when asked (``save_label``).

        ``request["image"]`` is a datastore id or a session image path (the HTTP front resolves ``session_id``).
        Returns MONAI Label's answer ``{"label", "tag", "file", "params"}``; the result file is a temporary file the
        front removes after answering (and this method removes it when saving fails).
        """
        store = datastore if datastore is not None else self.datastore()
        model = request.get("model")
        task = self._infers.get(model) if isinstance(model, str) else None
        if task is None:
            raise RejectedRequest(f"model {model!r} is not served here (available: {', '.join(self._infers)})",
                                  status=404)
        image = request.get("image")
        if not isinstance(image, str) or not image:
            raise RejectedRequest("request needs 'image' (a datastore id) or 'session_id' (a PUT /session/ upload)")
        study = image in store.list_images()
        path = store.get_image_uri(image) if study else self.session_image(image)
        if path is None:
            raise RejectedRequest(f"image {image!r} is not a study of this server's datastore nor a session upload "
                                  f"(upload a local scan with PUT /session/ and pass its session_id)")
        save = _flag("save_label", request.get("save_label"))
        tag = request.get("label_tag", DefaultLabelTag.ORIGINAL.value)
        if save:
            if not study:
                raise RejectedRequest("save_label needs a datastore study as image (a session upload is not stored)")
            try:
                safe_name("request param 'label_tag'", tag)
            except InputError as err:
                raise RejectedRequest(str(err)) from None
        result_file, params = task(dict(request) | {"image": path, "description": task.description})
        label = result_file
        if save:
            try:
                label = store.save_label(image, result_file, tag, {"model": model, "params": params})
            except BaseException:
                os.unlink(result_file)
                raise
        return {"label": label, "tag": tag if save else DefaultLabelTag.ORIGINAL.value, "file": result_file,
                "params": params}
