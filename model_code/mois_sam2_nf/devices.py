"""Validation of a torch device name given by a user (CLI ``--device``, the app's ``--conf device``)."""

from __future__ import annotations

from mois_sam2_nf.errors import InputError


def check_device(name: str, what: str = "--device") -> str:
    """Return ``name`` if torch can run on that device here; :class:`InputError` (one line) otherwise.

    Accepts ``cpu``, ``cuda`` / ``cuda:<n>`` when that GPU exists and ``mps`` when Apple's backend is available.
    """
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"{what} {name!r} is not a torch device (use cpu, cuda or cuda:<n>)") from None
    if device.type == "cpu":
        return name
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"{what} {name!r}: no CUDA GPU is available on this machine (use cpu)")
        if device.index is not None and device.index >= count:
            raise InputError(f"{what} {name!r}: this machine has {count} CUDA GPU(s) (cuda:0 ... cuda:{count - 1})")
        return name
    if device.type == "mps" and torch.backends.mps.is_available():
        return name
    raise InputError(f"{what} {name!r}: device type {device.type!r} is not available on this machine (use cpu)")
