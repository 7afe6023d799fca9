"""Weight files of SAM2-family models: reading, validating, saving, and loading into a plain SAM2 model.

File format (official SAM2.1 and MOIS-SAM2 alike): ``torch.save({"model": state_dict})``; weights written by this
project also carry a ``"meta"`` entry (inference metadata, :mod:`mois_sam2_nf.models.checkpoint_meta`), which loading
ignores. A plain SAM2 model loads an official SAM2.1 file strictly, and a MOIS-SAM2 file after dropping the keys of the
MOIS-SAM2 extension (:data:`MOIS_KEY_PREFIXES`). Loading into MOIS-SAM2: :mod:`mois_sam2_nf.models.mois_sam2.checkpoint`
(docs/method.md, Checkpoints).

Every failure (missing file, truncated/corrupt file, wrong layout, key or shape mismatch) raises
:class:`~mois_sam2_nf.errors.InputError` with one line naming the file and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from mois_sam2_nf.atomic import atomic_path
from mois_sam2_nf.errors import InputError


StateDict = dict[str, torch.Tensor]

#: state-dict key prefixes that exist only in MOIS-SAM2 (everything else is SAM2)
MOIS_KEY_PREFIXES: tuple[str, ...] = ("exemplar_attention.", "exemplar_type_enc", "no_exemplar_embed",
                                      "no_exemplar_pos_enc", "exemplar_obj_ptr_proj.", "exemplar_obj_ptr_tpos_proj.")
_MAX_KEYS_LISTED = 6


def is_mois_key(key: str) -> bool:
    """True for state-dict keys that only MOIS-SAM2 has."""
    return key.startswith(MOIS_KEY_PREFIXES)


def _describe(keys: Iterable[str]) -> str:
    """Short, sorted, comma-separated key list (first few, then a count)."""
    ordered = sorted(keys)
    shown = ", ".join(ordered[:_MAX_KEYS_LISTED])
    return shown + (f", ... ({len(ordered)} in total)" if len(ordered) > _MAX_KEYS_LISTED else "")


def read_payload(path: str | os.PathLike[str]) -> Mapping:
    """Read a torch checkpoint file onto the CPU (weights only, no arbitrary unpickling) -> its top-level mapping.

    Raises:
        InputError: missing file, or a truncated/corrupt/non-mapping file (one line naming the file).
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: checkpoint file not found")
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's unpickler raises KeyError, IndexError, ... on junk files
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise InputError(f"{file}: not a readable torch checkpoint (truncated or corrupt?; torch.load raised "
                         f"{type(error).__name__}{': ' + detail if detail else ''})") from error
    if not isinstance(payload, Mapping):
        raise InputError(f"{file}: expected a checkpoint of the form {{'model': state_dict}}")
    return payload


def read_state_dict(path: str | os.PathLike[str]) -> StateDict:
    """Read ``{"model": state_dict}`` from ``path`` onto the CPU (extra top-level entries are ignored)."""
    return state_dict_of_payload(read_payload(path), path)


def state_dict_of_payload(payload: Mapping, path: str | os.PathLike[str]) -> StateDict:
    """The validated ``"model"`` entry (name -> tensor) of a checkpoint read from ``path`` by :func:`read_payload`."""
    file = Path(path)
    if "model" not in payload or not isinstance(payload["model"], Mapping):
        raise InputError(f"{file}: expected a checkpoint of the form {{'model': state_dict}}")
    state = payload["model"]
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(f"{file}: state_dict has non-tensor entries: {_describe(map(str, bad))}")
    return dict(state)


def strict_load(model: nn.Module, state: StateDict, path: Path, *, allowed_missing: frozenset[str] = frozenset()
                 ) -> None:
    """Load ``state`` into ``model``; raise one-line InputError on shape mismatch or disallowed key differences."""
    expected = model.state_dict()
    shape_errors = [f"{k} {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
                    for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if shape_errors:
        raise InputError(f"{path}: shape mismatch: {_describe(shape_errors)}")
    missing = set(expected) - set(state) - allowed_missing
    unexpected = set(state) - set(expected)
    if missing or unexpected:
        raise InputError(f"{path}: checkpoint does not match {type(model).__name__}: "
                         f"missing keys: {_describe(missing) or 'none'}; unexpected: {_describe(unexpected) or 'none'}")
    model.load_state_dict(state, strict=not allowed_missing)


def load_state_into_sam2(model: nn.Module, state: StateDict, path: str | os.PathLike[str]) -> None:
    """Load an official SAM2.1 or a MOIS-SAM2 state dict into a plain SAM2 model (MOIS-only keys dropped)."""
    strict_load(model, {k: v for k, v in state.items() if not is_mois_key(k)}, Path(path))


def load_sam2_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Read ``path`` and load it into the plain SAM2 ``model`` (:func:`load_state_into_sam2`)."""
    load_state_into_sam2(model, read_state_dict(path), path)


def save_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Atomically write ``{"model": model.state_dict()}`` (tensors moved to CPU) to ``path``."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"model": state}, tmp)
