"""The app's HTTP front: the FastAPI application uvicorn serves (``--uvicorn_app mois_sam2_nf.serving.http:app``).

MONAI Label's own front exposes every endpoint of the framework, runs inference on its event loop (one request at a
time: ``/info/`` waits for a click) and answers many bad requests with a bare 500. This one (docs/security.md):

- keeps only the endpoints 3D Slicer uses: ``GET /info/``; ``GET /datastore/`` and the image / label downloads and
  their info; ``POST /activelearning/{strategy}`` ("Next Sample"); plus, written here, ``POST /infer/{model}``,
  ``PUT /session/``, ``GET`` / ``DELETE /session/{id}`` (safe ids only), ``PUT /datastore/image`` (also
  ``PUT /datastore/``, the path Slicer's client uses) and ``PUT /datastore/label``. Everything else (training,
  deleting studies or labels, info updates, model downloads, logs, DICOMweb proxy, OHIF) answers 404. With
  ``MONAI_LABEL_AUTH_ENABLE`` MONAI Label's role checks apply to every route (and ``/auth/`` is served); CORS
  headers only for ``MONAI_LABEL_CORS_ORIGINS``.
- runs inference and uploads in worker threads, so ``/info/``, validation errors and other models' requests are
  answered while a click is being computed (one model's work on its image is serialised by its workspace lock);
- answers every bad request with a 4xx and JSON ``{"detail": "<one line>"}``, an internal failure with 500 and its
  message, and keeps serving;
- writes uploads into a temporary folder that is removed whatever the answer; the datastore
  (:class:`~mois_sam2_nf.serving.datastore.GuardedDatastore`) and MONAI Label's session store decide where files land.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from monailabel.config import settings
from monailabel.endpoints import activelearning, datastore, info, login, session
from monailabel.endpoints.infer import ResultType, send_response
from monailabel.endpoints.user.auth import RBAC, User
from monailabel.interfaces.exception import MONAILabelError, MONAILabelException
from monailabel.interfaces.utils.app import app_instance

from mois_sam2_nf.data.io import load_nifti
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.serving.datastore import nifti_suffix
from mois_sam2_nf.serving.errors import RejectedRequest
from mois_sam2_nf.serving.requests import parse_params, safe_name

logger = logging.getLogger(__name__)

#: MONAI Label's own HTTP routes that are kept, as (method, URL path) -- API routes, not file paths
KEPT_ROUTES: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/info/"),
    ("GET", "/datastore/"),
    ("GET", "/datastore/image"),
    ("HEAD", "/datastore/image"),
    ("GET", "/datastore/image/info"),
    ("GET", "/datastore/label"),
    ("HEAD", "/datastore/label"),
    ("GET", "/datastore/label/info"),
    ("POST", "/activelearning/{strategy}"),
})

USER = Depends(RBAC(settings.MONAI_LABEL_AUTH_ROLE_USER))
ANNOTATOR = Depends(RBAC(settings.MONAI_LABEL_AUTH_ROLE_ANNOTATOR))


def _session_id(text: str) -> str:
    """A session id as a safe name (it becomes a folder name under the session store); 400 otherwise."""
    try:
        return safe_name("session_id", text)
    except InputError as err:
        raise RejectedRequest(str(err)) from None


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _params_and_upload(params: str, file: UploadFile, folder: Path, what: str, *, scan: bool
                       ) -> tuple[dict[str, Any], Path]:
    """A write request's JSON ``params`` (400 if malformed) and its file saved under ``folder``.

    The file is checked and named by :func:`_save_upload`.
    """
    try:
        parsed = parse_params(params)
    except InputError as err:
        raise RejectedRequest(str(err)) from None
    return parsed, _save_upload(file, folder, what, scan=scan)


def _save_upload(upload: UploadFile, folder: Path, what: str, scan: bool) -> Path:
    """Copy an uploaded NIfTI file into ``folder`` (a temporary folder of the caller) under a safe name.

    With ``scan`` the file must also be a readable 3-D scalar NIfTI volume. :class:`RejectedRequest` naming the
    uploaded file otherwise.
    """
    try:
        target = folder / f"upload{nifti_suffix(what, upload.filename or '')}"
    except InputError as err:
        raise RejectedRequest(str(err)) from None
    with target.open("wb") as out:
        while chunk := upload.file.read(1 << 20):
            out.write(chunk)
    if scan:
        try:
            load_nifti(target)
        except InputError as err:
            raise RejectedRequest(str(err).replace(str(target), f"{what} {upload.filename!r}")) from None
    return target


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Build the MONAI Label app (weights loaded) before the first request, as MONAI Label's front does."""
    instance = app_instance()
    instance.server_mode(True)
    instance.on_init_complete()
    yield


def create_app() -> FastAPI:
    """The FastAPI application: MONAI Label's kept routes, this module's routes and the error handlers."""
    api = FastAPI(title="mois-sam2-nf (MONAI Label)", lifespan=lifespan, docs_url=None, redoc_url=None)
    if settings.MONAI_LABEL_CORS_ORIGINS:
        api.add_middleware(CORSMiddleware, allow_origins=[str(o) for o in settings.MONAI_LABEL_CORS_ORIGINS],
                           allow_methods=["*"], allow_headers=["*"])
    routers = [info.router, datastore.router, activelearning.router, session.router]
    if settings.MONAI_LABEL_AUTH_ENABLE:
        api.include_router(login.router)
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and any((m, route.path) in KEPT_ROUTES for m in route.methods or ()):
                api.router.routes.append(route)

    @api.post("/infer/{model}")
    def infer(background_tasks: BackgroundTasks, model: str, image: str = "", session_id: str = "",
              params: str = Form("{}"), file: UploadFile | None = File(None), label: UploadFile | None = File(None),
              output: ResultType | None = None, user: User = USER) -> Any:
        """Run an infer task on a datastore study (``image``) or a session upload (``session_id``)."""
        if file is not None or label is not None:
            raise RejectedRequest("/infer/ takes no file uploads: upload a local scan with PUT /session/ and pass "
                                  "its session_id")
        if output == ResultType.dicom_seg:
            raise RejectedRequest("output=dicom_seg is not supported (NIfTI studies)")
        try:
            request: dict[str, Any] = parse_params(params)
        except InputError as err:
            raise RejectedRequest(str(err)) from None
        request |= {"model": model, "image": image}
        instance = app_instance()
        if session_id:
            sessions = instance.sessions()
            if sessions is None:
                raise RejectedRequest("sessions are disabled on this server (MONAI_LABEL_SESSIONS=false)")
            found = sessions.get_session(_session_id(session_id))
            if found is None:
                raise RejectedRequest(f"session {session_id!r} not found (expired? upload the scan again)", status=404)
            request |= {"image": found.image, "session": found.to_json()}
        result = instance.infer(request)
        return send_response(instance.datastore(), result, output, background_tasks)

    @api.put("/session/")
    def create_session(files: list[UploadFile] = File(...), uncompress: bool = False, expiry: int = 0,
                       user: User = USER) -> dict[str, Any]:
        """Store one uploaded NIfTI scan as a MONAI Label session (Slicer's path for a locally opened scan)."""
        if uncompress:
            raise RejectedRequest("uncompress is not supported: upload one .nii or .nii.gz file")
        if len(files) != 1:
            raise RejectedRequest(f"upload exactly one scan per session (got {len(files)} files)")
        sessions = app_instance().sessions()
        if sessions is None:
            raise RejectedRequest("sessions are disabled on this server (MONAI_LABEL_SESSIONS=false)")
        with tempfile.TemporaryDirectory(prefix="mois_sam2_nf_upload_") as folder:
            upload = _save_upload(files[0], Path(folder), "uploaded file", scan=True)
            session_id, found = sessions.add_session(str(upload), expiry)
        return {"session_id": session_id, "session_info": found.to_json()}

    @api.get("/session/{session_id}")
    def get_session(session_id: str, update_ts: bool = False, image: bool = False, user: User = USER) -> Any:
        """A session's info, or its image with ``image=true`` (MONAI Label's answer)."""
        return session.get_session(_session_id(session_id), update_ts, image)

    @api.delete("/session/{session_id}")
    def remove_session(session_id: str, user: User = USER) -> Any:
        """Delete a session and its upload (MONAI Label's answer)."""
        return session.remove_session(_session_id(session_id))

    @api.put("/datastore/image")
    @api.put("/datastore/", include_in_schema=False)
    def add_image(image: str | None = None, params: str = Form("{}"), file: UploadFile = File(...),
                  user: User = ANNOTATOR) -> dict[str, str]:
        """Add a new study (Slicer's "Upload volume"); ``image`` is its id (default: the file name)."""
        with tempfile.TemporaryDirectory(prefix="mois_sam2_nf_upload_") as folder:
            info_params, upload = _params_and_upload(params, file, Path(folder), "uploaded file", scan=True)
            image_id = image or nifti_name_stem(file.filename or "")
            store = app_instance().datastore()
            return {"image": store.add_image(image_id, str(upload), info_params)}

    @api.put("/datastore/label")
    def save_label(image: str, params: str = Form("{}"), tag: str = "final", label: UploadFile = File(...),
                   user: User = ANNOTATOR) -> dict[str, Any]:
        """Save a finished label of a study (Slicer's "Submit label")."""
        instance = app_instance()
        with tempfile.TemporaryDirectory(prefix="mois_sam2_nf_upload_") as folder:
            label_params, upload = _params_and_upload(params, label, Path(folder), "label file", scan=False)
            if user.username:
                label_params["user"] = user.username
            try:
                label_id = instance.datastore().save_label(image, str(upload), tag or "final", label_params)
            except RejectedRequest as err:  # name the caller's file, not the temporary copy
                raise RejectedRequest(err.msg.replace(str(upload), f"label file {label.filename!r}"),
                                      err.status_code) from None
        answer = instance.on_save_label(image, label_id) or {}
        return answer | {"image": image, "label": label_id}

    api.add_exception_handler(RequestValidationError, _invalid_request)
    api.add_exception_handler(MONAILabelException, _monai_label_error)
    api.add_exception_handler(Exception, _internal_error)
    return api


def nifti_name_stem(filename: str) -> str:
    """A file name without its ``.nii`` / ``.nii.gz`` suffix (the default id of an uploaded study)."""
    name = Path(filename).name
    return name[: len(name) - len(nifti_suffix("uploaded file", name))] if name else ""


async def _invalid_request(_: Request, err: Exception) -> JSONResponse:
    """FastAPI's request validation (missing or mistyped query / form fields) as one line."""
    assert isinstance(err, RequestValidationError)
    problems = ["{} {!r}: {}".format(e["loc"][0] if e.get("loc") else "request", e["loc"][-1] if e.get("loc") else "",
                                     e.get("msg", "invalid")) for e in err.errors()]
    return JSONResponse(status_code=422, content={"detail": "; ".join(problems)})


async def _monai_label_error(_: Request, err: Exception) -> JSONResponse:
    """MONAI Label's exceptions: a :class:`RejectedRequest` keeps its status; other invalid input is the caller's fault
    (400), the rest is the server's (500)."""
    assert isinstance(err, MONAILabelException)
    if isinstance(err, RejectedRequest):
        status = err.status_code
    else:
        status = 400 if err.error == MONAILabelError.INVALID_INPUT else 500
    return JSONResponse(status_code=status, content={"detail": err.msg})


async def _internal_error(_: Request, err: Exception) -> JSONResponse:
    """Anything else: the server's fault, answered with its message; the server keeps serving."""
    logger.exception("internal error", exc_info=err)
    return JSONResponse(status_code=500, content={"detail": f"internal error ({type(err).__name__}): "
                                                            f"{_one_line(err)}"})


app = create_app()
