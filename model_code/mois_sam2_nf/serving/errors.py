"""The error the app answers a bad request with: one line, as JSON ``{"detail": "<line>"}`` and a 4xx status."""

from __future__ import annotations

from fastapi import HTTPException
from monailabel.interfaces.exception import MONAILabelError, MONAILabelException


class RejectedRequest(MONAILabelException, HTTPException):
    """An invalid request: MONAI Label's ``INVALID_INPUT`` error that FastAPI answers with ``status`` (400 unless
    given) and the message (MONAI Label itself would answer a bare 500).

    Args:
        message: one line naming the parameter or file and the problem.
        status: HTTP status, 4xx (404 for something named that does not exist, 409 for a write that would replace).
    """

    def __init__(self, message: str, status: int = 400) -> None:
        MONAILabelException.__init__(self, MONAILabelError.INVALID_INPUT, message)
        HTTPException.__init__(self, status_code=status, detail=message)
